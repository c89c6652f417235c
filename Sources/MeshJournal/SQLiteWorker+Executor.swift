import Dispatch
import Logging
import Synchronization

/// The writer on a lent executor (``JournalExecutor``: a node's own event loop) instead of a thread of its own.
///
/// The same group commit as on a thread, driven by steps the executor runs instead of a loop that blocks: a job
/// queued from any thread queues one step (if none is queued); a step takes what is queued (up to the batch size),
/// runs it in one transaction and queues the next step if more is waiting. Waiting never blocks the executor:
/// deferrable writes held back for an awaited one (``JournalConfiguration/deferredCommitMicroseconds``), the batch
/// delay, and the backoff of writes a full disk failed are timers on it.
extension SQLiteWorker {
    /// The state only the lent executor touches.
    ///
    /// `@unchecked Sendable` is safe: every property is read and written by steps, setup and close, which all run
    /// on the one serial executor (``JournalExecutor``), so no two accesses overlap; the object only crosses to
    /// that executor inside the closures it runs.
    final class LentState: @unchecked Sendable {
        /// The write connection, opened by `setup` on the executor.
        var context: WorkerContext?
        /// Posted writes of an aborted transaction, retried ahead of everything queued after them.
        var retry: [any SQLiteJob] = []
        var retryAt: UInt64 = 0
        var backoffNanoseconds: UInt64 = 10_000_000
        /// Until when deferrable writes may wait for an awaited one (0: not waiting).
        var holdUntil: UInt64 = 0
        /// A timer step is pending for this instant (0: none), so a wait arms one timer, not one per step.
        var timerAt: UInt64 = 0
        /// Cancels that timer: a step that runs the held batch early (an awaited job came) needs it no more.
        var cancelTimer: (@Sendable () -> Void)?
        /// A step is running: a job submitted from inside it (a completion, a `then`) is queued, never run in it.
        var inStep = false
    }

    /// ``start(setup:)`` on the lent executor.
    func startLent<Report: Sendable>(setup: @escaping @Sendable () throws -> (WorkerContext, Report)) async throws -> Report {
        let (executor, lent) = (self.executor!, self.lent!)
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Report, any Error>) in
            executor.execute { [self] in
                do {
                    let (context, report) = try setup()
                    lent.context = context
                    continuation.resume(returning: report)
                } catch {
                    state.withLock { $0.closed = true; $0.exited = true }
                    continuation.resume(throwing: error)
                }
            }
        }
    }

    /// Queues `job` and a step to run it, unless one is queued already. False once closed. With `commitAtOnce`, on
    /// the executor and outside a step, the step runs before this returns.
    func enqueueLent(_ job: any SQLiteJob, commitAtOnce: Bool = false) -> Bool {
        let now = commitAtOnce && executor!.isCurrent && lent?.inStep == false
        let (accepted, schedule) = state.withLock { state -> (Bool, Bool) in
            guard !state.closed else { return (false, false) }
            state.queue.append(job)
            if state.stepQueued && !now { return (true, false) }
            state.stepQueued = true
            return (true, true)
        }
        if schedule {
            if now { step() } else { executor!.execute { [self] in step() } }
        }
        return accepted
    }

    /// Stops accepting jobs, lets the queued ones finish, closes the connection on the executor.
    func closeLent() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let resumeNow = state.withLock { state -> Bool in
                if state.exited { return true }
                state.closed = true
                state.exitContinuations.append(continuation)
                return false
            }
            if resumeNow { continuation.resume() } else { executor!.execute { [self] in step() } }
        }
    }

    /// One step on the executor: runs what is due in one group-commit transaction (or several, around jobs that
    /// run alone), then queues the next step if more is waiting, or arms a timer for a wait.
    private func step() {
        guard let lent, let context = lent.context else { return }
        lent.inStep = true
        defer { lent.inStep = false }
        guard case .writer(let maxBatch, let delayMicroseconds, let deferMicroseconds) = role else { return }
        let now = DispatchTime.now().uptimeNanoseconds
        // A retry waits out its backoff; new jobs queue behind it (nothing overtakes a write a full disk failed).
        if !lent.retry.isEmpty && now < lent.retryAt && !state.withLock({ $0.closed }) {
            idle(until: lent.retryAt)
            return
        }
        enum Take { case run([any SQLiteJob]), wait(UInt64), idle, finished }
        let take = state.withLock { state -> Take in
            let available = state.queue.count - state.head
            if available == 0 && lent.retry.isEmpty {
                state.stepQueued = false
                return state.closed ? .finished : .idle
            }
            // Hold a small batch back: for more jobs (maxBatchDelay) or, if it holds only deferrable writes, for an
            // awaited write to share its commit; a full batch, an urgent job or closing ends the wait.
            if !state.closed && lent.retry.isEmpty && available < maxBatch {
                let pending = state.queue[state.head...]
                let wait = pending.allSatisfy(\.deferrable) ? max(deferMicroseconds, delayMicroseconds) : delayMicroseconds
                if wait > 0 {
                    if lent.holdUntil == 0 { lent.holdUntil = now + UInt64(wait) * 1000 }
                    if now < lent.holdUntil {
                        state.stepQueued = false
                        return .wait(lent.holdUntil)
                    }
                }
            }
            // This step runs now: a job queued while it runs queues the next one.
            state.stepQueued = false
            return .run(state.dequeue(max: maxBatch))
        }
        switch take {
        case .idle:
            return
        case .wait(let deadline):
            idle(until: deadline)
            return
        case .finished:
            finish(context)
            return
        case .run(let taken):
            if lent.timerAt != 0 && lent.retry.isEmpty {
                // The hold ended early: its timer would only wake the thread for an empty step.
                lent.cancelTimer?()
                lent.cancelTimer = nil
                lent.timerAt = 0
            }
            lent.holdUntil = 0
            let jobs = lent.retry + taken
            lent.retry = []
            applyPendingPageLimit(context)
            let failed = runTransactions(jobs, context)
            if failed.isEmpty {
                lent.backoffNanoseconds = 10_000_000
            } else if state.withLock({ $0.closed }) {
                giveUp(failed)  // closing: this was the last attempt
            } else {
                lent.retry = failed
                lent.retryAt = DispatchTime.now().uptimeNanoseconds + lent.backoffNanoseconds
                lent.backoffNanoseconds = min(lent.backoffNanoseconds * 2, 250_000_000)
            }
            // More waiting (or a retry, or closing to finish): another step, after whatever else the executor has.
            let more = state.withLock { state -> Bool in
                if state.stepQueued { return false }
                let waiting = state.queue.count > state.head || !lent.retry.isEmpty || state.closed
                if waiting { state.stepQueued = true }
                return waiting
            }
            if more { executor!.execute { [self] in step() } }
        }
    }

    /// Arms one timer step for `deadline` (a wait, a retry backoff), unless one is armed for it already; a job
    /// queued meanwhile still queues an immediate step, which decides again.
    private func idle(until deadline: UInt64) {
        guard let lent, lent.timerAt == 0 || lent.timerAt > deadline else { return }
        lent.timerAt = deadline
        let now = DispatchTime.now().uptimeNanoseconds
        let delay = Duration.nanoseconds(Int64(deadline > now ? deadline - now : 0))
        lent.cancelTimer = executor!.schedule(after: delay) { [self] in
            if lent.timerAt == deadline {
                lent.timerAt = 0
                lent.cancelTimer = nil
            }
            step()
        }
    }

    /// Closing, nothing left: closes the connection on the executor and reports the exit.
    private func finish(_ context: WorkerContext) {
        context.close()
        lent?.context = nil
        let continuations = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.exited = true
            defer { state.exitContinuations.removeAll() }
            return state.exitContinuations
        }
        for continuation in continuations { continuation.resume() }
    }
}
