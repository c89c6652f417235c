import NIOCore

/// Something that happened to a peer, delivered on ``MeshTransport/events``.
public enum TransportEvent: Sendable, Equatable {
    /// A session with the peer is established (first contact, or it answered again after being down).
    case peerUp(address: SocketAddress, node: NodeID, epoch: UInt32)
    /// The peer restarted: it answers with a newer epoch. Unconfirmed reliable messages are sent again in the
    /// new session (the receiver's journal deduplicates them by message id).
    case peerRestarted(address: SocketAddress, node: NodeID, oldEpoch: UInt32, newEpoch: UInt32)
    /// The peer stopped answering or never answered the handshake. Unconfirmed messages failed with
    /// `peerDown` or `unreachable`.
    case peerDown(address: SocketAddress, node: NodeID?, reason: TransportError)
    /// The peer said goodbye: it is shutting down gracefully. Its unconfirmed messages are kept until the give-up
    /// time, for the peer's next incarnation to take (a deploy restarts it within seconds).
    case peerLeft(address: SocketAddress, node: NodeID)
}

/// The final outcome of a message handed to ``MeshTransport/send(_:commandID:to:reliability:)``.
public enum MessageOutcome: Sendable, Equatable {
    /// Reliable: the receiver confirmed it (for a Mesh node: it is in the receiver's journal).
    case confirmed
    /// Unreliable: every fragment was transmitted once.
    case sent
    /// It failed; reliable messages may still have arrived (at-least-once).
    case failed(TransportError)
}

/// How a message travels.
public enum Reliability: Sendable, Hashable {
    /// Retransmitted until confirmed, delivered once and in order per (sender, command ID).
    case reliable
    /// Sent once, never retransmitted, delivered at most once, in no particular order (Diarkis `USend`).
    case unreliable
}

/// A message handed to the receiver.
public struct ReceivedMessage: Sendable {
    /// Where it came from.
    public let address: SocketAddress
    /// The sender's node id.
    public let node: NodeID
    /// The sender's epoch.
    public let epoch: UInt32
    /// The command ID (the ordering lane).
    public let commandID: UInt16
    /// Reliable or not.
    public let reliability: Reliability
    /// The message bytes.
    public let payload: ByteBuffer
    /// Pass to ``MeshTransport/confirm(_:)`` once the message is durable (reliable messages only).
    public let token: DeliveryToken
}

/// Identifies a delivered reliable message for ``MeshTransport/confirm(_:)`` and ``MeshTransport/reject(_:reason:)``.
public struct DeliveryToken: Sendable, Hashable {
    let address: SocketAddress
    let node: NodeID
    let epoch: UInt32
    let lane: UInt16
    let seq: UInt64
    /// Whether the message needs confirming (false for unreliable messages).
    public let needsConfirmation: Bool
}
