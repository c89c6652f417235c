// Typed accessors that mirror the Diarkis getters (`mesh.GetString`, `GetBytes`, `GetBool`, `GetFloat64`,
// `GetInt8` … `GetUint64`, `GetInt`). Each has a throwing form (`getString`) whose error names the key and
// what was found, and an optional form (`string`) that returns nil when the key is absent or of another type.
// Integer accessors accept any integer kind whose value fits the requested width exactly.

extension MeshData {
    /// The value under `key`, or a ``MeshDataError`` with code `missingKey`.
    public func require(_ key: String, expected: @autoclosure () -> String) throws(MeshDataError) -> MeshValue {
        guard let value = self[key] else {
            throw MeshDataError(code: .missingKey, key: key, expected: expected(), found: nil)
        }
        return value
    }

    /// The string under `key` (Diarkis `GetString`).
    /// - Throws: ``MeshDataError`` if the key is missing or holds another kind.
    public func getString(_ key: String) throws(MeshDataError) -> String {
        let value = try require(key, expected: "string")
        guard case .string(let v) = value else { throw Self.mismatch(key, "string", value) }
        return v
    }

    /// The string under `key`, or `nil` if absent or not a string.
    @inlinable public func string(_ key: String) -> String? { self[key]?.stringValue }

    /// The bytes under `key` (Diarkis `GetBytes`).
    /// - Throws: ``MeshDataError`` if the key is missing or holds another kind.
    public func getBytes(_ key: String) throws(MeshDataError) -> [UInt8] {
        let value = try require(key, expected: "bytes")
        guard case .bytes(let v) = value else { throw Self.mismatch(key, "bytes", value) }
        return v
    }

    /// The bytes under `key`, or `nil` if absent or not bytes.
    @inlinable public func bytes(_ key: String) -> [UInt8]? { self[key]?.bytesValue }

    /// The boolean under `key` (Diarkis `GetBool`).
    /// - Throws: ``MeshDataError`` if the key is missing or holds another kind.
    public func getBool(_ key: String) throws(MeshDataError) -> Bool {
        let value = try require(key, expected: "bool")
        guard case .bool(let v) = value else { throw Self.mismatch(key, "bool", value) }
        return v
    }

    /// The boolean under `key`, or `nil` if absent or not a boolean.
    @inlinable public func bool(_ key: String) -> Bool? { self[key]?.boolValue }

    /// The float under `key` (Diarkis `GetFloat64`). Only ``MeshValue/float64(_:)`` qualifies: integers are
    /// not silently converted.
    /// - Throws: ``MeshDataError`` if the key is missing or holds another kind.
    public func getFloat64(_ key: String) throws(MeshDataError) -> Double {
        let value = try require(key, expected: "float64")
        guard case .float64(let v) = value else { throw Self.mismatch(key, "float64", value) }
        return v
    }

    /// The float under `key`, or `nil` if absent or not a float.
    @inlinable public func float64(_ key: String) -> Double? { self[key]?.float64Value }

    /// The array under `key`.
    /// - Throws: ``MeshDataError`` if the key is missing or holds another kind.
    public func getArray(_ key: String) throws(MeshDataError) -> [MeshValue] {
        let value = try require(key, expected: "array")
        guard case .array(let v) = value else { throw Self.mismatch(key, "array", value) }
        return v
    }

    /// The array under `key`, or `nil`.
    @inlinable public func array(_ key: String) -> [MeshValue]? { self[key]?.arrayValue }

    /// The nested map under `key`.
    /// - Throws: ``MeshDataError`` if the key is missing or holds another kind.
    public func getMap(_ key: String) throws(MeshDataError) -> MeshData {
        let value = try require(key, expected: "map")
        guard case .map(let v) = value else { throw Self.mismatch(key, "map", value) }
        return v
    }

    /// The nested map under `key`, or `nil`.
    @inlinable public func map(_ key: String) -> MeshData? { self[key]?.mapValue }

    /// An integer of any kind under `key`, converted exactly to `T`.
    /// - Throws: ``MeshDataError``: `missingKey`, `typeMismatch` (not an integer) or `outOfRange`.
    public func getInteger<T: FixedWidthInteger>(_ key: String, as type: T.Type, named name: String) throws(MeshDataError) -> T {
        let value = try require(key, expected: name)
        guard value.isInteger else { throw Self.mismatch(key, name, value) }
        guard let v = value.integer(as: T.self) else {
            throw MeshDataError(code: .outOfRange, key: key, expected: name, found: value.briefDescription)
        }
        return v
    }

    static func mismatch(_ key: String, _ expected: String, _ value: MeshValue) -> MeshDataError {
        MeshDataError(code: .typeMismatch, key: key, expected: expected, found: value.briefDescription)
    }

    /// The integer under `key` as `Int8` (Diarkis `GetInt8`); any integer kind that fits exactly qualifies.
    /// - Throws: ``MeshDataError`` if the key is missing, not an integer, or out of range for `Int8`.
    public func getInt8(_ key: String) throws(MeshDataError) -> Int8 {
        try getInteger(key, as: Int8.self, named: "int8")
    }

    /// The integer under `key` as `Int8`, or `nil` if absent, not an integer, or out of range.
    public func int8(_ key: String) -> Int8? { self[key]?.integer(as: Int8.self) }

    /// The integer under `key` as `Int16` (Diarkis `GetInt16`); any integer kind that fits exactly qualifies.
    /// - Throws: ``MeshDataError`` if the key is missing, not an integer, or out of range for `Int16`.
    public func getInt16(_ key: String) throws(MeshDataError) -> Int16 {
        try getInteger(key, as: Int16.self, named: "int16")
    }

    /// The integer under `key` as `Int16`, or `nil` if absent, not an integer, or out of range.
    public func int16(_ key: String) -> Int16? { self[key]?.integer(as: Int16.self) }

    /// The integer under `key` as `Int32` (Diarkis `GetInt32`); any integer kind that fits exactly qualifies.
    /// - Throws: ``MeshDataError`` if the key is missing, not an integer, or out of range for `Int32`.
    public func getInt32(_ key: String) throws(MeshDataError) -> Int32 {
        try getInteger(key, as: Int32.self, named: "int32")
    }

    /// The integer under `key` as `Int32`, or `nil` if absent, not an integer, or out of range.
    public func int32(_ key: String) -> Int32? { self[key]?.integer(as: Int32.self) }

    /// The integer under `key` as `Int64` (Diarkis `GetInt64`); any integer kind that fits exactly qualifies.
    /// - Throws: ``MeshDataError`` if the key is missing, not an integer, or out of range for `Int64`.
    public func getInt64(_ key: String) throws(MeshDataError) -> Int64 {
        try getInteger(key, as: Int64.self, named: "int64")
    }

    /// The integer under `key` as `Int64`, or `nil` if absent, not an integer, or out of range.
    public func int64(_ key: String) -> Int64? { self[key]?.integer(as: Int64.self) }

    /// The integer under `key` as `UInt8` (Diarkis `GetUint8`); any integer kind that fits exactly qualifies.
    /// - Throws: ``MeshDataError`` if the key is missing, not an integer, or out of range for `UInt8`.
    public func getUint8(_ key: String) throws(MeshDataError) -> UInt8 {
        try getInteger(key, as: UInt8.self, named: "uint8")
    }

    /// The integer under `key` as `UInt8`, or `nil` if absent, not an integer, or out of range.
    public func uint8(_ key: String) -> UInt8? { self[key]?.integer(as: UInt8.self) }

    /// The integer under `key` as `UInt16` (Diarkis `GetUint16`); any integer kind that fits exactly qualifies.
    /// - Throws: ``MeshDataError`` if the key is missing, not an integer, or out of range for `UInt16`.
    public func getUint16(_ key: String) throws(MeshDataError) -> UInt16 {
        try getInteger(key, as: UInt16.self, named: "uint16")
    }

    /// The integer under `key` as `UInt16`, or `nil` if absent, not an integer, or out of range.
    public func uint16(_ key: String) -> UInt16? { self[key]?.integer(as: UInt16.self) }

    /// The integer under `key` as `UInt32` (Diarkis `GetUint32`); any integer kind that fits exactly qualifies.
    /// - Throws: ``MeshDataError`` if the key is missing, not an integer, or out of range for `UInt32`.
    public func getUint32(_ key: String) throws(MeshDataError) -> UInt32 {
        try getInteger(key, as: UInt32.self, named: "uint32")
    }

    /// The integer under `key` as `UInt32`, or `nil` if absent, not an integer, or out of range.
    public func uint32(_ key: String) -> UInt32? { self[key]?.integer(as: UInt32.self) }

    /// The integer under `key` as `UInt64` (Diarkis `GetUint64`); any integer kind that fits exactly qualifies.
    /// - Throws: ``MeshDataError`` if the key is missing, not an integer, or out of range for `UInt64`.
    public func getUint64(_ key: String) throws(MeshDataError) -> UInt64 {
        try getInteger(key, as: UInt64.self, named: "uint64")
    }

    /// The integer under `key` as `UInt64`, or `nil` if absent, not an integer, or out of range.
    public func uint64(_ key: String) -> UInt64? { self[key]?.integer(as: UInt64.self) }

    /// The integer under `key` as `Int` (Diarkis `GetInt`); any integer kind that fits exactly qualifies.
    /// - Throws: ``MeshDataError`` if the key is missing, not an integer, or out of range for `Int`.
    public func getInt(_ key: String) throws(MeshDataError) -> Int {
        try getInteger(key, as: Int.self, named: "int")
    }

    /// The integer under `key` as `Int`, or `nil` if absent, not an integer, or out of range.
    public func int(_ key: String) -> Int? { self[key]?.integer(as: Int.self) }
}
