import MeshCore
import MeshFaultProxy
import MeshJournal
import MeshTransport
import NIOCore
import Testing
@testable import Mesh

/// The network fault matrix: two nodes through a real UDP fault proxy (both directions suffer the faults).
/// For each profile, every message is accounted for (confirmed, or failed with an error the sender saw), none
/// is journaled or handled twice at the receiver, and order holds per (sender, command ID).
@Suite struct NetworkFaultMatrixTests {
    struct Profile: Sendable, CustomTestStringConvertible {
        let name: String
        let faults: FaultProxy.Faults
        let messages: Int
        var testDescription: String { name }
    }

    static let profiles: [Profile] = [
        Profile(name: "loss 1%", faults: .init(loss: 0.01), messages: 600),
        Profile(name: "loss 5%", faults: .init(loss: 0.05), messages: 600),
        Profile(name: "loss 20%", faults: .init(loss: 0.20), messages: 600),
        Profile(name: "loss 50%", faults: .init(loss: 0.50), messages: 200),
        Profile(name: "burst loss (5%, bursts continue at 70%)", faults: .init(loss: 0.05, burstContinuation: 0.7), messages: 600),
        Profile(name: "duplication 20%", faults: .init(duplicate: 0.20), messages: 600),
        Profile(name: "reordering 20% with 0–3 ms jitter", faults: .init(reorder: 0.20, delay: .zero ... .milliseconds(3)), messages: 600),
        Profile(name: "corruption 5%", faults: .init(corrupt: 0.05), messages: 600),
    ]

    @Test(arguments: profiles)
    func everyMessageAccountedForOnceAndInOrder(_ profile: Profile) async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let seen = Recorder<(UInt16, Int64)>()
        let b = try await fixture.start("b")
        for command: UInt16 in [77, 78] {
            try b.handleCommand(command) { data in
                await seen.add((command, try data.getInt64("i")))
                return nil
            }
        }
        let proxy = try await FaultProxy.start(listen: try SocketAddress(ipAddress: "127.0.0.1", port: 0),
                                               forward: try SocketAddress(ipAddress: "127.0.0.1", port: Int(b.address.split(separator: ":").last!)!),
                                               faults: profile.faults, seed: 7)
        let a = try await fixture.start("a")
        let target = "127.0.0.1:\(proxy.listenAddress.port!)"
        var deliveries: [(UInt16, Int64, MeshNode.Delivery)] = []
        for i in 0..<profile.messages {
            let command: UInt16 = i % 2 == 0 ? 77 : 78
            deliveries.append((command, Int64(i), try await a.send(command, to: target, ["i": .int64(Int64(i))])))
        }
        var confirmed = 0
        var failed: [String] = []
        for (_, i, delivery) in deliveries {
            switch await delivery.outcome() {
            case .confirmed: confirmed += 1
            case .failed(let error): failed.append("#\(i): \(error)")
            case .sent: Issue.record("\(profile.name): a reliable message reported .sent")
            }
        }
        #expect(failed.isEmpty, "\(profile.name): \(failed.count) failed within the give-up time (\(a.configuration.retryTimeout)): \(failed.prefix(3))")
        let confirmedCount = confirmed
        try await eventually(60) { await seen.count >= confirmedCount }
        let order = await seen.items
        #expect(order.count == confirmed, "\(profile.name): handled \(order.count) for \(confirmed) confirmed")
        for command: UInt16 in [77, 78] {
            let values = order.filter { $0.0 == command }.map(\.1)
            #expect(zip(values, values.dropFirst()).allSatisfy { $0 < $1 }, "\(profile.name): command \(command) out of order or twice")
        }
        // Journaled once each at B, by content and by id: exactly the messages A sent.
        let journaled = try await b.journal.rows("SELECT message_id, json_extract(payload_json, '$.i') FROM mesh_messages WHERE direction = 'in'")
        #expect(Set(journaled.compactMap { $0[0] }) == Set(deliveries.map(\.2.messageID)), "\(profile.name): journaled ids differ")
        #expect(journaled.compactMap { $0[1].flatMap { Int64($0) } }.sorted() == Array(0..<Int64(profile.messages)), "\(profile.name)")
        // Faults were injected, where enough datagrams passed to expect some (messages share datagrams).
        let stats = proxy.statistics
        let f = profile.faults
        if Double(stats.forwarded) * (f.loss + f.duplicate + f.reorder + f.corrupt) >= 20 {
            #expect(stats.dropped + stats.duplicated + stats.reordered + stats.corrupted > 0, "\(profile.name): no fault was injected: \(stats)")
        }
        await proxy.close()
        await a.shutdown()
        await b.shutdown()
    }

    /// A partition longer than the give-up time, then healing: what was sent during it fails (the sender sees a
    /// `timeout` and the journal says `failed`, with the error); traffic after the healing flows. A failed message
    /// is not resent by itself (`mesh replay` or `redrive` sends it again), and — as for any give-up time — a
    /// message reported failed may still have been handled: the guarantee is that what the receiver handled, it
    /// handled once and in order, and what was confirmed, it handled.
    @Test func partitionLongerThanTheGiveUpTimeThenHealing() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let seen = Recorder<Int64>()
        let b = try await fixture.start("b")
        try b.handleCommand(77) { data in
            await seen.add(try data.getInt64("i"))
            return nil
        }
        let proxy = try await FaultProxy.start(listen: try SocketAddress(ipAddress: "127.0.0.1", port: 0),
                                               forward: try SocketAddress(ipAddress: "127.0.0.1", port: Int(b.address.split(separator: ":").last!)!),
                                               faults: .init(), seed: 3)
        // A peer timeout no loaded run outlasts: the messages of the partition fail by their give-up time (timeout),
        // not because the whole peer was declared down.
        let a = try await fixture.start("a") { $0.retryTimeout = .seconds(3); $0.peerTimeout = .seconds(600) }
        let target = "127.0.0.1:\(proxy.listenAddress.port!)"
        // A working session first (a few tries: on a loaded machine the first exchange can exceed the 3 s give-up).
        var warmedUp = false
        for _ in 0..<5 where !warmedUp { warmedUp = await (try await a.send(77, to: target, ["i": 0])).outcome() == .confirmed }
        try #require(warmedUp)
        proxy.setFaults(.init(partitioned: true))
        var during: [MeshNode.Delivery] = []
        for i in 1...50 { during.append(try await a.send(77, to: target, ["i": .int64(Int64(i))])) }
        for delivery in during {
            guard case .failed(let error) = await delivery.outcome() else { Issue.record("confirmed through a partition"); continue }
            #expect(error.code == .timeout)
        }
        try await eventually(30) {
            try await a.journal.rows("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND status = 'failed' AND error IS NOT NULL AND json_extract(payload_json, '$.i') BETWEEN 1 AND 50") == [["50"]]
        }
        proxy.setFaults(.init())
        // The session recovers: a message sent after the healing gets through (a few tries: on a loaded machine
        // the lane waits for the abandon frames lost in the partition, which can exceed the 3 s give-up).
        var recovered = false
        for _ in 0..<10 where !recovered { recovered = await (try await a.send(77, to: target, ["i": 200])).outcome() == .confirmed }
        try #require(recovered, "no message got through after the partition healed")
        // After the healing: each message confirmed, or (a loaded machine can exceed the 3 s give-up) failed with
        // `timeout` — never lost silently.
        var confirmedAfter: Set<Int64> = []
        for i: Int64 in 51...100 {
            switch await (try await a.send(77, to: target, ["i": .int64(i)])).outcome() {
            case .confirmed: confirmedAfter.insert(i)
            case .failed(let error): #expect(error.code == .timeout, "\(error)")
            case .sent: Issue.record("a reliable message reported sent")
            }
        }
        #expect(!confirmedAfter.isEmpty, "nothing got through after the partition healed")
        let expected = confirmedAfter
        try await eventually(30) { await Set(seen.items).isSuperset(of: expected) }
        let handled = await seen.items.filter { $0 != 0 && $0 != 200 }
        // Everything confirmed was handled; whatever was handled, once and in order.
        #expect(Set(handled).isSuperset(of: confirmedAfter), "\(handled)")
        #expect(zip(handled, handled.dropFirst()).allSatisfy { $0 < $1 }, "out of order or twice: \(handled)")
        await proxy.close()
        await a.shutdown()
        await b.shutdown()
    }
}
