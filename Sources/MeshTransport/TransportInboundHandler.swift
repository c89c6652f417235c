import NIOCore

/// Receives messages on the transport's event loop, as a NIO channel handler would, for latency-critical
/// receivers: it can confirm, reject and reply through the ``TransportResponder`` without leaving the loop.
/// It must not block (no I/O, no locks held for long); hand slow work to a task. When a handler is installed,
/// ``MeshTransport/inbound`` stays empty.
public protocol TransportInboundHandler: Sendable {
    /// Called on the event loop with the messages of one read batch, in delivery order.
    func received(_ messages: [ReceivedMessage], responder: TransportResponder)
}

/// Lets a ``TransportInboundHandler`` act on the transport synchronously. Valid only during the call it was
/// passed to.
public struct TransportResponder {
    let handler: TransportHandler

    /// Confirms delivered reliable messages (they are durable). `mayWait`: as in
    /// ``MeshTransport/confirm(_:mayWait:)``, the confirmations may wait up to `maxAckDelay` for a reply to ride on.
    public func confirm(_ tokens: [DeliveryToken], mayWait: Bool = false) { handler.confirm(tokens, mayWait: mayWait) }

    /// Refuses a delivered reliable message; the sender's send fails with `rejected`.
    public func reject(_ token: DeliveryToken, reason: String) { handler.reject(token, reason: reason) }

    /// Queues a message (ignoring the window: replies should not wait behind the backlog). The outcome is
    /// not reported.
    public func send(_ payload: ByteBuffer, commandID: UInt16, to address: SocketAddress, reliability: Reliability = .reliable) {
        handler.sendOnLoop(payload, commandID: commandID, to: address, reliability: reliability)
    }
}

@available(*, unavailable)
extension TransportResponder: Sendable {}
