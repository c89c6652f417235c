import Foundation
import MeshCore
import MeshJournal
import MeshTransport
import NIOPosix
import Testing
@testable import Mesh

/// Behaviours the README documents that no other test touched: each is exercised end to end between real nodes.
@Suite struct DocumentedBehaviourTests {
    /// `usend` and `usendMany` are sent once, unreliably — and still journaled on both sides.
    @Test func unreliableSendsAreJournaledOnBothSides() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let received = Recorder<String>()
        var receivers: [MeshNode] = []
        for name in ["b", "c", "d"] {
            let node = try await fixture.start(name)
            try node.handleCommand(30) { data in await received.add(try data.getString("via")); return nil }
            receivers.append(node)
        }
        let a = try await fixture.start("a")
        // A session first, so the unreliable datagrams do not race the handshake (they are never retransmitted).
        for node in receivers { #expect(await (try await a.send(31, to: node.address, ["warm": true])).outcome() == .confirmed) }
        #expect(await (try await a.usend(30, to: receivers[0].address, ["via": "usend"])).outcome() == .sent)
        for delivery in try await a.usendMany(30, to: receivers.map(\.address), ["via": "usendMany"], limit: 1) {
            #expect(await delivery.outcome() == .sent)
        }
        // On loopback nothing is lost: B gets both, C and D the relayed one (B relays to C, C to D with limit 1).
        try await eventually(30) { await received.count == 4 }
        #expect(try await a.journal.rows("SELECT kind, count(*) FROM mesh_messages WHERE direction = 'out' AND command_id = 30 GROUP BY 1")
            == [["usend", "2"]])
        // (Handler statuses are journaled just after the handlers run: wait for them.)
        for node in receivers {
            try await eventually(30) {
                let rows = try await node.journal.rows("SELECT kind, status FROM mesh_messages WHERE direction = 'in' AND command_id = 30")
                return !rows.isEmpty && rows.allSatisfy { $0 == ["usend", "handled"] }
            }
        }
        for node in receivers + [a] { await node.shutdown() }
    }

    struct Move: Codable, Equatable, Sendable {
        var player: String
        var x: Int
        var path: [Double]
    }

    /// A struct is sent as data (`send` with any `Encodable`) and handled as that struct (`handleCommand(as:)`).
    @Test func anEncodableIsSentAndHandledAsItself() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let moves = Recorder<Move>()
        let b = try await fixture.start("b")
        try b.handleCommand(40, as: Move.self) { move, _ in await moves.add(move); return nil }
        let a = try await fixture.start("a")
        let move = Move(player: "p-7", x: -3, path: [0.5, 1.25])
        #expect(await (try await a.send(40, to: b.address, move)).outcome() == .confirmed)
        try await eventually(30) { await moves.count == 1 }
        #expect(await moves.items == [move])
        #expect(try await b.journal.rows("SELECT json_extract(payload_json, '$.player') FROM mesh_messages WHERE direction = 'in'") == [["p-7"]])
        await a.shutdown()
        await b.shutdown()
    }

    /// `storesPayloadJSON = false`: `payload_json` is NULL in both directions; the payload itself is kept.
    @Test func withoutPayloadJSONTheColumnIsNullAndThePayloadKept() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let b = try await fixture.start("b") { $0.storesPayloadJSON = false }
        try b.handleCommand(41) { data in data }
        let a = try await fixture.start("a") { $0.storesPayloadJSON = false }
        _ = try await a.sendRequest(41, to: b.address, ["n": 1], timeout: .seconds(30))
        for node in [a, b] {
            try await eventually(30) { try await node.journal.rows("SELECT count(*) FROM mesh_messages WHERE status NOT IN ('acked', 'handled')") == [["0"]] }
            let rows = try await node.journal.rows("SELECT payload_json IS NULL, length(payload) > 0 FROM mesh_messages")
            #expect(rows.count == 2 && rows.allSatisfy { $0 == ["1", "1"] }, "\(rows)")
        }
        await a.shutdown()
        await b.shutdown()
    }

    /// `startsAsyncHandlersInline` (default on): an async handler starts on the node's own thread — an event loop —
    /// and runs there until it suspends; off, it starts on Swift's cooperative pool. Either way it answers its
    /// request, also after a suspension. (Where it goes on after an `await` is not asserted: an `await` whose result
    /// is there by the time the task would suspend — a short sleep on a loaded machine — does not suspend, and the
    /// handler then goes on where it was.)
    @Test(arguments: [true, false]) func anAsyncHandlerStartsWhereTheSettingSays(inline: Bool) async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let b = try await fixture.start("b") { $0.startsAsyncHandlersInline = inline }
        try b.handleCommand(43) { data in
            let started = MultiThreadedEventLoopGroup.currentEventLoop != nil
            try await Task.sleep(for: .milliseconds(1))
            return ["startedOnLoop": .bool(started), "n": .int64(Int64(try data.getInt("n") + 1))]
        }
        let a = try await fixture.start("a")
        for n in 0..<3 {
            let response = try await a.sendRequest(43, to: b.address, ["n": .int64(Int64(n))], timeout: .seconds(30))
            #expect(try response.getBool("startedOnLoop") == inline)
            #expect(try response.getInt("n") == n + 1)
        }
        await a.shutdown()
        await b.shutdown()
    }

    /// `sendToAnyOnline` picks an online member of the type (never the caller); none gives `notMember`.
    @Test func sendToAnyOnlineReachesAMemberOfTheTypeOrSaysThereIsNone() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let hits = Recorder<String>()
        func fast(_ c: inout MeshConfiguration) { MembershipTests.fast(&c) }
        let a = try await fixture.start("a") { fast(&$0); $0.nodeType = "ROOM" }
        let rooms = [try await fixture.start("b") { fast(&$0); $0.nodeType = "ROOM"; $0.seeds = [a.address] },
                     try await fixture.start("c") { fast(&$0); $0.nodeType = "ROOM"; $0.seeds = [a.address] }]
        for room in rooms + [a] {
            let name = room.address
            try room.handleCommand(42) { _ in await hits.add(name); return nil }
        }
        try await eventually(30) { a.onlineNodeAddresses(ofType: "ROOM").count == 3 }
        for _ in 0..<10 { #expect(await (try await a.sendToAnyOnline(42, ofType: "ROOM", ["x": 1])).outcome() == .confirmed) }
        try await eventually(30) { await hits.count == 10 }
        let targets = await hits.items
        #expect(Set(targets).isSubset(of: Set(rooms.map(\.address))), "sent to itself: \(targets)")
        let none = await #expect(throws: MeshError.self) { try await a.sendToAnyOnline(42, ofType: "LOBBY", ["x": 1]) }
        #expect(none?.code == .notMember)
        for node in rooms + [a] { await node.shutdown() }
    }

    /// `replay(sendResponses: true)` sends the new handlers' responses to the original requester, who journals them
    /// (as responses nobody waits for); without it nothing is sent.
    @Test func aReplayCanSendItsResponses() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let b = try await fixture.start("b")
        try b.handleCommand(43) { data in ["n": .int64(try data.getInt64("n") * 2)] }
        let a = try await fixture.start("a")
        for n in 1...3 { _ = try await a.sendRequest(43, to: b.address, ["n": .int64(Int64(n))], timeout: .seconds(30)) }
        let responses = "SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND kind = 'response'"
        #expect(try await a.journal.rows(responses) == [["3"]])
        _ = try await b.replay(commandID: 43)
        try await b.journal.barrier()
        #expect(try await b.journal.rows("SELECT count(*) FROM mesh_messages WHERE direction = 'out'") == [["3"]])
        let report = try await b.replay(commandID: 43, sendResponses: true)
        #expect(report.entries.count == 3)
        try await eventually(30) { try await a.journal.rows(responses) == [["6"]] }
        #expect(try await a.journal.rows("""
            SELECT count(DISTINCT correlation_id) FROM mesh_messages WHERE direction = 'in' AND kind = 'response'
            """) == [["3"]])
        await a.shutdown()
        await b.shutdown()
    }

    /// Key rotation without downtime between live nodes, as the README's Operations section describes: add the
    /// new key everywhere, make it primary everywhere, drop the old one — restarting one node at a time, and
    /// messages flowing both ways at every step. A node left on the old key alone is cut off at the end.
    @Test func aKeyIsRotatedNodeByNodeWithoutLosingTheLink() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let old = fixture.key
        let new = ClusterKey.generate()
        var ports: [String: Int] = [:]
        func start(_ name: String, _ keyring: Keyring) async throws -> MeshNode {
            let node = try await fixture.start(name, port: ports[name] ?? 0) { $0.keyring = keyring }
            ports[name] = Int(node.address.split(separator: ":").last!)!
            try node.handleCommand(44) { _ in nil }
            return node
        }
        func exchange(_ x: MeshNode, _ y: MeshNode, _ step: String) async throws {
            #expect(await (try await x.send(44, to: y.address, ["step": .string(step)])).outcome() == .confirmed, "\(step): x → y")
            #expect(await (try await y.send(44, to: x.address, ["step": .string(step)])).outcome() == .confirmed, "\(step): y → x")
        }
        var a = try await start("a", Keyring(old))
        var b = try await start("b", Keyring(old))
        try await exchange(a, b, "old key")
        let both = { (primary: UInt8) in try Keyring(keys: [0: old, 1: new], primary: primary) }
        await b.shutdown(); b = try await start("b", try both(0)); try await exchange(a, b, "b knows the new key")
        await a.shutdown(); a = try await start("a", try both(0)); try await exchange(a, b, "a knows the new key")
        await b.shutdown(); b = try await start("b", try both(1)); try await exchange(a, b, "b sends with the new key")
        await a.shutdown(); a = try await start("a", try both(1)); try await exchange(a, b, "a sends with the new key")
        await b.shutdown(); b = try await start("b", try Keyring(keys: [1: new], primary: 1)); try await exchange(a, b, "b dropped the old key")
        await a.shutdown(); a = try await start("a", try Keyring(keys: [1: new], primary: 1)); try await exchange(a, b, "a dropped the old key")
        // A node that still has only the old key cannot reach them any more.
        let stale = try await fixture.start("stale") { $0.keyring = Keyring(old); $0.retryTimeout = .seconds(1) }
        guard case .failed = await (try await stale.send(44, to: a.address, ["step": "stale"])).outcome() else {
            Issue.record("a node with the dropped key was heard")
            return
        }
        await stale.shutdown()
        await a.shutdown()
        await b.shutdown()
    }
}
