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

    /// Whether a flush that awaits no reply polls at all. Such a poll waits for whatever comes next — a caller's next
    /// message, a peer's next request — and pays only while traffic comes back to back; when it comes sporadically the
    /// poll runs its whole time for nothing after every exchange: a core's worth of polling at a few hundred messages
    /// a second, for a latency no better than a thread that sleeps at once. So the share of recent such polls whose
    /// time ran out is kept (an average in which each new poll weighs ``weight``); while it is at least
    /// ``missThreshold``, flushes that await no reply skip their poll, except every ``probeInterval``-th, which checks
    /// whether polling pays again. Polls while a message awaits its confirmation or response (due within a round
    /// trip) always run and are not counted. Pure; owned by the loop's thread (the transport's handler).
    struct Backoff: Equatable {
        /// The share of recent counted polls whose time ran out, in 1/``scale``.
        private(set) var missRate = 0
        /// Flushes that skipped their poll since the last poll.
        private(set) var skipped = 0

        /// The fixed-point scale of ``missRate``.
        static let scale = 1024
        /// The weight of each new poll in ``missRate``: 1/8.
        static let weight = 8
        /// From this ``missRate`` on (three eighths) flushes that await no reply skip their poll: four misses in a row
        /// from none, which back-to-back traffic, where a few polls in a hundred run out, hardly ever has.
        static let missThreshold = scale * 3 / 8
        /// While polls are skipped, every this many flushes one polls anyway.
        static let probeInterval = 16

        /// Whether polls that await no reply are skipped now (but for the probes).
        var skipping: Bool { missRate >= Self.missThreshold }

        /// A flush asks whether to poll, `awaiting` a reply or not.
        mutating func shouldPoll(awaiting: Bool) -> Bool {
            guard !awaiting, skipping, skipped + 1 < Self.probeInterval else {
                if !awaiting { skipped = 0 }
                return true
            }
            skipped += 1
            return false
        }

        /// A poll ended (polling again behind work that arrived is not an end), `awaiting` a reply or not.
        mutating func ended(_ outcome: Outcome, awaiting: Bool) {
            guard !awaiting else { return }
            let missed = outcome == .timeUp ? Self.scale : 0
            missRate += (missed - missRate) / Self.weight
        }
    }

    /// When the queued poll ends, and whether it waits for an awaited reply. A flush while one is queued moves that end
    /// later instead of queueing a second poll, so the poll lasts its time from the last flush, not from the first:
    /// the flush that sends a response comes a commit after the one that read its request, and the next request
    /// comes a round trip after that.
    struct Deadline {
        /// The end of the queued poll; `nil`: none is queued.
        private(set) var end: NIODeadline?
        /// A flush that queued or moved the queued poll awaited a reply.
        private(set) var awaiting = false

        /// A flush asks for a poll until `until`, `awaiting` a reply or not. Returns whether to queue one (none was
        /// queued).
        mutating func flushed(until: NIODeadline, awaiting: Bool = false) -> Bool {
            guard let queued = end else {
                end = until
                self.awaiting = awaiting
                return true
            }
            end = max(queued, until)
            self.awaiting = self.awaiting || awaiting
            return false
        }

        /// The queued poll ended.
        mutating func finished() {
            end = nil
            awaiting = false
        }
    }

    /// How much longer a poll lasts while a datagram awaits its acknowledgement: the reply to a request often
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
