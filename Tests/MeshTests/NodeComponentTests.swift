@testable import Mesh
import MeshCore
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing

/// The node's components on their own: the request table, the resume coordinator, the stop signal.
@Suite struct NodeComponentTests {
    @Test func aRequestIsResolvedOnceAndAClosedTableFailsNewOnes() async throws {
        let table = RequestTable()
        let slot = ResponseSlot()
        table.register("n:1", slot)
        table.resolve("n:1", .success(["a": 1]))
        table.resolve("n:1", .failure(MeshError(.timeout, "late")))  // ignored: the first result won
        #expect(try await slot.value() == ["a": 1])

        let waiting = ResponseSlot()
        table.register("n:2", waiting)
        table.close(failing: MeshError(.peerDown, "the node shut down"))
        await #expect(throws: MeshError.self) { try await waiting.value() }
        let late = ResponseSlot()
        table.register("n:3", late)  // after close: fails at once, never waits for a timeout
        let error = await #expect(throws: MeshError.self) { try await late.value() }
        #expect(error?.code == .peerDown)
    }

    @Test func aRequestWithoutResponseTimesOut() async throws {
        let table = RequestTable()
        let slot = ResponseSlot()
        table.register("n:4", slot)
        let error = await #expect(throws: MeshError.self) { try await table.result(of: "n:4", slot: slot, timeout: .milliseconds(20)) }
        #expect(error?.code == .timeout)
        // The slot left the table with the timeout: a late response finds nothing.
        table.resolve("n:4", .success([:]))
    }

    @Test func aResumingPeerHoldsItsSendersUntilItsResendEnds() async throws {
        let resumes = ResumeCoordinator()
        #expect(!resumes.isResuming && resumes.gate(of: "p") == nil)
        let gate = resumes.begin("p")
        #expect(resumes.isResuming && resumes.gate(of: "p") === gate && resumes.gate(of: "q") == nil)
        let passed = Recorder<Bool>()
        let waiter = Task {
            await resumes.gate(of: "p")?.wait()
            await passed.add(true)
        }
        // The sender is held at the gate until the resend ends (the yield lets it run up to the gate).
        for _ in 0..<100 { await Task.yield() }
        #expect(await passed.count == 0)
        resumes.end("p")
        await waiter.value
        #expect(await passed.count == 1)
        #expect(!resumes.isResuming && resumes.gate(of: "p") == nil)
    }

    @Test func theOnceSignalWakesWaitersAndCancellation() async throws {
        let signal = OnceSignal()
        let cancelled = Task { await signal.wait() }
        cancelled.cancel()
        await cancelled.value  // returns without the signal
        let waiting = Task { await signal.wait() }
        signal.fire()
        await waiting.value
        await signal.wait()  // fired already: returns at once
    }

    @Test func runReturnsWhenTheNodeIsShutDownDirectly() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let node = try await fixture.start("direct")
        try await testGracefulShutdown { _ in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await node.run() }
                await node.shutdown()  // not through the service group: run() must notice and return
                try await group.waitForAll()
            }
        }
        #expect(node.isStopped)
    }
}
