/// Why a node operation failed.
public struct MeshError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The category; compare with `==` against the statics.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case reservedCommand, invalidAddress, invalidConfiguration, notStarted, encoding
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

        /// A short name.
        public var description: String {
            switch base {
            case .reservedCommand: "reserved command ID"
            case .invalidAddress: "invalid address"
            case .invalidConfiguration: "invalid configuration"
            case .notStarted: "node not started"
            case .encoding: "encoding failed"
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

    /// `code: message`.
    public var description: String { "\(code): \(message)" }
}
