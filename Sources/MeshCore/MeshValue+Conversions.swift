// Typed views of a MeshValue. Integer views convert between widths only when the value fits exactly;
// nothing goes through a float.

extension MeshValue {
    /// The value as a string, if it is one.
    @inlinable public var stringValue: String? { if case .string(let v) = self { v } else { nil } }
    /// The value as bytes, if it is ``bytes(_:)``.
    @inlinable public var bytesValue: [UInt8]? { if case .bytes(let v) = self { v } else { nil } }
    /// The value as a boolean, if it is one.
    @inlinable public var boolValue: Bool? { if case .bool(let v) = self { v } else { nil } }
    /// The value as a float, if it is ``float64(_:)``.
    @inlinable public var float64Value: Double? { if case .float64(let v) = self { v } else { nil } }
    /// The elements, if the value is an array.
    @inlinable public var arrayValue: [MeshValue]? { if case .array(let v) = self { v } else { nil } }
    /// The nested map, if the value is one.
    @inlinable public var mapValue: MeshData? { if case .map(let v) = self { v } else { nil } }
    /// Whether the value is ``null``.
    @inlinable public var isNull: Bool { if case .null = self { true } else { false } }

    /// Whether the value is one of the integer kinds.
    public var isInteger: Bool {
        switch self {
        case .int8, .int16, .int32, .int64, .uint8, .uint16, .uint32, .uint64: true
        default: false
        }
    }

    /// The integer converted exactly to `T`, or `nil` if the value is not an integer or does not fit.
    public func integer<T: FixedWidthInteger>(as type: T.Type = T.self) -> T? {
        switch self {
        case .int8(let v): T(exactly: v)
        case .int16(let v): T(exactly: v)
        case .int32(let v): T(exactly: v)
        case .int64(let v): T(exactly: v)
        case .uint8(let v): T(exactly: v)
        case .uint16(let v): T(exactly: v)
        case .uint32(let v): T(exactly: v)
        case .uint64(let v): T(exactly: v)
        default: nil
        }
    }

    /// A short description for error messages: the kind, plus the value for scalars.
    var briefDescription: String {
        switch self {
        case .null: "null"
        case .bool(let v): "bool \(v)"
        case .int8(let v): "int8 \(v)"
        case .int16(let v): "int16 \(v)"
        case .int32(let v): "int32 \(v)"
        case .int64(let v): "int64 \(v)"
        case .uint8(let v): "uint8 \(v)"
        case .uint16(let v): "uint16 \(v)"
        case .uint32(let v): "uint32 \(v)"
        case .uint64(let v): "uint64 \(v)"
        case .float64(let v): "float64 \(v)"
        case .string(let v): "string (\(v.utf8.count) bytes)"
        case .bytes(let v): "bytes (\(v.count))"
        case .array(let v): "array (\(v.count) elements)"
        case .map(let v): "map (\(v.count) keys)"
        }
    }
}
