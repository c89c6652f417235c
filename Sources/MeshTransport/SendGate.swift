import Synchronization

/// What a sender may know without a hop to the event loop: how many messages wait for window space (parked)
/// and whether the transport closed. While nothing is parked, ``MeshTransport/send(batch:to:reliability:)``
/// queues its messages and returns at once; only under backpressure does it wait for the event loop.
final class SendGate: Sendable {
    private let parkedMessages = Atomic<Int>(0)
    private let isClosed = Atomic<Bool>(false)

    /// True when a sender should wait for the event loop to report room before returning.
    var underPressure: Bool { parkedMessages.load(ordering: .acquiring) > 0 }
    /// True once the transport closed.
    var closed: Bool { isClosed.load(ordering: .acquiring) }

    func parked(_ count: Int) { parkedMessages.add(count, ordering: .releasing) }
    func unparked(_ count: Int) { parkedMessages.subtract(count, ordering: .releasing) }
    func close() {
        isClosed.store(true, ordering: .releasing)
        parkedMessages.store(0, ordering: .releasing)
    }
}
