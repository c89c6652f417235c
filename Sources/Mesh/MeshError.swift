import MeshTransport

/// Why a node operation failed.
public struct MeshError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The category; compare with `==` against the statics.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case reservedCommand, invalidAddress, invalidConfiguration, notStarted, encoding
            case timeout, peerDown, handlerError, tooLarge, decode, diskFull, notMember, versionConflict, limitExceeded
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The command ID is in Mesh's reserved range (``MeshNode/reservedCommandIDs``).
        public static let reservedCommand = Code(.reservedCommand)
        /// An address is not `host:port` with a numeric IPv4/IPv6 host.
        public static let invalidAddress = Code(.invalidAddress)
        /// A configuration setting is out of range.
        public static let invalidConfiguration = Code(.invalidConfiguration)
        /// The node is not running.
        public static let notStarted = Code(.notStarted)
        /// The data could not be encoded.
        public static let encoding = Code(.encoding)
        /// No response (or confirmation) in time.
        public static let timeout = Code(.timeout)
        /// The peer is down, unreachable, or refused the message.
        public static let peerDown = Code(.peerDown)
        /// The remote handler threw; ``MeshError/message`` is its error text.
        public static let handlerError = Code(.handlerError)
        /// The message exceeds the maximum size.
        public static let tooLarge = Code(.tooLarge)
        /// A response could not be decoded.
        public static let decode = Code(.decode)
        /// The journal's disk is (nearly) full: the message was not journaled, so it was not sent.
        public static let diskFull = Code(.diskFull)
        /// No reachable member matches (e.g. no online node of the requested type).
        public static let notMember = Code(.notMember)
        /// A compare-and-set write found another version (``MeshNode/setShared(_:_:ifVersion:)``).
        public static let versionConflict = Code(.versionConflict)
        /// A limit of the shared data would be crossed, or a key is malformed.
        public static let limitExceeded = Code(.limitExceeded)

        /// A short name.
        public var description: String {
            switch base {
            case .reservedCommand: "reserved command ID"
            case .invalidAddress: "invalid address"
            case .invalidConfiguration: "invalid configuration"
            case .notStarted: "node not started"
            case .encoding: "encoding failed"
            case .timeout: "timeout"
            case .peerDown: "peer down"
            case .handlerError: "handler error"
            case .tooLarge: "too large"
            case .decode: "decode failed"
            case .diskFull: "disk full"
            case .notMember: "not a member"
            case .versionConflict: "version conflict"
            case .limitExceeded: "limit exceeded"
            }
        }
    }

    /// The category.
    public let code: Code
    /// Details naming the value at fault.
    public let message: String

    /// Creates an error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    /// The node-level error for a transport failure.
    public init(_ error: TransportError) {
        switch error.code {
        case .timeout: self.init(.timeout, error.message)
        case .tooLarge: self.init(.tooLarge, error.message)
        default: self.init(.peerDown, error.description)
        }
    }

    /// `code: message`.
    public var description: String { "\(code): \(message)" }
}
