/// Why reading a key of a ``MeshData`` or ``DataCapsule`` failed: the key, what was asked for, and what was
/// found. Thrown by the `get…` accessors, so a handler's error names the exact field at fault.
public struct MeshDataError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The category of failure. Extensible without breaking callers: match with `==` against the statics.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable { case missingKey, typeMismatch, outOfRange, invalidCapsule }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The key is not in the map.
        public static let missingKey = Code(.missingKey)
        /// The key holds a value of another kind.
        public static let typeMismatch = Code(.typeMismatch)
        /// The key holds an integer that does not fit the requested width.
        public static let outOfRange = Code(.outOfRange)
        /// The value is not a well-formed ``DataCapsule`` (for example an array holding non-capsules).
        public static let invalidCapsule = Code(.invalidCapsule)

        /// A short name for the code.
        public var description: String {
            switch base {
            case .missingKey: "missing key"
            case .typeMismatch: "type mismatch"
            case .outOfRange: "out of range"
            case .invalidCapsule: "invalid capsule"
            }
        }
    }

    /// The category of failure.
    public let code: Code
    /// The key that was read.
    public let key: String
    /// What the caller asked for (`"uint16"`, `"capsule array"`, ...).
    public let expected: String
    /// What was found (a kind name, or a description of the offending value); `nil` for a missing key.
    public let found: String?

    /// Creates an error; the accessors build these for you.
    public init(code: Code, key: String, expected: String, found: String?) {
        self.code = code
        self.key = key
        self.expected = expected
        self.found = found
    }

    /// A one-line explanation, e.g. `key "level": expected uint8, found int64 300 (out of range)`.
    public var description: String {
        switch code {
        case .missingKey: "key \"\(key)\": missing (expected \(expected))"
        case .outOfRange: "key \"\(key)\": expected \(expected), found \(found ?? "?") (out of range)"
        case .invalidCapsule: "key \"\(key)\": not a valid capsule: \(found ?? "?")"
        default: "key \"\(key)\": expected \(expected), found \(found ?? "?")"
        }
    }
}
