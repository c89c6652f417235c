/// Diarkis's data capsule: a map whose properties keep their declared type, meant to be packed into bytes and
/// carried inside a message (`data["mySchedule"] = .bytes(try schedule.pack())`).
///
/// Properties are set with the typed `setAs…` methods (the twelve scalar kinds, a nested capsule, an array of
/// capsules, a map of capsules) and read back with `getAs…`, which throw a ``MeshDataError`` naming the key on
/// a missing property or a type mismatch: a capsule never converts between kinds. The seed example:
///
/// ```swift
/// var schedule = DataCapsule()
/// schedule.setAsArray("appointments", [
///     DataCapsule(["date": "01/01/2022", "title": "New Year Party"]),
///     DataCapsule(["date": "25/12/2022", "title": "Christmas Party"]),
/// ])
/// let data: MeshData = ["myName": "Jon", "mySchedule": .bytes(try schedule.pack())]
/// ```
///
/// A capsule is stored as a ``MeshData`` whose arrays hold only nested maps (capsules) and which has no nulls,
/// so ``export()`` and ``import(_:)`` convert to and from message maps losslessly. A map of capsules and a
/// nested capsule share that representation: ``getAsMap(_:)`` reads a nested capsule as its properties.
public struct DataCapsule: Sendable, Hashable {
    private var storage: MeshData

    /// An empty capsule (Diarkis `NewCapsule()`).
    public init() { storage = MeshData() }

    /// A capsule holding string properties, convenient for records like the seed's appointments.
    public init(_ strings: KeyValuePairs<String, String>) {
        storage = MeshData()
        for (key, value) in strings { storage[key] = .string(value) }
    }

    /// A capsule from a message map.
    /// - Throws: ``MeshDataError`` with code `invalidCapsule` if `data` holds a null or an array element that is
    ///   not a map.
    public init(importing data: MeshData) throws(MeshDataError) {
        try DataCapsule.validate(data, path: "")
        storage = data
    }

    /// The names of the properties, in canonical order.
    public var keys: [String] { storage.sortedKeys }

    /// Whether `name` is set.
    public func contains(_ name: String) -> Bool { storage[name] != nil }

    /// Removes `name`.
    public mutating func remove(_ name: String) { storage.removeValue(forKey: name) }

    // MARK: - Pack, unpack, export, import

    /// The capsule as bytes (Diarkis `Pack`), in ``MeshCodec``'s format.
    /// - Throws: ``MeshCodecError`` if the capsule nests deeper than the codec's limit.
    public func pack() throws(MeshCodecError) -> [UInt8] { try MeshCodec.encode(storage) }

    /// A capsule from bytes made by ``pack()`` (Diarkis `Unpack`).
    /// - Throws: ``MeshCodecError``: the codec's errors for malformed bytes, `invalidCapsule` for well-formed bytes
    ///   that are not a capsule.
    public static func unpack(_ bytes: [UInt8]) throws(MeshCodecError) -> DataCapsule {
        let data = try MeshCodec.decode(bytes)
        do {
            return try DataCapsule(importing: data)
        } catch {
            throw MeshCodecError(.invalidCapsule, offset: 0, detail: error.description)
        }
    }

    /// The capsule as a message map (Diarkis `Export`).
    public func export() -> MeshData { storage }

    /// Replaces every property with those of `data` (Diarkis `Import`). On error the capsule is unchanged.
    /// - Throws: ``MeshDataError`` with code `invalidCapsule` if `data` is not capsule-shaped.
    public mutating func `import`(_ data: MeshData) throws(MeshDataError) {
        try DataCapsule.validate(data, path: "")
        storage = data
    }

    private static func validate(_ data: MeshData, path: String) throws(MeshDataError) {
        for (key, value) in data {
            let at = path.isEmpty ? key : path + "." + key
            switch value {
            case .null:
                throw MeshDataError(code: .invalidCapsule, key: at, expected: "capsule property", found: "null")
            case .array(let elements):
                for (i, element) in elements.enumerated() {
                    guard case .map(let nested) = element else {
                        throw MeshDataError(code: .invalidCapsule, key: "\(at)[\(i)]", expected: "capsule",
                                            found: "array element \(element.briefDescription)")
                    }
                    try validate(nested, path: "\(at)[\(i)]")
                }
            case .map(let nested):
                try validate(nested, path: at)
            default:
                break
            }
        }
    }

    // MARK: - Nesting

    /// Sets `name` to a nested capsule.
    public mutating func setAsCapsule(_ name: String, _ value: DataCapsule) { storage[name] = .map(value.storage) }

    /// Sets `name` to an array of capsules.
    public mutating func setAsArray(_ name: String, _ value: [DataCapsule]) {
        storage[name] = .array(value.map { .map($0.storage) })
    }

    /// Sets `name` to a map of capsules.
    public mutating func setAsMap(_ name: String, _ value: [String: DataCapsule]) {
        storage[name] = .map(MeshData(value.mapValues { .map($0.storage) }))
    }

    /// The nested capsule under `name`.
    /// - Throws: ``MeshDataError`` if missing or not a capsule.
    public func getAsCapsule(_ name: String) throws(MeshDataError) -> DataCapsule {
        let value = try storage.require(name, expected: "capsule")
        guard case .map(let nested) = value else { throw MeshData.mismatch(name, "capsule", value) }
        return DataCapsule(trusted: nested)
    }

    /// The array of capsules under `name`.
    /// - Throws: ``MeshDataError`` if missing or not an array of capsules.
    public func getAsArray(_ name: String) throws(MeshDataError) -> [DataCapsule] {
        let value = try storage.require(name, expected: "capsule array")
        guard case .array(let elements) = value else { throw MeshData.mismatch(name, "capsule array", value) }
        var result: [DataCapsule] = []
        result.reserveCapacity(elements.count)
        for element in elements {
            guard case .map(let nested) = element else { throw MeshData.mismatch(name, "capsule array", value) }
            result.append(DataCapsule(trusted: nested))
        }
        return result
    }

    /// The map of capsules under `name`.
    /// - Throws: ``MeshDataError`` if missing, or not a map whose values are all capsules.
    public func getAsMap(_ name: String) throws(MeshDataError) -> [String: DataCapsule] {
        let value = try storage.require(name, expected: "capsule map")
        guard case .map(let nested) = value else { throw MeshData.mismatch(name, "capsule map", value) }
        var result: [String: DataCapsule] = [:]
        for (key, element) in nested {
            guard case .map(let inner) = element else {
                throw MeshDataError(code: .typeMismatch, key: name + "." + key, expected: "capsule",
                                    found: element.briefDescription)
            }
            result[key] = DataCapsule(trusted: inner)
        }
        return result
    }

    private init(trusted storage: MeshData) { self.storage = storage }

    // MARK: - Scalars

    /// Sets `name` to a int8 (Diarkis `SetAsInt8`).
    public mutating func setAsInt8(_ name: String, _ value: Int8) { storage[name] = .int8(value) }

    /// The int8 under `name` (Diarkis `GetAsInt8`); no conversion from other kinds.
    /// - Throws: ``MeshDataError`` if missing or of another kind.
    public func getAsInt8(_ name: String) throws(MeshDataError) -> Int8 {
        let value = try storage.require(name, expected: "int8")
        guard case .int8(let v) = value else { throw MeshData.mismatch(name, "int8", value) }
        return v
    }

    /// Sets `name` to a uint8 (Diarkis `SetAsUint8`).
    public mutating func setAsUint8(_ name: String, _ value: UInt8) { storage[name] = .uint8(value) }

    /// The uint8 under `name` (Diarkis `GetAsUint8`); no conversion from other kinds.
    /// - Throws: ``MeshDataError`` if missing or of another kind.
    public func getAsUint8(_ name: String) throws(MeshDataError) -> UInt8 {
        let value = try storage.require(name, expected: "uint8")
        guard case .uint8(let v) = value else { throw MeshData.mismatch(name, "uint8", value) }
        return v
    }

    /// Sets `name` to a int16 (Diarkis `SetAsInt16`).
    public mutating func setAsInt16(_ name: String, _ value: Int16) { storage[name] = .int16(value) }

    /// The int16 under `name` (Diarkis `GetAsInt16`); no conversion from other kinds.
    /// - Throws: ``MeshDataError`` if missing or of another kind.
    public func getAsInt16(_ name: String) throws(MeshDataError) -> Int16 {
        let value = try storage.require(name, expected: "int16")
        guard case .int16(let v) = value else { throw MeshData.mismatch(name, "int16", value) }
        return v
    }

    /// Sets `name` to a uint16 (Diarkis `SetAsUint16`).
    public mutating func setAsUint16(_ name: String, _ value: UInt16) { storage[name] = .uint16(value) }

    /// The uint16 under `name` (Diarkis `GetAsUint16`); no conversion from other kinds.
    /// - Throws: ``MeshDataError`` if missing or of another kind.
    public func getAsUint16(_ name: String) throws(MeshDataError) -> UInt16 {
        let value = try storage.require(name, expected: "uint16")
        guard case .uint16(let v) = value else { throw MeshData.mismatch(name, "uint16", value) }
        return v
    }

    /// Sets `name` to a int32 (Diarkis `SetAsInt32`).
    public mutating func setAsInt32(_ name: String, _ value: Int32) { storage[name] = .int32(value) }

    /// The int32 under `name` (Diarkis `GetAsInt32`); no conversion from other kinds.
    /// - Throws: ``MeshDataError`` if missing or of another kind.
    public func getAsInt32(_ name: String) throws(MeshDataError) -> Int32 {
        let value = try storage.require(name, expected: "int32")
        guard case .int32(let v) = value else { throw MeshData.mismatch(name, "int32", value) }
        return v
    }

    /// Sets `name` to a uint32 (Diarkis `SetAsUint32`).
    public mutating func setAsUint32(_ name: String, _ value: UInt32) { storage[name] = .uint32(value) }

    /// The uint32 under `name` (Diarkis `GetAsUint32`); no conversion from other kinds.
    /// - Throws: ``MeshDataError`` if missing or of another kind.
    public func getAsUint32(_ name: String) throws(MeshDataError) -> UInt32 {
        let value = try storage.require(name, expected: "uint32")
        guard case .uint32(let v) = value else { throw MeshData.mismatch(name, "uint32", value) }
        return v
    }

    /// Sets `name` to a int64 (Diarkis `SetAsInt64`).
    public mutating func setAsInt64(_ name: String, _ value: Int64) { storage[name] = .int64(value) }

    /// The int64 under `name` (Diarkis `GetAsInt64`); no conversion from other kinds.
    /// - Throws: ``MeshDataError`` if missing or of another kind.
    public func getAsInt64(_ name: String) throws(MeshDataError) -> Int64 {
        let value = try storage.require(name, expected: "int64")
        guard case .int64(let v) = value else { throw MeshData.mismatch(name, "int64", value) }
        return v
    }

    /// Sets `name` to a uint64 (Diarkis `SetAsUint64`).
    public mutating func setAsUint64(_ name: String, _ value: UInt64) { storage[name] = .uint64(value) }

    /// The uint64 under `name` (Diarkis `GetAsUint64`); no conversion from other kinds.
    /// - Throws: ``MeshDataError`` if missing or of another kind.
    public func getAsUint64(_ name: String) throws(MeshDataError) -> UInt64 {
        let value = try storage.require(name, expected: "uint64")
        guard case .uint64(let v) = value else { throw MeshData.mismatch(name, "uint64", value) }
        return v
    }

    /// Sets `name` to a float64 (Diarkis `SetAsFloat64`).
    public mutating func setAsFloat64(_ name: String, _ value: Double) { storage[name] = .float64(value) }

    /// The float64 under `name` (Diarkis `GetAsFloat64`); no conversion from other kinds.
    /// - Throws: ``MeshDataError`` if missing or of another kind.
    public func getAsFloat64(_ name: String) throws(MeshDataError) -> Double {
        let value = try storage.require(name, expected: "float64")
        guard case .float64(let v) = value else { throw MeshData.mismatch(name, "float64", value) }
        return v
    }

    /// Sets `name` to a bool (Diarkis `SetAsBool`).
    public mutating func setAsBool(_ name: String, _ value: Bool) { storage[name] = .bool(value) }

    /// The bool under `name` (Diarkis `GetAsBool`); no conversion from other kinds.
    /// - Throws: ``MeshDataError`` if missing or of another kind.
    public func getAsBool(_ name: String) throws(MeshDataError) -> Bool {
        let value = try storage.require(name, expected: "bool")
        guard case .bool(let v) = value else { throw MeshData.mismatch(name, "bool", value) }
        return v
    }

    /// Sets `name` to a string (Diarkis `SetAsString`).
    public mutating func setAsString(_ name: String, _ value: String) { storage[name] = .string(value) }

    /// The string under `name` (Diarkis `GetAsString`); no conversion from other kinds.
    /// - Throws: ``MeshDataError`` if missing or of another kind.
    public func getAsString(_ name: String) throws(MeshDataError) -> String {
        let value = try storage.require(name, expected: "string")
        guard case .string(let v) = value else { throw MeshData.mismatch(name, "string", value) }
        return v
    }

    /// Sets `name` to a bytes (Diarkis `SetAsBytes`).
    public mutating func setAsBytes(_ name: String, _ value: [UInt8]) { storage[name] = .bytes(value) }

    /// The bytes under `name` (Diarkis `GetAsBytes`); no conversion from other kinds.
    /// - Throws: ``MeshDataError`` if missing or of another kind.
    public func getAsBytes(_ name: String) throws(MeshDataError) -> [UInt8] {
        let value = try storage.require(name, expected: "bytes")
        guard case .bytes(let v) = value else { throw MeshData.mismatch(name, "bytes", value) }
        return v
    }
}
