import Mesh
import MeshCore
import MeshTransport
import Testing

/// The node's idle polls (``MeshConfiguration/idleSpinMicroseconds``) are counted for operators and `mesh bench`:
/// `idle_polls` (one per flush that queued a poll) and `idle_polls_caught` (those a datagram or work ended before
/// their time) in ``MeshNode/transportStatistics()``; none without the setting.
@Suite struct IdlePollTests {
    @Test(arguments: [300, 0])
    func pollsAfterExchangesAreCounted(idleSpin: Int) async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { $0.idleSpinMicroseconds = idleSpin }
        let b = try await fixture.start("b") { $0.idleSpinMicroseconds = idleSpin }
        try b.handleCommandInline(2200) { data, _ in data }
        try await eventually { b.isLaneIdle(2200) }
        for _ in 0..<20 {
            #expect(try await a.sendRequest(2200, to: b.address, ["n": 1], timeout: .seconds(30)) == ["n": 1])
        }
        for (name, node) in [("requester", a), ("responder", b)] {
            let statistics = try await node.transportStatistics()
            let (polls, caught) = (statistics["idle_polls"] ?? -1, statistics["idle_polls_caught"] ?? -1)
            if idleSpin == 0 {
                #expect(polls == 0 && caught == 0, "\(name): \(statistics)")
            } else {
                // Every exchange ends in a flush, and every flush with no poll queued queues one.
                #expect(polls >= 20 && (0...polls).contains(caught), "\(name): \(statistics)")
            }
        }
        await a.shutdown()
        await b.shutdown()
    }
}
