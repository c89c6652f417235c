import Mesh
import MeshCore
import MeshJournal
import Testing

/// Shared data between real nodes on loopback: convergence under concurrent writers, compare-and-set, removal,
/// limits, the journal (a restart has the map before any gossip) and the audit view.
@Suite struct SharedDataTests {
    static func snapshot(_ node: MeshNode) -> [String: String] {
        node.sharedEntries().mapValues { "\(MeshJSON.string(from: $0.value!))@\($0.version)/\($0.writer.prefix(4))" }
    }

    @Test func concurrentWritersOnThreeNodesConvergeToOneMap() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { MembershipTests.fast(&$0) }
        let b = try await fixture.start("b") { MembershipTests.fast(&$0); $0.seeds = [a.address] }
        let c = try await fixture.start("c") { MembershipTests.fast(&$0); $0.seeds = [a.address] }
        try await eventually { [a, b, c].allSatisfy { $0.members().filter(\.isReachable).count == 3 } }
        let nodes = [a, b, c]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (n, node) in nodes.enumerated() {
                group.addTask {
                    for round in 0..<10 {
                        for key in 0..<5 { try await node.setShared("k\(key)", .string("node\(n)-round\(round)")) }
                    }
                    try await node.removeShared("k4")
                }
            }
            try await group.waitForAll()
        }
        try await eventually { Self.snapshot(a) == Self.snapshot(b) && Self.snapshot(b) == Self.snapshot(c) && Self.snapshot(a).count == 4 }
        #expect(a.shared("k4") == nil && b.shared("k4") == nil)
        for key in 0..<4 { #expect(a.shared("k\(key)")!.version >= 10, "k\(key): \(String(describing: a.shared("k\(key)")))") }
        for node in [c, b, a] { await node.shutdown() }
    }

    @Test func compareAndSetRemovalChangesAndLimits() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { MembershipTests.fast(&$0); $0.sharedDataLimits = SharedDataLimits(maxKeys: 2, maxValueBytes: 128, maxTotalBytes: 4096) }
        let b = try await fixture.start("b") { MembershipTests.fast(&$0); $0.seeds = [a.address] }
        let changes = b.sharedDataChanges()
        #expect(try await a.setShared("room", ["players": 3], ifVersion: 0).version == 1)
        let conflict = await #expect(throws: MeshError.self) { try await a.setShared("room", 9, ifVersion: 0) }
        #expect(conflict?.code == .versionConflict && conflict?.message.contains("version 1") == true, "\(String(describing: conflict))")
        #expect(try await a.setShared("room", ["players": 4], ifVersion: 1).version == 2)
        #expect(await first(changes) { $0.key == "room" && $0.version == 2 } != nil)
        #expect(b.shared("room")?.value == .map(["players": 4]))
        try await a.removeShared("room")
        #expect(await first(changes) { $0.key == "room" && $0.isRemoved } != nil)
        #expect(b.shared("room") == nil)
        // Limits, with the numbers in the message.
        let big = await #expect(throws: MeshError.self) { try await a.setShared("big", .bytes([UInt8](repeating: 0, count: 500))) }
        #expect(big?.code == .limitExceeded && big?.message.contains("limit is 128") == true, "\(String(describing: big))")
        try await a.setShared("one", 1)
        try await a.setShared("two", 2)
        let third = await #expect(throws: MeshError.self) { try await a.setShared("three", 3) }
        #expect(third?.code == .limitExceeded && third?.message.contains("2 keys") == true, "\(String(describing: third))")
        // The audit view holds every accepted version, here and at b.
        #expect(try await a.journal.rows("SELECT version, deleted, value_json FROM mesh_shared_data WHERE key = 'room' ORDER BY id")
            == [["1", "0", #"{"players":3}"#], ["2", "0", #"{"players":4}"#], ["3", "1", nil]])
        try await eventually { try await b.journal.rows("SELECT max(version) FROM mesh_shared_data WHERE key = 'room'") == [["3"]] }
        await b.shutdown()
        await a.shutdown()
    }

    @Test func aRestartedNodeHasTheMapBeforeItHearsFromAnyone() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        var a = try await fixture.start("a")
        try await a.setShared("season", 7)
        try await a.setShared("gone", 1)
        try await a.removeShared("gone")
        await a.shutdown()
        a = try await fixture.start("a")
        #expect(a.shared("season")?.value == 7 && a.shared("season")?.version == 1)
        #expect(a.shared("gone") == nil)
        #expect(try await a.setShared("gone", 2, ifVersion: 2).version == 3)
        await a.shutdown()
    }

    @Test func aGuestsWriteReachesTheMembers() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { MembershipTests.fast(&$0) }
        let b = try await fixture.start("b") { MembershipTests.fast(&$0); $0.seeds = [a.address] }
        try await a.setShared("from-a", 1)
        let g = try await fixture.start("g") { MembershipTests.fast(&$0); $0.seeds = [a.address]; $0.guest = true }
        try await eventually { g.shared("from-a")?.value == 1 }
        try await g.setShared("from-guest", 2)
        try await eventually { a.shared("from-guest")?.value == 2 && b.shared("from-guest")?.value == 2 }
        for node in [g, b, a] { await node.shutdown() }
    }
}
