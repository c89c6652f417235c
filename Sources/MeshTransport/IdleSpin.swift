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
        /// The socket is readable (or has an error its next read reports): let the loop read it.
        case readable
        /// Its time is up (or the transport's next timer is due) and nothing came.
        case timeUp
        /// Work was handed to the loop (``activity`` moved on to this count): run it, then poll again.
        case workArrived(UInt64)
    }

    /// Polls `socket` until it is readable, ``activity`` moves on from `seen` (work handed to the loop since the poll
    /// was queued), or `end`.
    func run(socket: CInt, until end: NIODeadline, since seen: UInt64?) -> Outcome {
        var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        repeat {
            if poll(&poller, 1, 0) != 0 { return .readable }
            if let activity, case let now = activity.value, now != seen { return .workArrived(now) }
            sched_yield()
        } while NIODeadline.now() < end
        return .timeUp
    }

    /// When the queued poll ends. A flush while one is queued moves that end later instead of queueing a second
    /// poll, so the poll lasts its time from the last flush, not from the first: the flush that sends a response
    /// comes a commit after the one that read its request, and the next request comes a round trip after that.
    struct Deadline {
        /// The end of the queued poll; `nil`: none is queued.
        private(set) var end: NIODeadline?

        /// A flush asks for a poll until `until`. Returns whether to queue one (none was queued).
        mutating func flushed(until: NIODeadline) -> Bool {
            guard let queued = end else {
                end = until
                return true
            }
            end = max(queued, until)
            return false
        }

        /// The queued poll ended.
        mutating func finished() { end = nil }
    }

    /// How much longer a poll lasts while the transport awaits an acknowledgement: the reply to a request often
    /// comes later than its acknowledgement would (the responder holds the acknowledgement back to ride on the
    /// response), and that is the datagram the poll is for.
    static let awaitingFactor: Int64 = 3

    /// When a poll that starts now ends at the latest: after its time (``awaitingFactor`` times it if `awaiting` an
    /// acknowledgement), or at the transport's next timer.
    func end(timer: NIODeadline?, awaiting: Bool = false) -> NIODeadline {
        let end = NIODeadline.now() + .nanoseconds(awaiting ? nanoseconds * Self.awaitingFactor : nanoseconds)
        guard let timer else { return end }
        return min(end, timer)
    }
}
