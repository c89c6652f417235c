import MeshTransport
import NIOCore
import Synchronization

/// The node's own thread as a Swift `TaskExecutor` (``MeshNode/taskExecutor``), so that a caller's task can run
/// where the node's work runs. A task that prefers it (`Task(executorPreference:)`, `withTaskExecutorPreference`)
/// runs its nonisolated code on the node's event loop: a `send` awaited until confirmed is then journaled,
/// transmitted, confirmed and resumed on that one thread, without handing off to another thread and back.
///
/// Jobs are queued on the event loop until the node shuts its thread down (``close()``, under the lock that
/// queueing holds, so a job queued before it runs in the loop's final drain); later jobs go to Swift's global
/// concurrent executor, so a task that still prefers a stopped node goes on running instead of hanging.
final class NodeTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop
    /// Bumped for each job queued on the loop (see ``NodeLoop/activity``).
    let activity: LoopActivity
    /// Whether the loop stopped taking jobs; held while queueing one on the loop.
    private let closed = Mutex(false)

    init(eventLoop: any EventLoop, activity: LoopActivity) {
        self.eventLoop = eventLoop
        self.activity = activity
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let queued = closed.withLock { closed -> Bool in
            guard !closed else { return false }
            activity.note()
            eventLoop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
            return true
        }
        if !queued { globalConcurrentExecutor.enqueue(ExecutorJob(job)) }
    }

    /// Sends every later job to the global concurrent executor; called before the loop shuts down.
    func close() {
        closed.withLock { $0 = true }
    }
}
