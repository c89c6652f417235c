import Mesh
import MeshCore
import MeshTransport
import Testing

/// The node's idle poll (``MeshConfiguration/idleSpinMicroseconds``, on by default) under sporadic traffic: a poll
/// that waits for whatever comes next, with the next message milliseconds away, runs its whole time for nothing, so
/// the node skips such polls (``IdleSpin/Backoff`` in the transport) instead of spending a core on them.
@Suite struct IdlePollTests {
    @Test func sporadicTrafficSkipsPollsThatWouldCatchNothing() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        try b.handleCommandInline(2200) { _, _ in nil }
        try await eventually { b.isLaneIdle(2200) }
        for _ in 0..<20 {
            let delivery = try await a.sendConfirmed(2200, to: b.address, ["n": 1])
            #expect(await delivery.outcome() == .confirmed)
            // The traffic under test: the next message 5 ms after the last one settled (ten poll times and more).
            try await Task.sleep(for: .milliseconds(5))
        }
        for (name, node) in [("sender", a), ("receiver", b)] {
            let statistics = try await node.transportStatistics()
            let (polls, skipped) = (statistics["idle_polls"] ?? 0, statistics["idle_polls_skipped"] ?? 0)
            #expect(polls > 0, "\(name): \(statistics)")
            #expect(skipped > 0, "\(name) skipped no poll: \(statistics)")
        }
        await a.shutdown()
        await b.shutdown()
    }
}
