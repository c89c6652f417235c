/// One value inside a ``MeshData`` message map: the Swift form of the `interface{}` values of a Diarkis
/// `map[string]interface{}`, but typed, so integers keep their width and exact value and bytes stay bytes.
///
/// Every case survives the binary codec (``MeshCodec``) unchanged. Equality is *representational*:
/// `.int8(1)` and `.int64(1)` are different values, and `float64` compares bit patterns, so a NaN equals
/// itself and `0.0` differs from `-0.0`. That is what "lossless" means for a journal; use the typed accessors
/// of ``MeshData`` for numeric conversions.
public enum MeshValue: Sendable {
    /// An explicit null (Diarkis `nil`).
    case null
    /// A boolean.
    case bool(Bool)
    /// A signed 8-bit integer.
    case int8(Int8)
    /// A signed 16-bit integer.
    case int16(Int16)
    /// A signed 32-bit integer.
    case int32(Int32)
    /// A signed 64-bit integer.
    case int64(Int64)
    /// An unsigned 8-bit integer.
    case uint8(UInt8)
    /// An unsigned 16-bit integer.
    case uint16(UInt16)
    /// An unsigned 32-bit integer.
    case uint32(UInt32)
    /// An unsigned 64-bit integer.
    case uint64(UInt64)
    /// A 64-bit IEEE 754 float.
    case float64(Double)
    /// A UTF-8 string.
    case string(String)
    /// Raw bytes (for example a packed ``DataCapsule``).
    case bytes([UInt8])
    /// An ordered list of values.
    case array([MeshValue])
    /// A nested map.
    case map(MeshData)

    /// The kind of this value, used in error messages and by the codec.
    public var kind: Kind {
        switch self {
        case .null: .null
        case .bool: .bool
        case .int8: .int8
        case .int16: .int16
        case .int32: .int32
        case .int64: .int64
        case .uint8: .uint8
        case .uint16: .uint16
        case .uint32: .uint32
        case .uint64: .uint64
        case .float64: .float64
        case .string: .string
        case .bytes: .bytes
        case .array: .array
        case .map: .map
        }
    }

    /// The kinds of ``MeshValue``, with the names used in error messages (`"uint16"`, `"bytes"`, ...).
    public enum Kind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
        case null, bool, int8, int16, int32, int64, uint8, uint16, uint32, uint64, float64, string, bytes, array, map

        /// The kind's name, as in `int64` or `bytes`.
        public var description: String { rawValue }
    }
}

extension MeshValue: Equatable {
    /// Representational equality: same case and same value; `float64` compares bit patterns.
    public static func == (lhs: MeshValue, rhs: MeshValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.int8(let a), .int8(let b)): a == b
        case (.int16(let a), .int16(let b)): a == b
        case (.int32(let a), .int32(let b)): a == b
        case (.int64(let a), .int64(let b)): a == b
        case (.uint8(let a), .uint8(let b)): a == b
        case (.uint16(let a), .uint16(let b)): a == b
        case (.uint32(let a), .uint32(let b)): a == b
        case (.uint64(let a), .uint64(let b)): a == b
        case (.float64(let a), .float64(let b)): a.bitPattern == b.bitPattern
        case (.string(let a), .string(let b)): a == b
        case (.bytes(let a), .bytes(let b)): a == b
        case (.array(let a), .array(let b)): a == b
        case (.map(let a), .map(let b)): a == b
        default: false
        }
    }
}

extension MeshValue: Hashable {
    /// Hashes consistently with the representational ``==(_:_:)``.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(kind)
        switch self {
        case .null: break
        case .bool(let v): hasher.combine(v)
        case .int8(let v): hasher.combine(v)
        case .int16(let v): hasher.combine(v)
        case .int32(let v): hasher.combine(v)
        case .int64(let v): hasher.combine(v)
        case .uint8(let v): hasher.combine(v)
        case .uint16(let v): hasher.combine(v)
        case .uint32(let v): hasher.combine(v)
        case .uint64(let v): hasher.combine(v)
        case .float64(let v): hasher.combine(v.bitPattern)
        case .string(let v): hasher.combine(v)
        case .bytes(let v): hasher.combine(v)
        case .array(let v): hasher.combine(v)
        case .map(let v): hasher.combine(v)
        }
    }
}
