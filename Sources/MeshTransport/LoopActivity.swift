import Synchronization

/// A count of the work other threads hand to an event loop, so that a loop polling its socket before it sleeps
/// (``TransportConfiguration/idleSpinMicroseconds``) stops polling as soon as such work is queued instead of
/// leaving it waiting until the poll ends. Whoever queues work on the loop from another thread bumps it (the
/// transport's own hand-offs; a node's journal writer and task executor); the loop's thread reads it. A hint, not
/// a queue: work nobody counts still runs, only up to one spin later.
package final class LoopActivity: Sendable {
    private let count = Atomic<UInt64>(0)

    package init() {}

    /// Called by a thread about to queue work on the loop.
    package func note() { count.wrappingAdd(1, ordering: .relaxed) }

    /// The count so far.
    package var value: UInt64 { count.load(ordering: .relaxed) }
}
