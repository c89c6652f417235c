import CMeshWALBatch
import MeshJournal
import MeshTransport
import NIOCore
import NIOPosix

/// The node's own thread: a one-thread event loop that owns the node's UDP socket and on which the journal's
/// writer runs (``JournalExecutor``), so a received batch is journaled, committed and acknowledged on one thread
/// and an outbound message is journaled and transmitted on it — the design of the C journaled bus. A commit blocks
/// only this thread; it is never an event loop the application shares, nor a thread of Swift's cooperative pool.
///
/// Created by ``MeshNode/start(configuration:logger:registering:)`` and shut down last by ``MeshNode/shutdown()``.
struct NodeLoop: Sendable {
    let group: MultiThreadedEventLoopGroup
    let eventLoop: any EventLoop
    /// The loop as a task executor, for callers that run on the node's thread (``MeshNode/taskExecutor``).
    let taskExecutor: NodeTaskExecutor
    /// Counts the work handed to the loop (the journal's jobs, tasks, the transport's sends, the lanes' hand-over),
    /// so that the transport's idle spin (``MeshConfiguration/idleSpinMicroseconds``) gives way to it at once.
    let activity = LoopActivity()

    init() {
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        eventLoop = group.next()
        taskExecutor = NodeTaskExecutor(eventLoop: eventLoop, activity: activity)
        eventLoop.execute { _ = mesh_thread_request_slice(UInt64(Self.slice.components.attoseconds / 1_000_000_000)) }
    }

    /// The scheduler slice the node's thread asks for (Linux 6.12+, best effort): woken by a datagram or a caller,
    /// it runs once whatever holds its core (a background checkpoint, another process's thread) has had this much
    /// of it, instead of the default slice; its share of the CPU is unchanged. (Putting the background threads
    /// under `SCHED_IDLE` instead would starve them, and the node's thread waiting on them, on a busy machine.)
    static let slice = Duration.microseconds(100)

    /// The loop, lent to the journal's writer.
    var journalExecutor: any JournalExecutor { EventLoopJournalExecutor(eventLoop: eventLoop, activity: activity) }

    /// Stops the thread (after the journal and the transport are closed).
    func shutdown() async {
        taskExecutor.close()
        try? await group.shutdownGracefully()
    }
}

/// An event loop as the journal writer's executor.
struct EventLoopJournalExecutor: JournalExecutor {
    let eventLoop: any EventLoop
    let activity: LoopActivity

    func execute(_ work: @escaping @Sendable () -> Void) {
        activity.note()
        eventLoop.execute(work)
    }

    func execute(after delay: Duration, _ work: @escaping @Sendable () -> Void) {
        eventLoop.scheduleTask(in: TimeAmount(delay)) { work() }
    }

    func schedule(after delay: Duration, _ work: @escaping @Sendable () -> Void) -> @Sendable () -> Void {
        let task = eventLoop.scheduleTask(in: TimeAmount(delay)) { work() }
        return { task.cancel() }
    }

    var isCurrent: Bool { eventLoop.inEventLoop }
}
