import MeshCore
import MeshJournal
import MeshTransport
import Testing
@testable import Mesh

/// Membership between real nodes on loopback: discovery through a seed, status, values, leave, down, and
/// rejoining from the journal's remembered peers.
@Suite struct MembershipTests {
    /// Fast heartbeats, and a member timeout no stall of a loaded machine reaches: tests that are not about the
    /// timeout must not see a live member go down (2 s did, on a 2-core machine running the whole suite).
    static func fast(_ c: inout MeshConfiguration) {
        c.heartbeatInterval = .milliseconds(50)
        c.memberTimeout = .seconds(60)
    }

    @Test func nodesDiscoverEachOtherThroughOneSeedAndSeeStatusAndValues() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { Self.fast(&$0); $0.nodeType = "MATCH" }
        let b = try await fixture.start("b") { Self.fast(&$0); $0.seeds = [a.address]; $0.nodeType = "ROOM" }
        let c = try await fixture.start("c") { Self.fast(&$0); $0.seeds = [a.address]; $0.nodeType = "ROOM" }
        let events = a.membershipEvents()
        // B and C never named each other: they learn of each other through A's gossip.
        try await eventually(30) { b.nodeAddresses(ofType: "ROOM") == [b.address, c.address].sorted() }
        try await eventually(30) { c.nodeAddresses(ofType: "ROOM") == [b.address, c.address].sorted() }
        try await eventually(30) { a.nodeAddresses(excluding: []).count == 3 }
        #expect(a.nodeAddresses(ofType: "MATCH") == [a.address])
        #expect(a.nodeAddresses(ofType: "NONE").isEmpty)
        #expect(a.randomOnlineNodeAddress(ofType: "NONE") == nil)
        #expect(a.nodeAddresses(ofRole: "UDP").count == 3)

        c.setStatus(.taken)
        b.setNodeValue("ccu", .int64(42))
        try await eventually(30) { a.onlineNodeAddresses(ofType: "ROOM") == [b.address] }
        #expect(a.nodeAddresses(ofType: "ROOM") == [b.address, c.address].sorted())  // Diarkis: includes taken
        try await eventually(30) { a.nodeValue("ccu", at: b.address) == .int64(42) }
        try await eventually(30) { c.nodeValue("ccu", at: b.address) == .int64(42) }  // via gossip or directly
        #expect(a.randomOnlineNodeAddress(ofType: "ROOM") == b.address)
        #expect(b.nodeValue("ccu", at: b.address) == .int64(42))

        // C leaves gracefully: A hears it at once, not after the member timeout.
        await c.shutdown()
        try await eventually(30) { a.nodeAddresses(ofType: "ROOM") == [b.address] }
        // Leaving is announced by an unreliable datagram; if it were lost, the member timeout reports it down.
        let gone = await first(events) { event in
            switch event {
            case .left(let m), .down(let m): m.address == c.address
            default: false
            }
        }
        #expect(gone != nil)
        // Peers are persisted in A's journal.
        let rows = try await a.journal.rows("SELECT count(*) FROM mesh_peer WHERE address IS NOT NULL")
        #expect(rows == [["2"]])
        await b.shutdown()
        await a.shutdown()
    }

    @Test func aSilentMemberIsReportedDown() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        // This test is about the timeout: a short one (the transport's peer timeout is 30 s here, so the member
        // timeout is what reports B down).
        let a = try await fixture.start("a") { Self.fast(&$0); $0.memberTimeout = .seconds(2) }
        let b = try await fixture.start("b") { Self.fast(&$0); $0.seeds = [a.address] }
        let events = a.membershipEvents()
        try await eventually(30) { a.nodeAddresses(excluding: []).count == 2 }
        // B vanishes without a word (its socket closes; no leave announcement).
        await b.transport.closeAbruptly()
        let down = await first(events) { event in
            if case .down(let m) = event { m.address == b.address } else { false }
        }
        #expect(down != nil)
        // (A heartbeat B sent just before closing can be processed late on a loaded machine and bring B back
        // for one timeout; with B silent it ends down.)
        try await eventually(30) { a.nodeAddresses(excluding: []) == [a.address] && a.member(at: b.address)?.isReachable == false }
        await b.shutdown()
        await a.shutdown()
    }

    @Test func aRestartedNodeRejoinsWithoutSeedsFromItsJournal() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { Self.fast(&$0) }
        let b = try await fixture.start("b") { Self.fast(&$0); $0.seeds = [a.address] }
        try await eventually(30) { a.nodeAddresses(excluding: []).count == 2 && b.nodeAddresses(excluding: []).count == 2 }
        let bAddress = b.address
        await b.shutdown()
        try await eventually(30) { a.nodeAddresses(excluding: []).count == 1 }
        // Same journal, same port, no seeds.
        let port = Int(bAddress.split(separator: ":").last!)!
        let restarted = try await fixture.start("b", port: port) { Self.fast(&$0) }
        try await eventually(30) { restarted.nodeAddresses(excluding: []).count == 2 }
        try await eventually(30) { a.nodeAddresses(excluding: []).count == 2 }
        #expect(a.member(at: bAddress)?.incarnation ?? 0 >= 2 << 32)  // the new boot epoch supersedes
        await restarted.shutdown()
        await a.shutdown()
    }

    @Test func badSeedsAndTimingsAreRefusedAtStart() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        await #expect(throws: MeshError.self) { _ = try await fixture.start("x") { $0.seeds = ["not-an-address"] } }
        await #expect(throws: MeshError.self) {
            _ = try await fixture.start("y") { $0.heartbeatInterval = .seconds(1); $0.memberTimeout = .seconds(1) }
        }
    }
}
