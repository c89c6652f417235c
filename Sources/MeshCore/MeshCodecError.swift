/// Why ``MeshCodec`` refused to encode or decode. Decoding is total: every malformed input ends in one of
/// these, never a trap, and `offset` says where in the input the problem was found.
public struct MeshCodecError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The category of failure; compare with `==` against the statics.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: Hashable, Sendable {
            case truncated, unsupportedVersion, unknownTag, invalidUTF8, depthLimitExceeded, trailingBytes
            case nonCanonicalKeys, malformedVarint, integerOutOfRange, lengthOutOfRange, tooLarge, invalidCapsule
        }
        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The input ended in the middle of a value.
        public static let truncated = Code(.truncated)
        /// The first byte is not a format version this build can read.
        public static let unsupportedVersion = Code(.unsupportedVersion)
        /// A value tag is not one of the known kinds.
        public static let unknownTag = Code(.unknownTag)
        /// A string or key is not valid UTF-8.
        public static let invalidUTF8 = Code(.invalidUTF8)
        /// Arrays and maps are nested deeper than ``MeshCodec/Limits/maxDepth``.
        public static let depthLimitExceeded = Code(.depthLimitExceeded)
        /// Bytes follow the end of the encoded map.
        public static let trailingBytes = Code(.trailingBytes)
        /// Map keys are repeated or not in canonical (ascending UTF-8) order.
        public static let nonCanonicalKeys = Code(.nonCanonicalKeys)
        /// A variable-length integer is longer than 10 bytes or overflows 64 bits.
        public static let malformedVarint = Code(.malformedVarint)
        /// A 16- or 32-bit integer value does not fit its declared width.
        public static let integerOutOfRange = Code(.integerOutOfRange)
        /// A length or element count is larger than what remains of the input.
        public static let lengthOutOfRange = Code(.lengthOutOfRange)
        /// The input or the encoding is larger than ``MeshCodec/Limits/maxSize``.
        public static let tooLarge = Code(.tooLarge)
        /// The bytes decode, but not to a well-formed ``DataCapsule``.
        public static let invalidCapsule = Code(.invalidCapsule)

        /// A short name for the code.
        public var description: String {
            switch base {
            case .truncated: "truncated input"
            case .unsupportedVersion: "unsupported format version"
            case .unknownTag: "unknown value tag"
            case .invalidUTF8: "invalid UTF-8"
            case .depthLimitExceeded: "nesting too deep"
            case .trailingBytes: "trailing bytes"
            case .nonCanonicalKeys: "duplicate or unordered map keys"
            case .malformedVarint: "malformed varint"
            case .integerOutOfRange: "integer out of range"
            case .lengthOutOfRange: "length out of range"
            case .tooLarge: "too large"
            case .invalidCapsule: "invalid capsule"
            }
        }
    }

    /// The category of failure.
    public let code: Code
    /// The byte offset in the input where decoding stopped (0 when encoding).
    public let offset: Int
    /// Extra detail, such as the offending tag or limit.
    public let detail: String?

    /// Creates an error; the codec builds these.
    public init(_ code: Code, offset: Int, detail: String? = nil) {
        self.code = code
        self.offset = offset
        self.detail = detail
    }

    /// A one-line explanation, e.g. `truncated input at byte 17`.
    public var description: String {
        var text = "\(code) at byte \(offset)"
        if let detail { text += ": \(detail)" }
        return text
    }
}
