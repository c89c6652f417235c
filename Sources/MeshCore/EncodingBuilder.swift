/// What ``ByteReader``'s walk over an encoded message builds. The reader checks every rule of the format; a
/// builder only builds: ``ValueTreeBuilder`` the ``MeshData`` that ``MeshCodec/decode(_:limits:)`` returns,
/// ``JSONTextBuilder`` the JSON text of ``MeshJSON/string(encoded:limits:)``, written straight from the bytes.
/// One walk for both keeps one definition of what a valid message is. Internal to MeshCore.
protocol EncodingBuilder {
    associatedtype Value
    associatedtype Key
    associatedtype Map
    associatedtype Elements
    associatedtype Entries

    /// null, a boolean, an integer or a float.
    mutating func scalar(_ value: MeshValue) -> Value
    /// A string's bytes; `nil` if they are not UTF-8.
    mutating func string(_ utf8: UnsafeRawBufferPointer) -> Value?
    /// A bytes value.
    mutating func bytes(_ raw: UnsafeRawBufferPointer) -> Value

    /// An array of `count` elements begins.
    mutating func beginArray(count: Int) -> Elements
    /// Element `index` is about to be read.
    mutating func willRead(element index: Int)
    mutating func append(_ element: Value, to elements: inout Elements)
    mutating func endArray(_ elements: Elements) -> Value

    /// A map of `count` entries begins.
    mutating func beginMap(count: Int) -> Entries
    /// The key of entry `index` (its value is read next); `nil` if its bytes are not UTF-8.
    mutating func key(_ utf8: UnsafeRawBufferPointer, index: Int) -> Key?
    mutating func append(_ key: Key, _ value: Value, to entries: inout Entries)
    mutating func endMap(_ entries: Entries) -> Map
    /// A nested map as a value.
    mutating func map(_ map: Map) -> Value
}
