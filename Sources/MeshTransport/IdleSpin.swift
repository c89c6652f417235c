#if canImport(Glibc)
import Glibc
#endif
import NIOCore

/// The poll a transport's event loop runs after a flush that sent datagrams, before it sleeps
/// (``TransportConfiguration/idleSpinMicroseconds``): it checks the socket for a readable datagram without
/// blocking, and the loop's ``LoopActivity`` for work handed over by other threads, yielding the core between two
/// checks, and returns at the first of either, at the next timer, or when its time is up. The reply to what was just
/// sent is then read by a thread that is still running, not one the kernel has to wake. Runs on the loop's thread.
struct IdleSpin {
    let nanoseconds: Int64
    let activity: LoopActivity?

    /// Polls `socket` until it is readable, work arrives, `timer` or the spin's time is up.
    func run(socket: CInt, timer: NIODeadline?) {
        let seen = activity?.value
        var end = NIODeadline.now() + .nanoseconds(nanoseconds)
        if let timer, timer < end { end = timer }
        var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        repeat {
            if poll(&poller, 1, 0) != 0 { return }  // readable, or an error the next read reports
            if let activity, activity.value != seen { return }
            sched_yield()
        } while NIODeadline.now() < end
    }
}
