/// The message map of the Diarkis mesh API (`map[string]interface{}`): string keys to typed ``MeshValue``s.
///
/// `MeshData` is what handlers receive and what `send` carries. It is a value type; building one reads like
/// the Diarkis examples:
///
/// ```swift
/// var data: MeshData = ["myName": "Jon"]
/// data["mySchedule"] = .bytes(try schedule.pack())
/// let name = try data.getString("myName")      // throws, naming the key and the type found
/// let level = data.int64("level")              // optional form: nil when absent or of another type
/// ```
///
/// Integers stay exact: a `uint64` sent is the `uint64` received (Diarkis's JSON turns it into a float64).
/// Encode with ``MeshCodec``; render for audit with ``MeshJSON``.
public struct MeshData: Sendable, Hashable {
    @usableFromInline
    internal var storage: [String: MeshValue]

    /// An empty map.
    @inlinable
    public init() { storage = [:] }

    /// A map holding the given entries.
    @inlinable
    public init(_ entries: [String: MeshValue]) { storage = entries }

    /// The value stored under `key`, or `nil`. Assigning `nil` removes the key; assign ``MeshValue/null``
    /// to store an explicit null.
    @inlinable
    public subscript(key: String) -> MeshValue? {
        get { storage[key] }
        set { storage[key] = newValue }
    }

    /// The number of keys.
    @inlinable
    public var count: Int { storage.count }

    /// Whether the map has no keys.
    @inlinable
    public var isEmpty: Bool { storage.isEmpty }

    /// The keys, in no particular order. ``sortedKeys`` gives the canonical (encoding) order.
    @inlinable
    public var keys: Dictionary<String, MeshValue>.Keys { storage.keys }

    /// The entries as a Swift dictionary.
    @inlinable
    public var dictionary: [String: MeshValue] { storage }

    /// The keys in canonical order: ascending by UTF-8 bytes. The codec and the JSON renderer use this order,
    /// so equal maps always encode to equal bytes.
    public var sortedKeys: [String] {
        storage.keys.sorted(by: MeshData.canonicallyPrecedes)
    }

    /// Removes `key` and returns its value.
    @discardableResult
    @inlinable
    public mutating func removeValue(forKey key: String) -> MeshValue? {
        storage.removeValue(forKey: key)
    }

    /// The canonical key order: bytewise comparison of the UTF-8 encodings.
    @inlinable
    static func canonicallyPrecedes(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}

extension MeshData: ExpressibleByDictionaryLiteral {
    /// A map from a dictionary literal. A repeated key keeps the last value.
    public init(dictionaryLiteral elements: (String, MeshValue)...) {
        storage = Dictionary(elements, uniquingKeysWith: { _, last in last })
    }
}

extension MeshData: Sequence {
    /// Iterates the entries in no particular order.
    public func makeIterator() -> Dictionary<String, MeshValue>.Iterator { storage.makeIterator() }
}

extension MeshData: CustomStringConvertible {
    /// The map as compact JSON (see ``MeshJSON``), for logs and debugging.
    public var description: String { MeshJSON.string(from: self) }
}
