import MeshCore
import MeshJournal
import MeshTransport
import Testing
@testable import Mesh

@Suite struct SendManyTests {
    @Test func relayTreeSplitsEvenlyAndReachesEveryoneInLogHops() {
        let six = (1...6).map { "10.0.0.\($0):1" }
        let hops = RelayTree.split(six, limit: 2)
        #expect(hops.map(\.direct) == ["10.0.0.1:1", "10.0.0.4:1"])
        #expect(hops.map(\.branch) == [["10.0.0.2:1", "10.0.0.3:1"], ["10.0.0.5:1", "10.0.0.6:1"]])
        // Second hop: each branch of two splits into two direct sends: six nodes in two hops.
        #expect(RelayTree.split(hops[0].branch, limit: 2).allSatisfy { $0.branch.isEmpty })
        #expect(RelayTree.split(["a"], limit: 5).map(\.direct) == ["a"])
        #expect(RelayTree.split([], limit: 2).isEmpty)
        let encoded = RelayTree.encode(limit: 3, branch: ["1.2.3.4:5", "[::1]:6"])
        #expect(encoded == "3;1.2.3.4:5,[::1]:6")
        #expect(RelayTree.decode(encoded!)! == (3, ["1.2.3.4:5", "[::1]:6"]))
        #expect(RelayTree.encode(limit: 2, branch: []) == nil)
        for bad in ["", ";", "0;a", "x;a", "2;", "99999;a"] { #expect(RelayTree.decode(bad) == nil, "\(bad)") }
    }

    @Test func sendManyReachesEveryNodeOnceThroughJournaledRelays() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let sender = try await fixture.start("s")
        var receivers: [MeshNode] = []
        let seen = Recorder<String>()
        for i in 0..<6 {
            let node = try await fixture.start("r\(i)")
            let name = "r\(i)"
            try node.handleCommand(300) { data in
                #expect(data.string("event") == "match-start")
                await seen.add(name)
                return nil
            }
            receivers.append(node)
        }
        // Duplicates and the sender's own address are skipped.
        let addresses = receivers.map(\.address) + [receivers[0].address, sender.address]
        let deliveries = try await sender.sendMany(300, to: addresses, ["event": "match-start"], limit: 2)
        #expect(deliveries.count == 2)
        for delivery in deliveries { #expect(await delivery.outcome() == .confirmed) }
        try await eventually { await seen.count == 6 }
        #expect(Set(await seen.items).count == 6)
        // The first hops carried branches; the relays journaled their forwards as their own outbound messages.
        let relays = try await sender.journal.rows("SELECT relay FROM mesh_messages WHERE direction = 'out' ORDER BY id")
        #expect(relays.count == 2 && relays.allSatisfy { $0[0] != nil })
        var forwarded = 0
        for node in receivers {
            let rows = try await node.journal.rows("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND command_id = 300")
            forwarded += Int(rows[0][0]!)!
            try await eventually {
                try await node.journal.rows("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND status <> 'acked'") == [["0"]]
            }
        }
        #expect(forwarded == 4)  // 6 receivers - 2 reached directly
        #expect(try await sender.sendMany(300, to: [], ["x": 1]).isEmpty)
        await #expect(throws: MeshError.self) { try await sender.sendMany(300, to: ["nope"], ["x": 1]) }
        await #expect(throws: MeshError.self) { try await sender.sendMany(300, to: [receivers[0].address], ["x": 1], limit: 0) }
        for node in receivers { await node.shutdown() }
        await sender.shutdown()
    }
}
