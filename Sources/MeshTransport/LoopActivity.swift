import Synchronization

/// A count of the work handed to an event loop, so that a loop polling its socket before it sleeps
/// (``TransportConfiguration/idleSpinMicroseconds``) steps aside as soon as such work is queued instead of leaving
/// it waiting until the poll ends. Whoever queues work on the loop bumps it first: other threads (the transport's
/// hand-offs; a node's journal writer, task executor) and the loop itself when it queues work that may land behind
/// a queued poll (a flush, a lane's hand-over). The loop's thread reads it. A hint, not a queue: work nobody counts
/// still runs, only up to one poll later.
package final class LoopActivity: Sendable {
    private let count = Atomic<UInt64>(0)

    package init() {}

    /// Called by a thread about to queue work on the loop.
    package func note() { count.wrappingAdd(1, ordering: .relaxed) }

    /// The count so far.
    package var value: UInt64 { count.load(ordering: .relaxed) }
}
