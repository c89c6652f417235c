/// Writes the JSON text of an encoded message as the walk reads it (``MeshJSON/string(encoded:limits:)``): no
/// value tree, no `String` or `[UInt8]` per string and bytes value. The text is the same as
/// ``MeshJSON/string(from:)-(MeshData)`` of the decoded message; on invalid input the walk throws and the partial
/// text is dropped.
struct JSONTextBuilder: EncodingBuilder {
    var out: [UInt8] = []

    mutating func scalar(_ value: MeshValue) { MeshJSON.writeValue(value, into: &out) }
    mutating func string(_ utf8: UnsafeRawBufferPointer) -> Void? {
        guard UTF8Order.isValid(utf8) else { return nil }
        MeshJSON.writeString(utf8, into: &out)
        return ()
    }
    mutating func bytes(_ raw: UnsafeRawBufferPointer) {
        out.append(UInt8(ascii: "\""))
        Base64.encode(raw.assumingMemoryBound(to: UInt8.self), into: &out)
        out.append(UInt8(ascii: "\""))
    }

    mutating func beginArray(count: Int) { out.append(UInt8(ascii: "[")) }
    mutating func willRead(element index: Int) { separate(index) }
    func append(_ element: Void, to elements: inout Void) {}
    mutating func endArray(_ elements: Void) { out.append(UInt8(ascii: "]")) }

    mutating func beginMap(count: Int) { out.append(UInt8(ascii: "{")) }
    mutating func key(_ utf8: UnsafeRawBufferPointer, index: Int) -> Void? {
        separate(index)
        guard string(utf8) != nil else { return nil }
        out.append(UInt8(ascii: ":"))
        return ()
    }
    func append(_ key: Void, _ value: Void, to entries: inout Void) {}
    mutating func endMap(_ entries: Void) { out.append(UInt8(ascii: "}")) }
    func map(_ map: Void) {}

    /// The comma before every element or entry but the first.
    private mutating func separate(_ index: Int) { if index > 0 { out.append(UInt8(ascii: ",")) } }
}
