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
///
/// Entries are kept sorted by the UTF-8 bytes of their keys (the canonical order), so encoding needs no sort,
/// decoding needs no hashing, iteration order is deterministic, and lookups are binary searches. Keys are
/// compared as bytes: `"é"` (U+00E9) and `"e\u{301}"` are different keys, exactly as on the wire. Setting one
/// key at a time costs O(n) per insertion; to build a map of thousands of keys, use ``init(_:)`` with a
/// dictionary, which sorts once.
public struct MeshData: Sendable {
    /// Sorted by key bytes, keys unique.
    @usableFromInline
    internal var entries: [(key: String, value: MeshValue)]

    /// An empty map.
    @inlinable
    public init() { entries = [] }

    /// A map holding the entries of `dictionary`.
    public init(_ dictionary: [String: MeshValue]) {
        entries = dictionary.map { ($0.key, $0.value) }
        entries.sort { UTF8Order.less($0.key, $1.key) }
    }

    /// Takes entries already in canonical order with unique keys (the decoder checks this as it reads).
    init(canonicalEntries: [(key: String, value: MeshValue)]) {
        entries = canonicalEntries
    }

    /// Where `key` is, or where it would be inserted.
    @usableFromInline
    func search(_ key: String) -> (index: Int, found: Bool) {
        var low = 0
        var high = entries.count
        while low < high {
            let mid = (low &+ high) >> 1
            let candidate = entries[mid].key
            if UTF8Order.less(candidate, key) {
                low = mid + 1
            } else if UTF8Order.less(key, candidate) {
                high = mid
            } else {
                return (mid, true)
            }
        }
        return (low, false)
    }

    /// The value stored under `key`, or `nil`. Assigning `nil` removes the key; assign ``MeshValue/null``
    /// to store an explicit null.
    public subscript(key: String) -> MeshValue? {
        get {
            let (index, found) = search(key)
            // Not `found ? value : nil`: MeshValue is ExpressibleByNilLiteral, so that `nil` would be `.null`.
            guard found else { return Optional<MeshValue>.none }
            return entries[index].value
        }
        set {
            let (index, found) = search(key)
            switch (found, newValue) {
            case (true, .some(let value)): entries[index].value = value
            case (true, .none): entries.remove(at: index)
            case (false, .some(let value)): entries.insert((key, value), at: index)
            case (false, .none): break
            }
        }
    }

    /// The number of keys.
    @inlinable
    public var count: Int { entries.count }

    /// Whether the map has no keys.
    @inlinable
    public var isEmpty: Bool { entries.isEmpty }

    /// The keys in canonical order: ascending by UTF-8 bytes.
    public var keys: [String] { entries.map(\.key) }

    /// The keys in canonical order (same as ``keys``).
    public var sortedKeys: [String] { keys }

    /// The entries as a Swift dictionary. Keys that differ as bytes but are equal Swift strings (canonically
    /// equivalent Unicode) collapse to one entry there; iterate the map itself to see every entry.
    public var dictionary: [String: MeshValue] {
        Dictionary(entries.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// Removes `key` and returns its value.
    @discardableResult
    public mutating func removeValue(forKey key: String) -> MeshValue? {
        let (index, found) = search(key)
        guard found else { return Optional<MeshValue>.none }
        return entries.remove(at: index).value
    }
}

extension MeshData: Equatable {
    /// Equal when both hold the same keys (as bytes) with representationally equal values.
    public static func == (lhs: MeshData, rhs: MeshData) -> Bool {
        guard lhs.entries.count == rhs.entries.count else { return false }
        for (a, b) in zip(lhs.entries, rhs.entries) {
            guard a.key.utf8.elementsEqual(b.key.utf8), a.value == b.value else { return false }
        }
        return true
    }
}

extension MeshData: Hashable {
    /// Hashes keys as bytes and values representationally, consistent with ``==(_:_:)``.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(entries.count)
        for entry in entries {
            for byte in entry.key.utf8 { hasher.combine(byte) }
            hasher.combine(entry.value)
        }
    }
}

extension MeshData: ExpressibleByDictionaryLiteral {
    /// A map from a dictionary literal. A repeated key keeps the last value.
    public init(dictionaryLiteral elements: (String, MeshValue)...) {
        var sorted = elements.enumerated().map { (offset: $0.offset, key: $0.element.0, value: $0.element.1) }
        sorted.sort { UTF8Order.less($0.key, $1.key) || (!UTF8Order.less($1.key, $0.key) && $0.offset < $1.offset) }
        var result: [(key: String, value: MeshValue)] = []
        result.reserveCapacity(sorted.count)
        for element in sorted {
            if let last = result.last, last.key.utf8.elementsEqual(element.key.utf8) {
                result[result.count - 1].value = element.value
            } else {
                result.append((element.key, element.value))
            }
        }
        entries = result
    }
}

extension MeshData: Sequence {
    /// Iterates the entries in canonical key order.
    public func makeIterator() -> IndexingIterator<[(key: String, value: MeshValue)]> { entries.makeIterator() }
}

extension MeshData: CustomStringConvertible {
    /// The map as compact JSON (see ``MeshJSON``), for logs and debugging.
    public var description: String { MeshJSON.string(from: self) }
}
