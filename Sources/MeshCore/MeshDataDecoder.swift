/// Decodes any `Decodable` type from ``MeshData``: `handleCommand(1024, as: Appointment.self)`.
///
/// Integers convert between widths only when the value fits exactly; a `Double` or `Float` property reads only
/// `float64`; `[UInt8]` reads `bytes`. Errors are the standard `DecodingError`s with the coding path, so a
/// failure names the field.
public struct MeshDataDecoder: Sendable {
    /// Creates a decoder.
    public init() {}

    /// Decodes `type` from a message map.
    public func decode<T: Decodable>(_ type: T.Type, from data: MeshData) throws -> T {
        try decodeValue(type, from: .map(data))
    }

    /// Decodes `type` from a single value.
    public func decodeValue<T: Decodable>(_ type: T.Type, from value: MeshValue) throws -> T {
        try ValueDecoder(value: value, codingPath: []).decodeAny(type)
    }
}

struct ValueDecoder: Decoder {
    let value: MeshValue
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func decodeAny<T: Decodable>(_ type: T.Type) throws -> T {
        if type == [UInt8].self {
            if case .bytes(let bytes) = value { return bytes as! T }
        }
        return try T(from: self)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        guard case .map(let data) = value else {
            throw DecodingError.typeMismatch(MeshData.self, .init(codingPath: codingPath,
                debugDescription: "expected a map, found \(value.briefDescription)"))
        }
        return KeyedDecodingContainer(KeyedValueDecoder<Key>(data: data, codingPath: codingPath))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        switch value {
        case .array(let elements): return UnkeyedValueDecoder(elements: elements, codingPath: codingPath)
        case .bytes(let bytes): return UnkeyedValueDecoder(elements: bytes.map { .uint8($0) }, codingPath: codingPath)
        default:
            throw DecodingError.typeMismatch([MeshValue].self, .init(codingPath: codingPath,
                debugDescription: "expected an array, found \(value.briefDescription)"))
        }
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        SingleValueDecoder(value: value, codingPath: codingPath)
    }
}

/// Scalar reads shared by the three container kinds.
enum ScalarReader {
    static func integer<T: FixedWidthInteger>(_ value: MeshValue, _ type: T.Type, _ path: [any CodingKey]) throws -> T {
        guard value.isInteger else {
            throw DecodingError.typeMismatch(T.self, .init(codingPath: path,
                debugDescription: "expected an integer, found \(value.briefDescription)"))
        }
        guard let v = value.integer(as: T.self) else {
            throw DecodingError.dataCorrupted(.init(codingPath: path,
                debugDescription: "\(value.briefDescription) does not fit in \(T.self)"))
        }
        return v
    }

    static func double(_ value: MeshValue, _ path: [any CodingKey]) throws -> Double {
        guard case .float64(let v) = value else {
            throw DecodingError.typeMismatch(Double.self, .init(codingPath: path,
                debugDescription: "expected float64, found \(value.briefDescription)"))
        }
        return v
    }

    static func string(_ value: MeshValue, _ path: [any CodingKey]) throws -> String {
        guard case .string(let v) = value else {
            throw DecodingError.typeMismatch(String.self, .init(codingPath: path,
                debugDescription: "expected string, found \(value.briefDescription)"))
        }
        return v
    }

    static func bool(_ value: MeshValue, _ path: [any CodingKey]) throws -> Bool {
        guard case .bool(let v) = value else {
            throw DecodingError.typeMismatch(Bool.self, .init(codingPath: path,
                debugDescription: "expected bool, found \(value.briefDescription)"))
        }
        return v
    }
}

struct KeyedValueDecoder<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let data: MeshData
    let codingPath: [any CodingKey]

    var allKeys: [Key] { data.keys.compactMap { Key(stringValue: $0) } }
    func contains(_ key: Key) -> Bool { data[key.stringValue] != nil }

    private func value(_ key: Key) throws -> MeshValue {
        guard let v = data[key.stringValue] else {
            throw DecodingError.keyNotFound(key, .init(codingPath: codingPath, debugDescription: "key \"\(key.stringValue)\" is missing"))
        }
        return v
    }

    func decodeNil(forKey key: Key) throws -> Bool { data[key.stringValue]?.isNull ?? true }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try ScalarReader.bool(value(key), codingPath + [key]) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try ScalarReader.string(value(key), codingPath + [key]) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try ScalarReader.double(value(key), codingPath + [key]) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { Float(try ScalarReader.double(value(key), codingPath + [key])) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try ScalarReader.integer(value(key), type, codingPath + [key]) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try ScalarReader.integer(value(key), type, codingPath + [key]) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try ScalarReader.integer(value(key), type, codingPath + [key]) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try ScalarReader.integer(value(key), type, codingPath + [key]) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try ScalarReader.integer(value(key), type, codingPath + [key]) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try ScalarReader.integer(value(key), type, codingPath + [key]) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try ScalarReader.integer(value(key), type, codingPath + [key]) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try ScalarReader.integer(value(key), type, codingPath + [key]) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try ScalarReader.integer(value(key), type, codingPath + [key]) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try ScalarReader.integer(value(key), type, codingPath + [key]) }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try ValueDecoder(value: value(key), codingPath: codingPath + [key]).decodeAny(type)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try ValueDecoder(value: value(key), codingPath: codingPath + [key]).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try ValueDecoder(value: value(key), codingPath: codingPath + [key]).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder {
        ValueDecoder(value: data["super"] ?? .null, codingPath: codingPath)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        ValueDecoder(value: data[key.stringValue] ?? .null, codingPath: codingPath + [key])
    }
}

struct UnkeyedValueDecoder: UnkeyedDecodingContainer {
    let elements: [MeshValue]
    let codingPath: [any CodingKey]
    var currentIndex = 0

    init(elements: [MeshValue], codingPath: [any CodingKey]) {
        self.elements = elements
        self.codingPath = codingPath
    }

    var count: Int? { elements.count }
    var isAtEnd: Bool { currentIndex >= elements.count }

    private mutating func next<T>(_ type: T.Type) throws -> (MeshValue, [any CodingKey]) {
        guard !isAtEnd else {
            throw DecodingError.valueNotFound(T.self, .init(codingPath: codingPath + [IndexKey(currentIndex)],
                debugDescription: "the array has only \(elements.count) elements"))
        }
        defer { currentIndex += 1 }
        return (elements[currentIndex], codingPath + [IndexKey(currentIndex)])
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, elements[currentIndex].isNull else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { let (v, p) = try next(type); return try ScalarReader.bool(v, p) }
    mutating func decode(_ type: String.Type) throws -> String { let (v, p) = try next(type); return try ScalarReader.string(v, p) }
    mutating func decode(_ type: Double.Type) throws -> Double { let (v, p) = try next(type); return try ScalarReader.double(v, p) }
    mutating func decode(_ type: Float.Type) throws -> Float { let (v, p) = try next(type); return Float(try ScalarReader.double(v, p)) }
    mutating func decode(_ type: Int.Type) throws -> Int { let (v, p) = try next(type); return try ScalarReader.integer(v, type, p) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { let (v, p) = try next(type); return try ScalarReader.integer(v, type, p) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { let (v, p) = try next(type); return try ScalarReader.integer(v, type, p) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { let (v, p) = try next(type); return try ScalarReader.integer(v, type, p) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { let (v, p) = try next(type); return try ScalarReader.integer(v, type, p) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { let (v, p) = try next(type); return try ScalarReader.integer(v, type, p) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { let (v, p) = try next(type); return try ScalarReader.integer(v, type, p) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { let (v, p) = try next(type); return try ScalarReader.integer(v, type, p) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { let (v, p) = try next(type); return try ScalarReader.integer(v, type, p) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { let (v, p) = try next(type); return try ScalarReader.integer(v, type, p) }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        let (v, p) = try next(type)
        return try ValueDecoder(value: v, codingPath: p).decodeAny(type)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        let (v, p) = try next(MeshData.self)
        return try ValueDecoder(value: v, codingPath: p).container(keyedBy: type)
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let (v, p) = try next([MeshValue].self)
        return try ValueDecoder(value: v, codingPath: p).unkeyedContainer()
    }

    mutating func superDecoder() throws -> any Decoder {
        let (v, p) = try next(MeshValue.self)
        return ValueDecoder(value: v, codingPath: p)
    }
}

struct SingleValueDecoder: SingleValueDecodingContainer {
    let value: MeshValue
    let codingPath: [any CodingKey]

    func decodeNil() -> Bool { value.isNull }
    func decode(_ type: Bool.Type) throws -> Bool { try ScalarReader.bool(value, codingPath) }
    func decode(_ type: String.Type) throws -> String { try ScalarReader.string(value, codingPath) }
    func decode(_ type: Double.Type) throws -> Double { try ScalarReader.double(value, codingPath) }
    func decode(_ type: Float.Type) throws -> Float { Float(try ScalarReader.double(value, codingPath)) }
    func decode(_ type: Int.Type) throws -> Int { try ScalarReader.integer(value, type, codingPath) }
    func decode(_ type: Int8.Type) throws -> Int8 { try ScalarReader.integer(value, type, codingPath) }
    func decode(_ type: Int16.Type) throws -> Int16 { try ScalarReader.integer(value, type, codingPath) }
    func decode(_ type: Int32.Type) throws -> Int32 { try ScalarReader.integer(value, type, codingPath) }
    func decode(_ type: Int64.Type) throws -> Int64 { try ScalarReader.integer(value, type, codingPath) }
    func decode(_ type: UInt.Type) throws -> UInt { try ScalarReader.integer(value, type, codingPath) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try ScalarReader.integer(value, type, codingPath) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try ScalarReader.integer(value, type, codingPath) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try ScalarReader.integer(value, type, codingPath) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try ScalarReader.integer(value, type, codingPath) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try ValueDecoder(value: value, codingPath: codingPath).decodeAny(type) }
}
