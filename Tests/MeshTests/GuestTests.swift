import Mesh
import MeshCore
import MeshJournal
import Testing

/// Guest mode between real nodes: a guest sends, requests and lists the cluster, and no member ever lists it.
@Suite struct GuestTests {
    @Test func aGuestListsTheClusterAndRequestsButIsNeverListed() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { MembershipTests.fast(&$0); $0.nodeType = "MATCH" }
        let b = try await fixture.start("b") { MembershipTests.fast(&$0); $0.seeds = [a.address]; $0.nodeType = "ROOM" }
        try b.handleCommand(10010) { data in data }
        try await eventually { a.member(at: b.address)?.isReachable == true }
        let g = try await fixture.start("g") { MembershipTests.fast(&$0); $0.seeds = [a.address]; $0.guest = true }
        #expect(await g.initialSync(timeout: .seconds(60)))
        try await eventually { g.member(at: b.address)?.isReachable == true && g.member(at: a.address)?.isReachable == true }
        #expect(g.nodeAddresses(ofType: "ROOM") == [b.address])
        #expect(try await g.sendRequest(10010, to: b.address, ["q": 1], timeout: .seconds(30)) == ["q": 1])
        // Rounds later — b's new value reached the guest through a's answers — neither member lists the guest.
        let events = a.membershipEvents()
        b.setNodeValue("ccu", 7)
        try await eventually { g.nodeValue("ccu", at: b.address) == 7 }
        #expect(g.members().count == 3)
        #expect(a.member(at: g.address) == nil && b.member(at: g.address) == nil)
        #expect(!a.members().contains { $0.nodeID == g.identity.nodeID } && !b.members().contains { $0.nodeID == g.identity.nodeID })
        await g.shutdown()
        // Its goodbye is no membership event at the members either.
        #expect(await first(events, within: 1) { $0.member.nodeID == g.identity.nodeID } == nil)
        await b.shutdown()
        await a.shutdown()
    }
}
