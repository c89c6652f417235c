@testable import Mesh
import MeshCore
import MeshJournal
import NIOCore
import MeshTransport
import NIOPosix
import ServiceLifecycle
import Synchronization
import ServiceLifecycleTestKit
import Testing

/// The node's components on their own: the request table, the resume coordinator, the stop signal.
@Suite struct NodeComponentTests {
    @Test func aRequestIsResolvedOnceAndAClosedTableFailsNewOnes() async throws {
        let table = RequestTable(eventLoop: MultiThreadedEventLoopGroup.singleton.next())
        let slot = ResponseSlot()
        table.register("n:1", slot, timeout: .seconds(30))
        table.resolve("n:1", .success(["a": 1]))
        table.resolve("n:1", .failure(MeshError(.timeout, "late")))  // ignored: the first result won
        #expect(try await slot.value() == ["a": 1])

        let waiting = ResponseSlot()
        table.register("n:2", waiting, timeout: .seconds(30))
        table.close(failing: MeshError(.peerDown, "the node shut down"))
        await #expect(throws: MeshError.self) { try await waiting.value() }
        let late = ResponseSlot()
        table.register("n:3", late, timeout: .seconds(30))  // after close: fails at once, never waits for a timeout
        let error = await #expect(throws: MeshError.self) { try await late.value() }
        #expect(error?.code == .peerDown)
    }

    @Test func aRequestWithoutResponseTimesOutAndOneAnsweredInTimeDoesNot() async throws {
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let table = RequestTable(eventLoop: loop)
        let slot = ResponseSlot()
        table.register("n:4", slot, timeout: .milliseconds(20))
        let error = await #expect(throws: MeshError.self) { try await slot.value() }
        #expect(error?.code == .timeout)
        // The slot left the table with the timeout: a late response finds nothing.
        table.resolve("n:4", .success([:]))
        // Answered before its timeout: the timer is cancelled and the answer stays the result (the timer would
        // have fired long before the second, longer request times out). Registered and answered in one task of the
        // timers' loop, so the answer comes first however late this test's thread runs (on a busy machine it once
        // came 20 ms after the registration, and the timeout won).
        let answered = ResponseSlot(), slower = ResponseSlot()
        try await loop.submit {
            table.register("n:5", answered, timeout: .milliseconds(20))
            table.register("n:6", slower, timeout: .milliseconds(200))
            table.resolve("n:5", .success(["b": 2]))
        }.get()
        await #expect(throws: MeshError.self) { try await slower.value() }
        #expect(try await answered.value() == ["b": 2])
        // A timeout too large for nanoseconds saturates instead of trapping.
        table.register("n:7", ResponseSlot(), timeout: .seconds(Int64.max))
        table.resolve("n:7", .success([:]))
    }

    @Test func aSlotStartsItsWorkOnlyOnceTheCallerWaitsAndNotWhenAlreadyResolved() async throws {
        let started = Mutex(0)
        let slot = ResponseSlot()
        let value = try await slot.value {
            started.withLock { $0 += 1 }
            slot.resolve(.success(["c": 3]))  // resolved from inside the start: the waiting caller gets it
        }
        #expect(value == ["c": 3] && started.withLock { $0 } == 1)
        let done = ResponseSlot()
        done.resolve(.failure(MeshError(.timeout, "early")))
        await #expect(throws: MeshError.self) { try await done.value { started.withLock { $0 += 1 } } }
        #expect(started.withLock { $0 } == 1)
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

    @Test func addressTextsMatchTheParserAndStayBounded() throws {
        let texts = AddressTexts()
        // The same address and text as parsing and printing each time, from the cache the second time.
        for _ in 0..<2 {
            let (address, text) = try texts.parse("localhost:9001")
            #expect(address == (try MeshAddress.parse("127.0.0.1:9001")))
            #expect(text == "127.0.0.1:9001")
            #expect(try texts.parse("[::1]:7").1 == "[::1]:7")
        }
        // A bad address fails every time with the parser's error; nothing is kept for it.
        for _ in 0..<2 {
            let error = #expect(throws: MeshError.self) { try texts.parse("127.0.0.1") }
            #expect(error?.code == .invalidAddress)
        }
        #expect(texts.counts.parsed == 2)
        // Received datagrams: the peer text is the parser's normalized form; the node text its description.
        let node = NodeID.random()
        let address = try MeshAddress.parse("127.0.0.1:9001")
        #expect(texts.texts(address: address, node: node) == ("127.0.0.1:9001", node.description))
        // Ever-new peers: each map starts over at its capacity instead of growing.
        for port in 1...(AddressTexts.capacity + 10) {
            _ = try texts.parse("127.0.0.1:\(port)")
            _ = texts.texts(address: try MeshAddress.parse("127.0.0.1:\(port)"), node: NodeID.random())
        }
        let counts = texts.counts
        #expect(counts.parsed <= AddressTexts.capacity && counts.printed <= AddressTexts.capacity && counts.nodes <= AddressTexts.capacity)
        #expect(counts.parsed > 0 && counts.printed > 0)
    }

    /// A lane runs its work one piece at a time, in order, also across a handler's suspension; on an idle lane a
    /// runner started inline runs the work before `enqueue` returns (up to its first suspension), and one started on
    /// the pool does not. `drained()` waits for what is queued; `cancel()` stops the runner and drops the rest.
    @Test func aLaneRunsInOrderAcrossSuspensionsAndStartsWhereItWasToldTo() async throws {
        let gate = Gate()
        let log = Mutex<[String]>([])
        @Sendable func item(_ id: Int64) -> DispatchWork {
            .message(DispatchItem(inboundID: id, commandID: 1, kind: .send, originNode: "n", originSeq: UInt64(id), peer: "p",
                                  payload: [], correlationID: nil, attempts: 0))
        }
        let lane = DispatchLane(commandID: 1, startsInline: true) { work in
            guard case .message(let item) = work else { return }
            log.withLock { $0.append("start \(item.inboundID)") }
            if item.inboundID == 1 { await gate.wait() }
            log.withLock { $0.append("end \(item.inboundID)") }
        }
        lane.enqueue(item(1))
        // Started inline: 1 ran up to its suspension before enqueue returned.
        #expect(log.withLock { $0 } == ["start 1"])
        lane.enqueue(item(2))
        lane.enqueue(item(3))
        // 2 waits for 1, though 1 is suspended: it did not start inline beside it.
        #expect(log.withLock { $0 } == ["start 1"])
        #expect(!lane.isIdle)
        await gate.open()
        try await eventually { lane.isIdle }
        #expect(log.withLock { $0 } == ["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"])
        // Idle again: the next work starts a new runner, inline again.
        lane.enqueue(item(4))
        #expect(log.withLock { $0 }.suffix(2) == ["start 4", "end 4"])
        lane.finish()
        lane.enqueue(item(5))  // after finish: not taken
        await lane.drained()
        #expect(log.withLock { $0 }.last == "end 4")

        // Queued from an event loop's thread: run there when inline, on the pool when not.
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let onLoop = Mutex<[Bool]>([])
        for inline in [true, false] {
            let lane = DispatchLane(commandID: 2, startsInline: inline) { _ in
                onLoop.withLock { $0.append(MultiThreadedEventLoopGroup.currentEventLoop != nil) }
            }
            try await group.next().submit { lane.enqueue(item(1)) }.get()
            try await eventually { lane.isIdle }
        }
        #expect(onLoop.withLock { $0 } == [true, false])
        try await group.shutdownGracefully()

        // Cancelled while 1 waits: 1 sees the cancellation, 2 never runs, drained() returns.
        let never = Gate()
        let cancelled = Mutex<[String]>([])
        let stopping = DispatchLane(commandID: 3) { work in
            guard case .message(let item) = work else { return }
            if item.inboundID == 1 {
                await withTaskCancellationHandler { await never.wait() } onCancel: { Task { await never.open() } }
            }
            cancelled.withLock { $0.append("\(item.inboundID): \(Task.isCancelled)") }
        }
        stopping.enqueue(item(1))
        stopping.enqueue(item(2))
        stopping.finish()
        stopping.cancel()
        await stopping.drained()
        try await eventually { cancelled.withLock { $0 } == ["1: true"] }
        #expect(cancelled.withLock { $0 } == ["1: true"])
    }

    /// The lane hand-off, on a real event loop: a message reaches its lane in the loop's next task (after the flush
    /// that sends its confirmation), a request at once — unless work waits ahead of it, whose order it keeps — and a
    /// lane holding handed-off work is not idle, so nothing of its command ID runs inline ahead of that work.
    @Test func theLaneHandoffDefersMessagesNotRequestsAndKeepsTheOrder() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let activity = LoopActivity()
        let handoff = LaneHandoff(eventLoop: loop, activity: activity)
        let seen = Mutex<[Int64]>([])
        let lane = DispatchLane(commandID: 1) { work in
            if case .message(let item) = work { seen.withLock { $0.append(item.inboundID) } }
        }
        @Sendable func item(_ id: Int64, _ kind: MessageKind) -> DispatchWork {
            .message(DispatchItem(inboundID: id, commandID: 1, kind: kind, originNode: "n", originSeq: UInt64(id), peer: "p",
                                  payload: [], correlationID: nil, attempts: 0))
        }
        func seenOnce(_ count: Int) async throws -> [Int64] {
            try await eventually { seen.withLock { $0.count } >= count }
            return seen.withLock { $0 }
        }
        // Within one task of the loop: 1 waits for the next task, so 2, queued on the lane directly after it, runs
        // first; the request 3 has 1 ahead of it and waits too.
        let idleWhileWaiting = try await loop.submit {
            handoff.hand(item(1, .send), to: lane, reserved: false, urgent: false)
            let idle = lane.isIdle
            lane.enqueue(item(2, .send))
            handoff.hand(item(3, .request), to: lane, reserved: false, urgent: true)
            return idle
        }.get()
        #expect(!idleWhileWaiting)
        #expect(try await seenOnce(3) == [2, 1, 3])
        // One hand-over task was queued for 1 and 3, and the loop's activity counts it (it ends an idle spin).
        #expect(activity.value == 1)
        // Nothing waiting: the request 4 goes to its lane at once, ahead of 5 queued right after it.
        try await loop.submit {
            handoff.hand(item(4, .request), to: lane, reserved: false, urgent: true)
            lane.enqueue(item(5, .send))
        }.get()
        #expect(try await seenOnce(5) == [2, 1, 3, 4, 5])
        #expect(activity.value == 1, "a request handed over at once queues nothing on the loop")
        // Work its caller reserved the lane for (an inline pass's fallback) is not counted twice: idle once it ran.
        try await loop.submit {
            lane.reserve()
            handoff.hand(item(6, .send), to: lane, reserved: true, urgent: false)
        }.get()
        #expect(try await seenOnce(6) == [2, 1, 3, 4, 5, 6])
        lane.finish()
        await lane.drained()
        #expect(lane.isIdle)
        try await group.shutdownGracefully()
    }

    /// Messages handed off in one task of the loop reach each lane together, in their order: a lane whose runner
    /// starts inline runs its pieces in one go (one task, not one per message) before the next lane's, where queued
    /// one by one each piece ran, and ended its task, before the next was queued (A1, B1, A2, B2).
    @Test func theLaneHandoffQueuesABatchPerLaneInOrder() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let handoff = LaneHandoff(eventLoop: loop, activity: LoopActivity())
        let seen = Mutex<[String]>([])
        func lane(_ name: String, _ commandID: UInt16) -> DispatchLane {
            DispatchLane(commandID: commandID) { work in
                if case .message(let item) = work { seen.withLock { $0.append("\(name)\(item.inboundID)") } }
            }
        }
        let a = lane("A", 1)
        let b = lane("B", 2)
        @Sendable func item(_ id: Int64, _ commandID: UInt16) -> DispatchWork {
            .message(DispatchItem(inboundID: id, commandID: commandID, kind: .send, originNode: "n", originSeq: UInt64(id),
                                  peer: "p", payload: [], correlationID: nil, attempts: 0))
        }
        try await loop.submit {
            handoff.hand(item(1, 1), to: a, reserved: false, urgent: false)
            handoff.hand(item(1, 2), to: b, reserved: false, urgent: false)
            handoff.hand(item(2, 1), to: a, reserved: false, urgent: false)
            handoff.hand(item(2, 2), to: b, reserved: false, urgent: false)
            handoff.hand(item(3, 1), to: a, reserved: false, urgent: false)
        }.get()
        try await eventually { seen.withLock { $0.count } == 5 && a.isIdle && b.isIdle }
        #expect(seen.withLock { $0 } == ["A1", "A2", "A3", "B1", "B2"])
        try await group.shutdownGracefully()
    }
}
