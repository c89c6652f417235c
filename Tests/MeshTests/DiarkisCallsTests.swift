import Mesh
import MeshCore
import MeshJournal
import MeshTransport
import Synchronization
import Testing

/// The smaller Diarkis calls: GetNodeTypes, GetNodeRoleByType, IsCommandDuplicate, OnInitialSync,
/// MarkServerAsTakenIf and diarkisexec's SendMeshCommand, between real nodes on loopback.
@Suite struct DiarkisCallsTests {
    @Test func lookupsByTypeAndRoleAndTheDuplicateCommandCheck() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { MembershipTests.fast(&$0); $0.nodeType = "MATCH"; $0.nodeRole = "TCP" }
        let b = try await fixture.start("b") { MembershipTests.fast(&$0); $0.seeds = [a.address]; $0.nodeType = "ROOM" }
        let c = try await fixture.start("c") { MembershipTests.fast(&$0); $0.seeds = [a.address]; $0.nodeType = "ROOM" }
        try await eventually { a.nodeTypes() == ["MATCH", "ROOM"] && a.members().filter(\.isReachable).count == 3 }
        #expect(a.nodeRole(ofType: "MATCH") == "TCP")
        #expect(a.nodeRole(ofType: "ROOM") == "UDP")
        #expect(a.nodeRole(ofType: "NOPE") == nil)

        #expect(!b.isCommandDuplicate(10001))
        try b.handleCommand(10001) { _ in nil }
        #expect(b.isCommandDuplicate(10001))
        #expect(b.isCommandDuplicate(MeshNode.membershipCommand))
        for node in [c, b, a] { await node.shutdown() }
    }

    @Test func initialSyncWaitsForTheFirstGossipFromTheCluster() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { MembershipTests.fast(&$0) }
        // Alone, with no seed: nobody to hear from.
        #expect(await a.initialSync(timeout: .milliseconds(100)) == false)
        let b = try await fixture.start("b") { MembershipTests.fast(&$0); $0.seeds = [a.address] }
        #expect(await b.initialSync(timeout: .seconds(60)))
        #expect(b.member(at: a.address) != nil)
        #expect(await b.initialSync(timeout: .milliseconds(1)))  // already synced: at once
        await b.shutdown()
        await a.shutdown()
    }

    @Test func theStatusFollowsTheTakenCondition() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { MembershipTests.fast(&$0) }
        let b = try await fixture.start("b") { MembershipTests.fast(&$0); $0.seeds = [a.address] }
        let full = Mutex(false)
        b.markTakenWhile(every: .milliseconds(20)) { full.withLock { $0 } }
        try await eventually { a.member(at: b.address)?.status == .online }
        full.withLock { $0 = true }
        try await eventually { b.status == .taken && a.member(at: b.address)?.status == .taken }
        full.withLock { $0 = false }
        try await eventually { b.status == .online && a.member(at: b.address)?.status == .online }
        // Offline is the operator's word: the condition does not bring the node back online.
        b.setStatus(.offline)
        full.withLock { $0 = true }
        try await eventually { a.member(at: b.address)?.status == .offline }
        #expect(b.status == .offline)
        await b.shutdown()
        await a.shutdown()
    }

    @Test func endpointsArePublishedWithTheRecordAndFoundBothWays() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { MembershipTests.fast(&$0); $0.endpoint = "a.game.example:7000" }
        let b = try await fixture.start("b") { MembershipTests.fast(&$0); $0.seeds = [a.address] }
        #expect(a.endpoint == "a.game.example:7000")
        #expect(b.endpoint == nil)
        try await eventually { b.endpoint(at: a.address) == "a.game.example:7000" }
        #expect(b.member(atEndpoint: "a.game.example:7000")?.address == a.address)
        #expect(b.member(atEndpoint: "nobody:1") == nil)
        // Changed at run time: an `updated` event, and the new endpoint everywhere.
        let events = b.membershipEvents()
        try a.setEndpoint("203.0.113.7:7001")
        let updated = await first(events) { if case .updated(let m) = $0 { m.endpoint == "203.0.113.7:7001" } else { false } }
        #expect(updated != nil)
        #expect(b.member(atEndpoint: "a.game.example:7000") == nil)
        try a.setEndpoint(nil)
        try await eventually { b.endpoint(at: a.address) == nil }
        #expect(throws: MeshError.self) { try a.setEndpoint("no port") }
        var bad = fixture.configuration("c")
        bad.endpoint = "bad_host:1"
        #expect(throws: MeshError.self) { try bad.validate() }
        await b.shutdown()
        await a.shutdown()
    }

    @Test func rawBytesRPCCarriesBytesBothWaysAndTheHandlersError() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b") { $0.maxHandlerAttempts = 1 }
        struct Refused: Error, CustomStringConvertible { var description: String { "empty payload refused" } }
        try b.handleRPC(10003) { payload, sender in
            guard !payload.isEmpty else { throw Refused() }
            return Array(payload.reversed()) + Array(sender.utf8)
        }
        let answer = try await a.sendRPC(10003, to: b.address, [1, 2, 3], timeout: .seconds(30))
        #expect(answer == [3, 2, 1] + Array(a.address.utf8))
        let error = await #expect(throws: MeshError.self) { try await a.sendRPC(10003, to: b.address, [], timeout: .seconds(30)) }
        #expect(error?.code == .handlerError && error?.message.contains("empty payload refused") == true, "\(String(describing: error))")
        // Journaled like every message: the bytes are the request's and the response's rpc field.
        #expect(try await a.journal.rows("""
            SELECT kind, json_extract(payload_json, '$.rpc') IS NOT NULL FROM mesh_messages
            WHERE direction = 'out' AND command_id = 10003 ORDER BY id LIMIT 1
            """) == [["request", "1"]])
        // A plain handler's answer to sendRPC, and a plain request to an RPC handler: errors, not crashes.
        try b.handleCommand(10004) { _ in ["not": "rpc"] }
        let plain = await #expect(throws: MeshError.self) { try await a.sendRPC(10004, to: b.address, [9], timeout: .seconds(30)) }
        #expect(plain?.code == .decode, "\(String(describing: plain))")
        let wrong = await #expect(throws: MeshError.self) { try await a.sendRequest(10003, to: b.address, ["x": 1], timeout: .seconds(30)) }
        #expect(wrong?.code == .handlerError && wrong?.message.contains("raw-bytes RPC") == true, "\(String(describing: wrong))")
        await a.shutdown()
        await b.shutdown()
    }

    @Test func sendMeshCommandSendsToOneOrRelaysToSeveral() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        let c = try await fixture.start("c")
        let seen = Recorder<String>()
        for (name, node) in [("b", b), ("c", c)] {
            try node.handleCommand(10002) { data, info in await seen.add("\(name):\(try data.getString("n")):\(info.kind)"); return nil }
        }
        let one = try await a.sendMeshCommand(10002, to: [b.address], ["n": "1"])
        #expect(one.count == 1)
        #expect(await one[0].outcome() == .confirmed)
        let several = try await a.sendMeshCommand(10002, to: [b.address, c.address], ["n": "2"])
        #expect(several.count == 2)
        for delivery in several { #expect(await delivery.outcome() == .confirmed) }
        _ = try await a.sendMeshCommand(10002, to: [c.address], ["n": "3"], reliable: false)
        #expect(try await a.sendMeshCommand(10002, to: [], ["n": "4"]).isEmpty)
        try await eventually { await seen.count == 4 }
        #expect(Set(await seen.items) == ["b:1:send", "b:2:send", "c:2:send", "c:3:usend"])
        for node in [c, b, a] { await node.shutdown() }
    }
}
