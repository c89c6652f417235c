/// What went wrong with a message or with the transport.
public struct TransportError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The category; compare with `==` against the statics.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case timeout, peerDown, unreachable, rejected, tooLarge, closed, invalidKey, invalidConfiguration, invalidAddress, bindFailed
            case tooManyPeers
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// Not confirmed by the receiver within `retryTimeout`. It may still have arrived.
        public static let timeout = Code(.timeout)
        /// The peer stopped answering (or said goodbye) while the message was unconfirmed.
        public static let peerDown = Code(.peerDown)
        /// The peer never answered the handshake (wrong address, wrong key, or not running).
        public static let unreachable = Code(.unreachable)
        /// The receiver refused the message (for example its journal was full); the message says why.
        public static let rejected = Code(.rejected)
        /// The message exceeds `maxMessageSize`.
        public static let tooLarge = Code(.tooLarge)
        /// The transport was shut down.
        public static let closed = Code(.closed)
        /// A cluster key or keyring is malformed.
        public static let invalidKey = Code(.invalidKey)
        /// A configuration setting is out of range.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// An address could not be parsed or resolved.
        public static let invalidAddress = Code(.invalidAddress)
        /// The socket could not be bound (for example the port is in use).
        public static let bindFailed = Code(.bindFailed)
        /// A send to a new address while ``TransportConfiguration/maxPeers`` sessions with live peers are held.
        public static let tooManyPeers = Code(.tooManyPeers)

        /// A short name.
        public var description: String {
            switch base {
            case .timeout: "timeout"
            case .peerDown: "peer down"
            case .unreachable: "unreachable"
            case .rejected: "rejected"
            case .tooLarge: "too large"
            case .closed: "closed"
            case .invalidKey: "invalid key"
            case .invalidConfiguration: "invalid configuration"
            case .invalidAddress: "invalid address"
            case .bindFailed: "bind failed"
            case .tooManyPeers: "too many peers"
            }
        }
    }

    /// The category.
    public let code: Code
    /// Details, naming the peer, message or setting.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// `code: message`.
    public var description: String { "\(code): \(message)" }
}
