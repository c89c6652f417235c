#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// The poll a transport's event loop runs after each flush (of what a read brought, of what was sent), before it sleeps
/// (``TransportConfiguration/idleSpinMicroseconds``): it checks the socket for a readable datagram without
/// blocking, and the loop's ``LoopActivity`` for work handed to the loop, yielding the core between two checks. The
/// reply to what was just sent, or a caller's next message after what was just read, then finds a thread that is
/// still running, not one the kernel has to wake.
///
/// The owner queues it as a task behind what the loop already has to do, and queues it again behind work that
/// arrives while it polls (``run(socket:until:since:)`` says so), until a datagram is readable or its time is up.
/// Runs on the loop's thread.
struct IdleSpin {
    let nanoseconds: Int64
    let activity: LoopActivity?

    /// How a poll ended.
    enum Outcome: Equatable {
        /// The socket is readable (or has an error its next read reports), or the time is up: let the loop go on.
        case finished
        /// Work was handed to the loop (``activity`` moved on to this count): run it, then poll again.
        case workArrived(UInt64)
    }

    /// Polls `socket` until it is readable, ``activity`` moves on from `seen` (work handed to the loop since the poll
    /// was queued), or `end`.
    func run(socket: CInt, until end: NIODeadline, since seen: UInt64?) -> Outcome {
        var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        repeat {
            if poll(&poller, 1, 0) != 0 { return .finished }
            if let activity, case let now = activity.value, now != seen { return .workArrived(now) }
            sched_yield()
        } while NIODeadline.now() < end
        return .finished
    }

    /// When a poll that starts now ends at the latest: after its time, or at the transport's next timer.
    func end(timer: NIODeadline?) -> NIODeadline {
        let end = NIODeadline.now() + .nanoseconds(nanoseconds)
        guard let timer else { return end }
        return min(end, timer)
    }
}
