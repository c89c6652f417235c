import Synchronization

/// What a sender may know without a hop to the event loop: how many messages wait for window space (parked),
/// how many are on their way to the event loop, and whether the transport closed. While nothing is parked and
/// few messages are in transit, ``MeshTransport/send(batch:to:reliability:)`` queues its messages and returns
/// at once; otherwise it waits for the event loop, which bounds what a fast producer can pile up in the event
/// loop's task queue.
final class SendGate: Sendable {
    private let parkedMessages = Atomic<Int>(0)
    private let inTransit = Atomic<Int>(0)
    private let isClosed = Atomic<Bool>(false)
    /// Most messages handed to the event loop without waiting and not yet taken by it.
    let transitLimit: Int

    init(transitLimit: Int) { self.transitLimit = transitLimit }

    /// True once the transport closed.
    var closed: Bool { isClosed.load(ordering: .acquiring) }

    /// Reserves `count` messages' passage without waiting; false under backpressure (wait for the loop).
    func tryPass(_ count: Int) -> Bool {
        guard parkedMessages.load(ordering: .acquiring) == 0 else { return false }
        let now = inTransit.add(count, ordering: .acquiringAndReleasing).newValue
        if now > transitLimit {
            inTransit.subtract(count, ordering: .releasing)
            return false
        }
        return true
    }

    /// The event loop took `count` messages that passed without waiting.
    func arrived(_ count: Int) { inTransit.subtract(count, ordering: .releasing) }

    func parked(_ count: Int) { parkedMessages.add(count, ordering: .releasing) }
    func unparked(_ count: Int) { parkedMessages.subtract(count, ordering: .releasing) }
    func close() {
        isClosed.store(true, ordering: .releasing)
        parkedMessages.store(0, ordering: .releasing)
    }
}
