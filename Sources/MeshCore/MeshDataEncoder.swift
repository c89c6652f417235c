/// Encodes any `Encodable` value as ``MeshData`` (or a ``MeshValue``), so senders can work with their own
/// types: `send(1024, to: peer, Appointment(...))`.
///
/// Mapping: `Int`/`Int64` → `int64`, `UInt`/`UInt64` → `uint64`, the fixed widths to their own kinds,
/// `Double`/`Float` → `float64`, `[UInt8]` → `bytes`, `nil` optionals are omitted from keyed containers
/// (Swift's synthesized `encodeIfPresent`) and `null` elsewhere, nested types → maps and arrays.
public struct MeshDataEncoder: Sendable {
    /// Creates an encoder.
    public init() {}

    /// Encodes `value` as a message map.
    /// - Throws: `EncodingError.invalidValue` if `value` does not encode as a keyed container (a struct, class
    ///   or string-keyed dictionary).
    public func encode<T: Encodable>(_ value: T) throws -> MeshData {
        let encoded = try encodeValue(value)
        guard case .map(let data) = encoded else {
            throw EncodingError.invalidValue(value, .init(codingPath: [],
                debugDescription: "\(T.self) encodes as \(encoded.kind), but a message must be a map (a struct or dictionary)"))
        }
        return data
    }

    /// Encodes `value` as a single ``MeshValue`` of any kind.
    public func encodeValue<T: Encodable>(_ value: T) throws -> MeshValue {
        let node = EncodingNode()
        try node.encode(value, codingPath: [])
        return node.finish()
    }
}

/// A node of the value tree under construction. Containers keep references to their node, so nested
/// containers can be filled in any order; ``finish()`` converts the tree once at the end.
final class EncodingNode {
    enum Storage {
        case empty
        case value(MeshValue)
        case map([String: EncodingNode])
        case array([EncodingNode])
    }

    var storage: Storage = .empty

    init() {}
    init(_ value: MeshValue) { storage = .value(value) }

    func finish() -> MeshValue {
        switch storage {
        case .empty: return .null
        case .value(let v): return v
        case .map(let children): return .map(MeshData(children.mapValues { $0.finish() }))
        case .array(let children): return .array(children.map { $0.finish() })
        }
    }

    /// Encodes `value` into this node, with fast paths for scalars and bytes.
    func encode<T: Encodable>(_ value: T, codingPath: [any CodingKey]) throws {
        switch value {
        case let v as [UInt8]: storage = .value(.bytes(v))
        case let v as String: storage = .value(.string(v))
        case let v as Bool: storage = .value(.bool(v))
        case let v as Int: storage = .value(.int64(Int64(v)))
        case let v as Int64: storage = .value(.int64(v))
        case let v as Double: storage = .value(.float64(v))
        default: try value.encode(to: NodeEncoder(node: self, codingPath: codingPath))
        }
    }

    func becomeMap() {
        if case .map = storage { return }
        storage = .map([:])
    }

    func becomeArray() {
        if case .array = storage { return }
        storage = .array([])
    }

    func setChild(_ child: EncodingNode, forKey key: String) {
        guard case .map(var children) = storage else { return }
        storage = .empty  // release the reference so the dictionary is mutated in place
        children[key] = child
        storage = .map(children)
    }

    func appendChild(_ child: EncodingNode) -> Int {
        guard case .array(var children) = storage else { return 0 }
        storage = .empty
        children.append(child)
        storage = .array(children)
        return children.count - 1
    }

    var childCount: Int {
        switch storage {
        case .map(let c): c.count
        case .array(let c): c.count
        default: 0
        }
    }
}

struct NodeEncoder: Encoder {
    let node: EncodingNode
    let codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        node.becomeMap()
        return KeyedEncodingContainer(KeyedNodeEncoder<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        node.becomeArray()
        return UnkeyedNodeEncoder(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleNodeEncoder(node: node, codingPath: codingPath)
    }
}

struct KeyedNodeEncoder<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: EncodingNode
    let codingPath: [any CodingKey]

    private func set(_ value: MeshValue, _ key: Key) { node.setChild(EncodingNode(value), forKey: key.stringValue) }

    mutating func encodeNil(forKey key: Key) throws { set(.null, key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { set(.bool(value), key) }
    mutating func encode(_ value: String, forKey key: Key) throws { set(.string(value), key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { set(.float64(value), key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { set(.float64(Double(value)), key) }
    mutating func encode(_ value: Int, forKey key: Key) throws { set(.int64(Int64(value)), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { set(.int8(value), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { set(.int16(value), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { set(.int32(value), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { set(.int64(value), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { set(.uint64(UInt64(value)), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { set(.uint8(value), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { set(.uint16(value), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { set(.uint32(value), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { set(.uint64(value), key) }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        let child = EncodingNode()
        try child.encode(value, codingPath: codingPath + [key])
        node.setChild(child, forKey: key.stringValue)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        let child = EncodingNode()
        child.becomeMap()
        node.setChild(child, forKey: key.stringValue)
        return KeyedEncodingContainer(KeyedNodeEncoder<NestedKey>(node: child, codingPath: codingPath + [key]))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = EncodingNode()
        child.becomeArray()
        node.setChild(child, forKey: key.stringValue)
        return UnkeyedNodeEncoder(node: child, codingPath: codingPath + [key])
    }

    mutating func superEncoder() -> any Encoder { superEncoder(forKey: Key(stringValue: "super")!) }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        let child = EncodingNode()
        node.setChild(child, forKey: key.stringValue)
        return NodeEncoder(node: child, codingPath: codingPath + [key])
    }
}

struct UnkeyedNodeEncoder: UnkeyedEncodingContainer {
    let node: EncodingNode
    let codingPath: [any CodingKey]
    var count: Int { node.childCount }

    private func append(_ value: MeshValue) { _ = node.appendChild(EncodingNode(value)) }

    mutating func encodeNil() throws { append(.null) }
    mutating func encode(_ value: Bool) throws { append(.bool(value)) }
    mutating func encode(_ value: String) throws { append(.string(value)) }
    mutating func encode(_ value: Double) throws { append(.float64(value)) }
    mutating func encode(_ value: Float) throws { append(.float64(Double(value))) }
    mutating func encode(_ value: Int) throws { append(.int64(Int64(value))) }
    mutating func encode(_ value: Int8) throws { append(.int8(value)) }
    mutating func encode(_ value: Int16) throws { append(.int16(value)) }
    mutating func encode(_ value: Int32) throws { append(.int32(value)) }
    mutating func encode(_ value: Int64) throws { append(.int64(value)) }
    mutating func encode(_ value: UInt) throws { append(.uint64(UInt64(value))) }
    mutating func encode(_ value: UInt8) throws { append(.uint8(value)) }
    mutating func encode(_ value: UInt16) throws { append(.uint16(value)) }
    mutating func encode(_ value: UInt32) throws { append(.uint32(value)) }
    mutating func encode(_ value: UInt64) throws { append(.uint64(value)) }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let child = EncodingNode()
        try child.encode(value, codingPath: codingPath + [IndexKey(count)])
        _ = node.appendChild(child)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let child = EncodingNode()
        child.becomeMap()
        let index = node.appendChild(child)
        return KeyedEncodingContainer(KeyedNodeEncoder<NestedKey>(node: child, codingPath: codingPath + [IndexKey(index)]))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let child = EncodingNode()
        child.becomeArray()
        let index = node.appendChild(child)
        return UnkeyedNodeEncoder(node: child, codingPath: codingPath + [IndexKey(index)])
    }

    mutating func superEncoder() -> any Encoder {
        let child = EncodingNode()
        let index = node.appendChild(child)
        return NodeEncoder(node: child, codingPath: codingPath + [IndexKey(index)])
    }
}

struct SingleNodeEncoder: SingleValueEncodingContainer {
    let node: EncodingNode
    let codingPath: [any CodingKey]

    private func set(_ value: MeshValue) { node.storage = .value(value) }

    mutating func encodeNil() throws { set(.null) }
    mutating func encode(_ value: Bool) throws { set(.bool(value)) }
    mutating func encode(_ value: String) throws { set(.string(value)) }
    mutating func encode(_ value: Double) throws { set(.float64(value)) }
    mutating func encode(_ value: Float) throws { set(.float64(Double(value))) }
    mutating func encode(_ value: Int) throws { set(.int64(Int64(value))) }
    mutating func encode(_ value: Int8) throws { set(.int8(value)) }
    mutating func encode(_ value: Int16) throws { set(.int16(value)) }
    mutating func encode(_ value: Int32) throws { set(.int32(value)) }
    mutating func encode(_ value: Int64) throws { set(.int64(value)) }
    mutating func encode(_ value: UInt) throws { set(.uint64(UInt64(value))) }
    mutating func encode(_ value: UInt8) throws { set(.uint8(value)) }
    mutating func encode(_ value: UInt16) throws { set(.uint16(value)) }
    mutating func encode(_ value: UInt32) throws { set(.uint32(value)) }
    mutating func encode(_ value: UInt64) throws { set(.uint64(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws { try node.encode(value, codingPath: codingPath) }
}

/// A coding key for array positions.
struct IndexKey: CodingKey {
    let intValue: Int?
    var stringValue: String { "Index \(intValue ?? 0)" }
    init(_ index: Int) { intValue = index }
    init?(stringValue: String) { return nil }
    init?(intValue: Int) { self.intValue = intValue }
}
