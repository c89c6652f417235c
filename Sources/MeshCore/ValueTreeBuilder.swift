/// Builds the decoded ``MeshData`` (``MeshCodec/decode(_:limits:)``).
struct ValueTreeBuilder: EncodingBuilder {
    func scalar(_ value: MeshValue) -> MeshValue { value }
    func string(_ utf8: UnsafeRawBufferPointer) -> MeshValue? { UTF8Order.string(utf8).map(MeshValue.string) }
    func bytes(_ raw: UnsafeRawBufferPointer) -> MeshValue { .bytes([UInt8](raw)) }

    func beginArray(count: Int) -> [MeshValue] {
        var elements: [MeshValue] = []
        elements.reserveCapacity(count)
        return elements
    }
    func willRead(element index: Int) {}
    func append(_ element: MeshValue, to elements: inout [MeshValue]) { elements.append(element) }
    func endArray(_ elements: [MeshValue]) -> MeshValue { .array(elements) }

    func beginMap(count: Int) -> [(key: String, value: MeshValue)] {
        var entries: [(key: String, value: MeshValue)] = []
        entries.reserveCapacity(count)
        return entries
    }
    func key(_ utf8: UnsafeRawBufferPointer, index: Int) -> String? { UTF8Order.string(utf8) }
    func append(_ key: String, _ value: MeshValue, to entries: inout [(key: String, value: MeshValue)]) {
        entries.append((key, value))
    }
    func endMap(_ entries: [(key: String, value: MeshValue)]) -> MeshData { MeshData(canonicalEntries: entries) }
    func map(_ map: MeshData) -> MeshValue { .map(map) }
}
