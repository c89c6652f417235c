import MeshJournal
import Synchronization

/// Work for one command ID's dispatcher.
enum DispatchWork: Sendable {
    /// A journaled message to hand to the handlers.
    case message(DispatchItem)
    /// A handler was registered: dispatch the messages that arrived `unhandled`, in their order.
    case catchUp
}

/// A journaled inbound message, as the dispatcher needs it.
struct DispatchItem: Sendable {
    let inboundID: Int64
    let commandID: UInt16
    let kind: MessageKind
    let originNode: String
    let originSeq: UInt64
    let peer: String
    let payload: [UInt8]
    let correlationID: String?
    /// Attempts already made (from the journal).
    var attempts: Int
    /// A request already answered (a re-queued dead request, or a chain re-run after a crash that followed its
    /// response): its handlers run again, no second response is sent.
    var isAnswered = false
}

extension DispatchItem {
    /// The dispatch view of a journaled inbound row.
    init(_ row: StoredInbound) {
        self.init(inboundID: row.id, commandID: row.commandID, kind: row.kind, originNode: row.originNode, originSeq: row.originSeq,
                  peer: row.peer, payload: row.payload, correlationID: row.correlationID, attempts: row.attempts,
                  isAnswered: row.isAnswered)
    }

    /// A message just journaled as row `id` (no attempt made yet).
    init(_ row: InboundMessage, id: Int64) {
        self.init(inboundID: id, commandID: row.commandID, kind: row.kind, originNode: row.originNode, originSeq: row.originSeq,
                  peer: row.peer, payload: row.payload, correlationID: row.correlationID, attempts: 0)
    }
}

/// Runs one command ID's messages through its handlers, one message at a time, in arrival order: a slow or
/// failing message holds up only its own command ID.
///
/// Work is run by a runner task that exists only while the lane has work: queueing work on an idle lane starts one,
/// which takes the queue's work in order and ends when the queue is empty. With `startsInline`, the runner starts
/// with `Task.immediate`: it runs on the thread that queued the work — the node's thread, for a received message —
/// until the handler's first suspension, so a handler that returns without suspending costs no thread handoff
/// (waking a pool thread costs the node's thread a wake-up, and the pool thread takes a core from it); what
/// follows a suspension runs on the cooperative pool, as every async handler does without `startsInline`.
///
/// A synchronous chain may run a message inline on the node's thread instead (see `MeshNode+Inline.swift`), but
/// only while the lane is idle: ``outstanding`` counts work queued, running, or reserved by a receive job that has
/// not committed yet, so an inline message never overtakes one of its command ID waiting here.
///
/// Its queue is guarded by a lock that queueing threads (the node's, a registering or resuming task) and the runner
/// share, held only to take or put work.
final class DispatchLane: Sendable {
    let commandID: UInt16
    private let run: @Sendable (DispatchWork) async -> Void
    private let startsInline: Bool
    /// Work queued, running or reserved; incremented before a yield, decremented after the work ran.
    private let outstanding: Outstanding
    private let queue = Mutex(Queue())

    /// The count behind ``isIdle``, shared with the runner.
    private final class Outstanding: Sendable {
        let count = Atomic<Int>(0)
    }

    private struct Queue {
        var work: [DispatchWork] = []
        var head = 0
        /// A runner is taking work (set by whoever starts it, cleared by the runner when the queue is empty).
        var running = false
        /// Counts runners started, so a runner's handle is kept only while that runner is the current one.
        var generation: UInt64 = 0
        /// The current runner, to cancel it (nil until its start returned, or while none runs).
        var runner: Task<Void, Never>?
        /// No more work is taken (``finish()``); what is queued still runs.
        var finished = false
        var cancelled = false
        /// ``drained()`` callers, resumed once the queue is finished and empty and no runner runs.
        var drainWaiters: [CheckedContinuation<Void, Never>] = []

        var isEmpty: Bool { head == work.count }

        mutating func take() -> DispatchWork? {
            guard !isEmpty else { return nil }
            let next = work[head]
            head += 1
            if head == work.count {
                work.removeAll(keepingCapacity: work.count <= 64)
                head = 0
            }
            return next
        }
    }

    /// A lane that runs each piece of work with `run`, in order; `startsInline`: its runner starts on the thread
    /// that queued the work (`Task.immediate`).
    init(commandID: UInt16, startsInline: Bool = true, run: @escaping @Sendable (DispatchWork) async -> Void) {
        self.commandID = commandID
        self.run = run
        self.startsInline = startsInline
        self.outstanding = Outstanding()
    }

    func enqueue(_ work: DispatchWork) {
        outstanding.count.add(1, ordering: .acquiringAndReleasing)
        enqueueReserved(work)
    }

    /// Nothing of this command ID is queued, running or reserved.
    var isIdle: Bool { outstanding.count.load(ordering: .acquiring) == 0 }

    /// Holds the lane busy for work a receive job will queue once it commits (``enqueueReserved(_:)``), or give
    /// back if it fails (``release()``).
    func reserve() { outstanding.count.add(1, ordering: .acquiringAndReleasing) }

    /// Gives back a reservation whose work will not come.
    func release() { outstanding.count.subtract(1, ordering: .releasing) }

    /// Queues work for which ``reserve()`` was called, and starts a runner if none runs.
    func enqueueReserved(_ work: DispatchWork) { enqueueReserved(CollectionOfOne(work)) }

    /// Queues pieces of work for which ``reserve()`` was called, in their order, and starts a runner if none runs:
    /// one runner for all of them (a received batch's messages of one command ID), not one per piece — a runner
    /// that starts inline and finds its handler done without suspending ends when the queue is empty, so work queued
    /// piece by piece started a task for each.
    func enqueueReserved(_ works: some Collection<DispatchWork>) {
        let generation = queue.withLock { queue -> UInt64? in
            guard !queue.finished, !queue.cancelled else { return nil }
            queue.work.append(contentsOf: works)
            guard !queue.running else { return nil }
            queue.running = true
            queue.generation &+= 1
            return queue.generation
        }
        guard let generation else { return }
        let drain: @Sendable () async -> Void = { [self] in
            while let work = next() {
                await run(work)
                outstanding.count.subtract(1, ordering: .releasing)
            }
        }
        let runner = startsInline ? Task.immediate(operation: drain) : Task(operation: drain)
        // Kept while it runs (to cancel it); a runner that already ended, or was followed by another, is not kept.
        let cancelNow = queue.withLock { queue -> Bool in
            guard queue.running, queue.generation == generation else { return false }
            queue.runner = runner
            return queue.cancelled
        }
        if cancelNow { runner.cancel() }
    }

    /// The runner's next work, or nil (and the runner ends) when the queue is empty or the lane was cancelled.
    private func next() -> DispatchWork? {
        let (work, waiters) = queue.withLock { queue -> (DispatchWork?, [CheckedContinuation<Void, Never>]) in
            if !queue.cancelled && !Task.isCancelled, let work = queue.take() { return (work, []) }
            queue.running = false
            queue.runner = nil
            defer { queue.drainWaiters.removeAll() }
            return (nil, queue.drainWaiters)
        }
        for waiter in waiters { waiter.resume() }
        return work
    }

    /// Stops taking work; what is queued still runs.
    func finish() { queue.withLock { $0.finished = true } }

    /// Returns once nothing is queued or running (after ``finish()``: once every piece of work queued before it ran),
    /// or the lane was cancelled.
    func drained() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = queue.withLock { queue -> Bool in
                if !queue.running && (queue.isEmpty || queue.cancelled) { return true }
                queue.drainWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Cancels the runner (a handler that honours cancellation stops; the rest of the queue is dropped).
    func cancel() {
        let runner = queue.withLock { queue -> Task<Void, Never>? in
            queue.cancelled = true
            return queue.runner
        }
        runner?.cancel()
    }
}
