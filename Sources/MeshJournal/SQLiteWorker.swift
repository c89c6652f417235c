#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Dispatch
import Logging
import MeshCore
import MeshFailpoints
import Synchronization

/// A dedicated OS thread — or an executor lent by the journal's owner (``JournalExecutor``: a node's own event
/// loop, see `SQLiteWorker+Executor.swift`) — that owns one SQLite connection and runs submitted jobs on it, so
/// blocking SQLite calls never run on an event loop an application shares or on Swift's cooperative thread pool.
/// Callers `await` their job; the continuation is resumed from that thread.
///
/// A *writer* worker gathers whatever jobs are queued (up to `maxBatchSize`, optionally waiting
/// `maxBatchDelay` for more) into one `BEGIN IMMEDIATE … COMMIT` transaction — group commit — and resumes each
/// caller only after that transaction committed. A job that fails alone is rolled back to its savepoint (if
/// it asked for one) and fails alone; an error that aborts the transaction (disk full, I/O error) fails
/// every awaited job of the batch, and nothing of it is kept. The batch's *posted* writes (nobody awaits them:
/// invocation records, statuses, acknowledgement marks) are not dropped: they are retried, in their order and
/// ahead of every later job, with a backoff of 10 ms doubling to 250 ms, until they commit — so a full disk
/// delays them but neither loses them nor lets later writes overtake them. A *reader* worker runs jobs one at
/// a time.
final class SQLiteWorker: Sendable {
    enum Role: Sendable {
        /// `deferMicroseconds`: how long a batch of deferrable jobs only waits for an urgent one to join it.
        case writer(maxBatchSize: Int, maxBatchDelayMicroseconds: Int, deferMicroseconds: Int)
        case reader
    }

    struct State: ~Copyable {
        var queue: [any SQLiteJob] = []
        var head = 0
        var idle = false
        var closed = false
        /// Everyone waiting in ``close()`` (concurrent closes all wait for the exit).
        var exitContinuations: [CheckedContinuation<Void, Never>] = []
        var exited = false
        /// On a lent executor: a step is queued there (set by the first enqueue, cleared by a step that found
        /// nothing to run now).
        var stepQueued = false

        /// Takes up to `max` queued jobs, in order (under the lock). The consumed prefix is dropped when the queue
        /// drains, and now and then under sustained load, when it never does.
        mutating func dequeue(max: Int) -> [any SQLiteJob] {
            let n = Swift.min(queue.count - head, max)
            guard n > 0 else { return [] }
            let jobs = Array(queue[head..<(head + n)])
            head += n
            if head == queue.count {
                queue.removeAll(keepingCapacity: true)
                head = 0
            } else if head > 4096 && head * 2 > queue.count {
                queue.removeFirst(head)
                head = 0
            }
            return jobs
        }
    }

    private let name: String
    let role: Role
    let logger: Logger
    let state = Mutex(State())
    /// The executor the writer runs on instead of its own thread, if one was lent (writers only).
    let executor: (any JournalExecutor)?
    /// What only the lent executor touches (its connection, retries, deferral); `nil` on a thread of its own.
    let lent: LentState?
    /// Group-commit counters: transactions committed, jobs they carried, transactions aborted (a full disk, an
    /// I/O error; their retried jobs run again in a later one).
    private let counters = Mutex((transactions: 0, jobs: 0, aborted: 0))
    private let wakeup = DispatchSemaphore(value: 0)
    /// How long an idle worker polls its queue before sleeping (0: sleep at once).
    private let spinMicroseconds: Int
    /// Rate limit of the writer's failure logs (a full disk fails every batch).
    private let logLimiter = Mutex(LogRateLimiter())
    /// A `max_page_count` to apply before the next transaction (0: none pending); see ``Journal/setPageLimit(_:)``.
    let pendingPageLimit = Atomic<Int64>(0)

    /// - Parameter executor: run on this executor instead of a thread of its own (a writer only).
    init(name: String, role: Role, logger: Logger, spinMicroseconds: Int = 0, executor: (any JournalExecutor)? = nil) {
        self.name = name
        self.role = role
        self.logger = logger
        self.spinMicroseconds = spinMicroseconds
        self.executor = executor
        self.lent = executor.map { _ in LentState() }
    }

    /// Starts the thread (or takes the lent executor) and runs `setup` on it (open the connection, migrate, ...).
    /// Returns what `setup` reports, or throws its error, in which case the worker has already stopped.
    func start<Report: Sendable>(
        setup: @escaping @Sendable () throws -> (WorkerContext, Report)
    ) async throws -> Report {
        if executor != nil { return try await startLent(setup: setup) }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Report, any Error>) in
            spawnThread(name: name) { [self] in
                let context: WorkerContext
                do {
                    let (made, report) = try setup()
                    context = made
                    continuation.resume(returning: report)
                } catch {
                    state.withLock { $0.closed = true; $0.exited = true }
                    continuation.resume(throwing: error)
                    return
                }
                run(context)
            }
        }
    }

    /// Runs `body` on the worker's connection and returns its result once it is durable (for a writer: once
    /// the transaction holding it committed).
    /// - Parameter savepoint: wrap the job in a savepoint, so that if it throws after some writes, those
    ///   writes are undone without disturbing the other jobs of the batch. Single-statement jobs do not need it.
    /// - Parameter outsideTransaction: run the job on its own, between group-commit transactions (for
    ///   checkpoints, `VACUUM`, and maintenance that manages its own transactions).
    /// - Parameter deferrable: the caller can wait: the writer may hold the job back briefly so that it shares
    ///   the commit of the next urgent job (see ``JournalConfiguration/deferredCommitMicroseconds``).
    func submit<T: Sendable>(
        savepoint: Bool = false, outsideTransaction: Bool = false, deferrable: Bool = false,
        _ body: @escaping @Sendable (WorkerContext) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let job = TypedJob(needsSavepoint: savepoint, outsideTransaction: outsideTransaction,
                               deferrable: deferrable && !outsideTransaction, body: body, continuation: continuation)
            if !enqueue(job) { continuation.resume(throwing: JournalError(.closed, "the journal is closed")) }
        }
    }

    /// ``submit(savepoint:outsideTransaction:deferrable:_:)`` without a suspension: `completion` runs on the
    /// worker thread once the job's transaction committed (or with the error), in submission order with every
    /// other job. `retriedOnAbort`: if its transaction aborts (disk full, I/O error) the job is retried like a
    /// posted write, ahead of everything queued after it, and `completion` runs once it committed (or with the error
    /// of a failure of its own, or when the journal closes first). It must not block: it is how the node hands a committed message straight to the transport or
    /// a dispatcher without a hop through the cooperative pool.
    ///
    /// `commitAtOnce`: submitted on the lent executor, outside a job, the job is committed before this returns
    /// (with whatever else is queued), instead of at the executor's next turn — so that what the completion hands
    /// to the transport leaves in the flush the caller is about to make. Elsewhere it changes nothing.
    func submit<T: Sendable>(
        savepoint: Bool = false, deferrable: Bool = false, commitAtOnce: Bool = false, retriedOnAbort: Bool = false,
        _ body: @escaping @Sendable (WorkerContext) throws -> T,
        completion: @escaping @Sendable (Result<T, any Error>) -> Void
    ) {
        let job = CallbackJob(needsSavepoint: savepoint, deferrable: deferrable, retriedOnAbort: retriedOnAbort, body: body,
                              completion: completion)
        if !enqueue(job, commitAtOnce: commitAtOnce) { completion(.failure(JournalError(.closed, "the journal is closed"))) }
    }

    /// Appends `job` to the queue and wakes the thread if it sleeps. False if the worker is closed.
    private func enqueue(_ job: any SQLiteJob, commitAtOnce: Bool = false) -> Bool {
        if executor != nil { return enqueueLent(job, commitAtOnce: commitAtOnce) }
        let (accepted, shouldWake) = state.withLock { state -> (Bool, Bool) in
            guard !state.closed else { return (false, false) }
            state.queue.append(job)
            if state.idle {
                state.idle = false
                return (true, true)
            }
            return (true, false)
        }
        if shouldWake { wakeup.signal() }
        return accepted
    }

    /// Queues `body` without waiting for it (fire and forget); dropped if the worker is closed.
    /// - Parameter inTransaction: run inside the group-commit transaction (a journal write) rather than alone.
    ///   Such a write is deferrable: the writer may hold it back briefly so that it shares the commit of the
    ///   next awaited write (see ``JournalConfiguration/deferredCommitMicroseconds``), and if its transaction
    ///   aborts (disk full) it is retried until it commits.
    /// - Parameter what: what the write records, for the log line if it fails on its own (a rate-limited error).
    func post(inTransaction: Bool = false, _ what: String, _ body: @escaping @Sendable (WorkerContext) throws -> Void) {
        _ = enqueue(PostedJob(outsideTransaction: !inTransaction, what: what, body: body, worker: self))
    }

    /// Logs `message` at `level` unless the same cause was logged less than a second ago; the line carries how
    /// many times it happened since.
    func logLimited(_ level: Logger.Level, _ message: Logger.Message, cause: String, metadata: Logger.Metadata = [:]) {
        guard let count = logLimiter.withLock({ $0.admit(cause, now: DispatchTime.now().uptimeNanoseconds) }) else { return }
        var metadata = metadata
        if count > 1 { metadata["journal.occurrences"] = "\(count)" }
        logger.log(level: level, message, metadata: metadata)
    }

    /// Stops accepting jobs, lets the queued ones finish, closes the connection and waits for the thread.
    func close() async {
        if executor != nil { return await closeLent() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let (resumeNow, wake) = state.withLock { state -> (Bool, Bool) in
                if state.exited { return (true, false) }
                state.closed = true
                state.exitContinuations.append(continuation)
                let wake = state.idle
                state.idle = false
                return (false, wake)
            }
            if resumeNow { continuation.resume() }
            if wake { wakeup.signal() }
        }
    }

    /// Transactions committed by this writer so far, and the jobs they held.
    var statistics: (transactions: Int, jobs: Int, aborted: Int) { counters.withLock { $0 } }

    // MARK: - The thread

    /// Takes up to `max` queued jobs; blocks while the queue is empty. `nil` once closed and drained.
    private func take(max: Int) -> [any SQLiteJob]? {
        var spun = false
        while true {
            let taken: [any SQLiteJob]? = state.withLock { state in
                let available = state.queue.count - state.head
                if available == 0 {
                    if state.closed { return nil }
                    if !spun { return [] }
                    state.queue.removeAll(keepingCapacity: true)
                    state.head = 0
                    state.idle = true
                    return []
                }
                return state.dequeue(max: max)
            }
            guard let taken else { return nil }
            if !taken.isEmpty { return taken }
            if !spun {
                // Poll briefly before sleeping: a request/response exchange submits its next job within tens of
                // microseconds, and a futex sleep plus wake-up costs about as much again on a busy machine.
                spun = true
                spinUntilWork()
                continue
            }
            wakeup.wait()
        }
    }

    /// Returns when a job is queued or `spinMicroseconds` passed.
    private func spinUntilWork() {
        guard spinMicroseconds > 0 else { return }
        let deadline = DispatchTime.now().uptimeNanoseconds + UInt64(spinMicroseconds) * 1000
        while DispatchTime.now().uptimeNanoseconds < deadline {
            if state.withLock({ $0.queue.count > $0.head || $0.closed }) { return }
            sched_yield()
        }
    }

    /// Waits up to `microseconds` for more jobs to arrive, then takes up to `max`.
    private func takeMore(max: Int, microseconds: Int) -> [any SQLiteJob] {
        guard max > 0 else { return [] }
        let deadline = DispatchTime.now() + .microseconds(microseconds)
        var more: [any SQLiteJob] = []
        while more.count < max {
            let got: [any SQLiteJob] = state.withLock { state in
                let jobs = state.dequeue(max: max - more.count)
                if jobs.isEmpty && microseconds > 0 { state.idle = true }
                return jobs
            }
            if got.isEmpty {
                // Nothing to wait for: a timed wait that has already expired still costs a system call and,
                // measured, tens of microseconds.
                if microseconds == 0 { break }
                if !sleepWhileIdle(until: deadline) { break }
            } else {
                more.append(contentsOf: got)
            }
        }
        return more
    }

    /// Waits until an urgent job is queued, `maxQueued` jobs are, the worker closes, or `microseconds` pass.
    private func awaitUrgent(maxQueued: Int, microseconds: Int) {
        let deadline = DispatchTime.now() + .microseconds(microseconds)
        while true {
            let ready = state.withLock { state -> Bool in
                if state.closed || state.queue.count - state.head >= maxQueued { return true }
                if state.queue[state.head...].contains(where: { !$0.deferrable }) { return true }
                state.idle = true
                return false
            }
            if ready { return }
            if !sleepWhileIdle(until: deadline) { return }
        }
    }

    /// Sleeps (the caller set `idle` under the lock) until a submitter signals or `deadline` passes. Returns
    /// false on the deadline, with `idle` cleared and any signal that raced the timeout absorbed.
    private func sleepWhileIdle(until deadline: DispatchTime) -> Bool {
        guard wakeup.wait(timeout: deadline) == .timedOut else { return true }
        // Nobody will signal for this idle period: clear the flag ourselves.
        let consumeSignal = state.withLock { state -> Bool in
            if state.idle { state.idle = false; return false }
            return true  // a submitter cleared idle and signalled; absorb that signal
        }
        if consumeSignal { wakeup.wait() }
        return false
    }

    private func run(_ context: WorkerContext) {
        switch role {
        case .writer(let maxBatch, let delay, let deferMicroseconds):
            // Posted writes of an aborted transaction, retried ahead of everything queued after them.
            var retry: [any SQLiteJob] = []
            var backoffMicroseconds: UInt32 = 10_000
            while true {
                var jobs: [any SQLiteJob]
                if retry.isEmpty {
                    guard let taken = take(max: maxBatch) else { break }
                    jobs = taken
                } else {
                    usleep(backoffMicroseconds)
                    backoffMicroseconds = min(backoffMicroseconds * 2, 250_000)
                    jobs = retry + takeMore(max: maxBatch, microseconds: 0)
                    retry = []
                    applyPendingPageLimit(context)
                    if state.withLock({ $0.closed }) {
                        // Closing: one last attempt.
                        giveUp(runTransactions(jobs, context))
                        continue
                    }
                }
                if delay > 0 && jobs.count < maxBatch {
                    jobs.append(contentsOf: takeMore(max: maxBatch - jobs.count, microseconds: delay))
                }
                // Only deferrable writes (statuses, invocation records): hold them back briefly so they share
                // the commit of the next awaited write instead of costing a commit of their own ahead of it.
                if deferMicroseconds > 0, jobs.count < maxBatch, jobs.allSatisfy(\.deferrable) {
                    awaitUrgent(maxQueued: maxBatch - jobs.count, microseconds: deferMicroseconds)
                    jobs.append(contentsOf: takeMore(max: maxBatch - jobs.count, microseconds: 0))
                }
                applyPendingPageLimit(context)
                retry = runTransactions(jobs, context)
                if retry.isEmpty { backoffMicroseconds = 10_000 }
            }
        case .reader:
            while let jobs = take(max: 64) {
                for job in jobs {
                    runAlone(job, context)
                    // A statement left on a row keeps its read transaction open: later reads would see an old
                    // snapshot and checkpoints could not finish. End it after every job.
                    context.db.resetBusyStatements()
                }
            }
        }
        context.close()
        let continuations = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.exited = true
            defer { state.exitContinuations.removeAll() }
            return state.exitContinuations
        }
        for continuation in continuations { continuation.resume() }
    }

    /// Closing, and `failed` still could not commit at the last attempt: given up (a message whose records are lost
    /// runs again at the next start; an awaited write fails as closed).
    func giveUp(_ failed: [any SQLiteJob]) {
        guard !failed.isEmpty else { return }
        logger.error("journal closed with writes it could not commit", metadata: ["journal.writes": "\(failed.count)"])
        for job in failed where !(job is PostedJob) { job.finish(JournalError(.closed, "the journal closed before this write could commit")) }
    }

    /// Applies a page limit set by ``Journal/setPageLimit(_:)``, if any: right before a transaction.
    func applyPendingPageLimit(_ context: WorkerContext) {
        guard pendingPageLimit.load(ordering: .relaxed) != 0 else { return }
        _ = try? context.db.scalarInt("PRAGMA max_page_count = \(pendingPageLimit.exchange(0, ordering: .acquiring))")
    }

    /// Runs `jobs` in order: those outside a transaction alone, the others in group-commit batches between them.
    /// Returns the posted writes to retry (their transaction aborted), with every job queued after them in
    /// `jobs`, so nothing overtakes them.
    func runTransactions(_ jobs: [any SQLiteJob], _ context: WorkerContext) -> [any SQLiteJob] {
        var start = jobs.startIndex
        for (index, job) in jobs.enumerated() where job.outsideTransaction {
            if start < index {
                let retry = runBatch(Array(jobs[start..<index]), context)
                if !retry.isEmpty { return retry + jobs[index...] }
            }
            runAlone(job, context)
            start = index + 1
        }
        if start < jobs.endIndex { return runBatch(Array(jobs[start...]), context) }
        return []
    }

    private func runAlone(_ job: any SQLiteJob, _ context: WorkerContext) {
        context.commitSyncs = false
        do {
            try context.prepareSynchronous(relaxed: false)
            try job.execute(context)
            job.finish(nil)
        } catch {
            job.finish(Self.batchError(error))
        }
    }

    /// One group-commit transaction. Returns the posted writes to retry if it aborted (nothing of it was kept).
    /// `reserving`: record a new outbound sequence reservation in a synced commit even if the one held is not low
    /// (a job of the last transaction ran past it).
    private func runBatch(_ jobs: [any SQLiteJob], _ context: WorkerContext, reserving force: Bool = false) -> [any SQLiteJob] {
        let db = context.db
        LatencyProbe.mark(.transactionStart)
        defer { LatencyProbe.mark(.transactionDone) }
        // A transaction that starts low on reserved outbound sequences is synced, whatever the durability, and
        // records a new reservation first (WorkerContext.needsOutSeqReservation).
        let reserving = force || context.needsOutSeqReservation
        // Under `.full`, a transaction nobody waits on commits without a sync; the WAL is synced right after, off
        // this thread (WorkerContext.relaxesDeferrableCommits).
        let relaxed = !reserving && context.relaxesDeferrableCommits && jobs.allSatisfy(\.deferrable)
        defer { if relaxed { try? context.prepareSynchronous(relaxed: false) } }  // else the next transaction retries it
        defer { if reserving { try? context.forceSynchronous(false) } }  // else the next transaction retries it
        do {
            try context.prepareSynchronous(relaxed: relaxed)
            try context.forceSynchronous(reserving)
            try db.executeCached("BEGIN IMMEDIATE")
            LatencyProbe.mark(.begun)
        } catch {
            let failure = JournalError(error, context: "starting a journal transaction")
            return abort(jobs, failure)
        }
        context.commitSyncs = reserving || (context.syncsCommits && !relaxed)
        if reserving {
            do {
                try context.reserveOutSeqs()
            } catch {
                if !db.isAutocommit { try? db.execute("ROLLBACK") }
                context.rolledBack()
                let failure = Self.batchError(error)
                logLimited(.warning, "journal transaction aborted", cause: "abort", metadata: ["journal.error": "\(failure)"])
                return abort(jobs, failure)
            }
        }
        var succeeded: [any SQLiteJob] = []
        succeeded.reserveCapacity(jobs.count)
        // A job alone in its transaction runs without its savepoint: if it fails, the transaction is rolled back,
        // which undoes the same writes (a savepoint makes SQLite copy every page its statements change, in case).
        let alone = jobs.count == 1
        // The jobs to run after this commit, in a transaction that reserves sequences: from the first that ran out.
        var afterReserving: [any SQLiteJob] = []
        for (index, job) in jobs.enumerated() {
            let savepoint = job.needsSavepoint && !alone
            do {
                if savepoint { try db.executeCached("SAVEPOINT mesh_job") }
                try job.execute(context)
                if savepoint { try db.executeCached("RELEASE mesh_job") }
                succeeded.append(job)
            } catch is OutSeqReservationNeeded {
                // Undo the job, keep what ran before it, and run it and the rest again in a synced transaction that
                // reserves more. A job without its savepoint (alone, or one that takes none) cannot be undone alone:
                // the whole transaction runs again.
                guard savepoint else {
                    try? db.execute("ROLLBACK")
                    context.rolledBack()
                    return runBatch(jobs, context, reserving: true)
                }
                try? db.execute("ROLLBACK TO mesh_job")
                try? db.execute("RELEASE mesh_job")
                context.jobRolledBack()
                afterReserving = Array(jobs[index...])
                break
            } catch {
                if db.isAutocommit || Self.abortsTheBatch(error) {
                    // SQLite rolled the whole transaction back (disk full, I/O error, ...), or the error is one that
                    // will hit the batch's other writes too (a full disk may fail only this statement): nothing
                    // of this batch is kept, every awaited job in it fails and the posted ones are retried.
                    if !db.isAutocommit { try? db.execute("ROLLBACK") }
                    context.rolledBack()
                    let failure = Self.batchError(error)
                    logLimited(.warning, "journal transaction aborted", cause: "abort", metadata: ["journal.error": "\(failure)"])
                    return abort(succeeded + [job] + jobs[(index + 1)...], failure)
                }
                if job.needsSavepoint && alone {
                    // What its savepoint would have undone is the whole transaction; nothing else is in it.
                    try? db.execute("ROLLBACK")
                    context.rolledBack()
                    job.finish(error)
                    return []
                }
                if savepoint {
                    try? db.execute("ROLLBACK TO mesh_job")
                    try? db.execute("RELEASE mesh_job")
                }
                context.jobRolledBack()
                job.finish(error)
            }
        }
        do {
            LatencyProbe.mark(.committing)
            try db.executeCached("COMMIT")
            LatencyProbe.mark(.committed)
            if relaxed && !db.syncWALSoon(withinMicroseconds: context.relaxedSyncWithinMicroseconds) {
                // No thread to sync it (the WAL is no longer growing ahead): this commit's frames wait for the next
                // awaited commit's sync, and every later commit syncs its own.
                context.relaxesDeferrableCommits = false
            }
            context.committed()
            counters.withLock { $0.transactions += 1; $0.jobs += succeeded.count }
        } catch {
            if !db.isAutocommit { try? db.execute("ROLLBACK") }
            context.rolledBack()
            let failure = Self.batchError(error)
            logLimited(.warning, "journal commit failed", cause: "commit", metadata: ["journal.error": "\(failure)"])
            return abort(succeeded + afterReserving, failure)
        }
        for job in succeeded { job.finish(nil) }
        return afterReserving.isEmpty ? [] : runBatch(afterReserving, context, reserving: true)
    }

    /// A transaction holding `jobs` aborted (or could not begin): the awaited ones fail with `failure`; the
    /// posted ones and those retried on abort are returned, in order, to be retried.
    private func abort(_ jobs: [any SQLiteJob], _ failure: any Error) -> [any SQLiteJob] {
        counters.withLock { $0.aborted += 1 }
        var retry: [any SQLiteJob] = []
        for job in jobs {
            if job.retriedOnAbort { retry.append(job) } else { job.finish(failure) }
        }
        return retry
    }

    /// A full disk or an I/O error: whatever the job, the rest of its batch would meet it too.
    private static func abortsTheBatch(_ error: any Error) -> Bool {
        let code: Int32
        switch error {
        case let error as SQLiteError: code = error.primaryCode
        case let error as JournalError: code = error.underlying?.primaryCode ?? (error.code == .diskFull ? SQLiteError.full : 0)
        default: return false
        }
        return code == SQLiteError.full || code == SQLiteError.ioError
    }

    private static func batchError(_ error: any Error) -> any Error {
        if let sqlite = error as? SQLiteError { return JournalError(sqlite, context: "journal write") }
        return error
    }
}

/// A unit of work for a ``SQLiteWorker``.
protocol SQLiteJob: AnyObject, Sendable {
    var needsSavepoint: Bool { get }
    var outsideTransaction: Bool { get }
    /// Nobody needs this job committed at once: it may wait for an urgent job to share a commit with.
    var deferrable: Bool { get }
    /// Run again in a later transaction if its transaction aborts, instead of failing.
    var retriedOnAbort: Bool { get }
    func execute(_ context: WorkerContext) throws
    func finish(_ error: (any Error)?)
}

/// A job with a typed result.
///
/// `@unchecked Sendable` is safe: `result` is written by `execute` and read by `finish`, both on the worker
/// thread, in that order; the job reaches that thread through the worker's mutex-protected queue, which
/// orders the submitter's initialization before any access there. Nothing else touches `result`.
final class TypedJob<T: Sendable>: SQLiteJob, @unchecked Sendable {
    let needsSavepoint: Bool
    let outsideTransaction: Bool
    let deferrable: Bool
    let retriedOnAbort = false
    private let body: @Sendable (WorkerContext) throws -> T
    private let continuation: CheckedContinuation<T, any Error>
    private var result: T?

    init(needsSavepoint: Bool, outsideTransaction: Bool, deferrable: Bool, body: @escaping @Sendable (WorkerContext) throws -> T,
         continuation: CheckedContinuation<T, any Error>) {
        self.needsSavepoint = needsSavepoint
        self.outsideTransaction = outsideTransaction
        self.deferrable = deferrable
        self.body = body
        self.continuation = continuation
    }

    func execute(_ context: WorkerContext) throws { result = try body(context) }

    func finish(_ error: (any Error)?) {
        if let error {
            continuation.resume(throwing: error)
        } else {
            continuation.resume(returning: result!)
        }
    }
}

/// A job whose result is handed to a closure on the worker thread.
///
/// `@unchecked Sendable` is safe for the same reason as ``TypedJob``: `result` is written by `execute` and read
/// by `finish`, both on the worker thread, in that order, after the job crossed the worker's mutex.
final class CallbackJob<T: Sendable>: SQLiteJob, @unchecked Sendable {
    let needsSavepoint: Bool
    let outsideTransaction = false
    let deferrable: Bool
    let retriedOnAbort: Bool
    private let body: @Sendable (WorkerContext) throws -> T
    private let completion: @Sendable (Result<T, any Error>) -> Void
    private var result: T?

    init(needsSavepoint: Bool, deferrable: Bool, retriedOnAbort: Bool, body: @escaping @Sendable (WorkerContext) throws -> T,
         completion: @escaping @Sendable (Result<T, any Error>) -> Void) {
        self.needsSavepoint = needsSavepoint
        self.deferrable = deferrable
        self.retriedOnAbort = retriedOnAbort
        self.body = body
        self.completion = completion
    }

    func execute(_ context: WorkerContext) throws { result = try body(context) }

    func finish(_ error: (any Error)?) {
        if let error {
            completion(.failure(error))
        } else {
            completion(.success(result!))
        }
    }
}

/// A job nobody waits for: its failure on its own is logged (rate-limited); if its transaction aborts, the
/// writer retries it.
final class PostedJob: SQLiteJob {
    let needsSavepoint = false
    let retriedOnAbort = true
    let outsideTransaction: Bool
    var deferrable: Bool { !outsideTransaction }
    private let what: String
    private let body: @Sendable (WorkerContext) throws -> Void
    private let worker: SQLiteWorker

    init(outsideTransaction: Bool, what: String, body: @escaping @Sendable (WorkerContext) throws -> Void, worker: SQLiteWorker) {
        self.outsideTransaction = outsideTransaction
        self.what = what
        self.body = body
        self.worker = worker
    }
    func execute(_ context: WorkerContext) throws { try body(context) }
    func finish(_ error: (any Error)?) {
        guard let error else { return }
        worker.logLimited(.error, "journal: could not record \(what)", cause: what, metadata: ["journal.error": "\(error)"])
    }
}

/// Names the calling thread (Linux: its `comm`, at most 15 bytes; Glibc's module does not export
/// `pthread_setname_np`). Best effort: a thread that cannot be named keeps the name it inherited.
private func nameCurrentThread(_ name: String) {
    #if canImport(Glibc)
    let fd = open("/proc/thread-self/comm", O_WRONLY | O_CLOEXEC)
    guard fd >= 0 else { return }
    let bytes = Array(name.utf8.prefix(15))
    _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
    close(fd)
    #elseif canImport(Darwin)
    _ = pthread_setname_np(name)
    #endif
}

/// Starts a detached OS thread running `body`, named `name` (its first 15 bytes: what `top -H`, `ps -L` and
/// `/proc/<pid>/task/*/comm` show), so an operator can tell the journal's threads from the others.
func spawnThread(name: String, _ body: @escaping @Sendable () -> Void) {
    final class Box {
        let body: @Sendable () -> Void
        let name: String
        init(_ body: @escaping @Sendable () -> Void, name: String) {
            self.body = body
            self.name = name
        }
    }
    let box = Unmanaged.passRetained(Box(body, name: name)).toOpaque()
    #if canImport(Glibc)
    var thread = pthread_t()
    #else
    var thread: pthread_t?
    #endif
    let rc = pthread_create(&thread, nil, { argument in
        let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
        nameCurrentThread(box.name)
        box.body()
        return nil
    }, box)
    precondition(rc == 0, "pthread_create failed: \(rc)")
    #if canImport(Glibc)
    pthread_detach(thread)
    #else
    pthread_detach(thread!)
    #endif
}
