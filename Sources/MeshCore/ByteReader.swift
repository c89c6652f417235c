/// Reads the binary encoding from raw memory, checking every bound. Internal to ``MeshCodec``.
struct ByteReader {
    let base: UnsafeRawBufferPointer
    private(set) var offset: Int = 0

    init(_ base: UnsafeRawBufferPointer) { self.base = base }

    var remaining: Int { base.count - offset }
    var isAtEnd: Bool { offset == base.count }

    @inline(__always)
    mutating func readByte() throws(MeshCodecError) -> UInt8 {
        guard offset < base.count else { throw MeshCodecError(.truncated, offset: offset) }
        let b = base[offset]
        offset += 1
        return b
    }

    @inline(__always)
    mutating func readVarint() throws(MeshCodecError) -> UInt64 {
        let start = offset
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard offset < base.count else { throw MeshCodecError(.truncated, offset: offset) }
            let b = base[offset]
            offset += 1
            if shift == 63 && b > 1 { throw MeshCodecError(.malformedVarint, offset: start) }
            result |= UInt64(b & 0x7f) << shift
            if b < 0x80 { return result }
            shift += 7
            if shift > 63 { throw MeshCodecError(.malformedVarint, offset: start) }
        }
    }

    @inline(__always)
    mutating func readZigZag() throws(MeshCodecError) -> Int64 {
        let raw = try readVarint()
        return Int64(bitPattern: (raw >> 1) ^ (0 &- (raw & 1)))
    }

    /// Reads a varint length or count and checks that at least `minimumBytesEach` bytes per unit remain.
    @inline(__always)
    mutating func readLength(minimumBytesEach: Int) throws(MeshCodecError) -> Int {
        let start = offset
        let raw = try readVarint()
        guard raw <= UInt64(remaining / max(minimumBytesEach, 1)) else {
            throw MeshCodecError(.lengthOutOfRange, offset: start, detail: "\(raw) exceeds the \(remaining) bytes left")
        }
        return Int(raw)
    }

    @inline(__always)
    mutating func readRaw(_ count: Int) -> UnsafeRawBufferPointer {
        let slice = UnsafeRawBufferPointer(rebasing: base[offset..<(offset + count)])
        offset += count
        return slice
    }

    /// Reads a length-prefixed string's bytes (the builder checks they are UTF-8).
    @inline(__always)
    mutating func readStringBytes() throws(MeshCodecError) -> UnsafeRawBufferPointer {
        let count = try readLength(minimumBytesEach: 1)
        return readRaw(count)
    }

    /// Walks one map body, checking every rule of the format (bounds, depth, UTF-8, strictly ascending keys), and
    /// builds it with `builder`: a value tree when decoding, JSON text when rendering straight from the bytes.
    mutating func readMapBody<Builder: EncodingBuilder>(
        depth: Int, maxDepth: Int, into builder: inout Builder
    ) throws(MeshCodecError) -> Builder.Map {
        guard depth <= maxDepth else {
            throw MeshCodecError(.depthLimitExceeded, offset: offset, detail: "deeper than \(maxDepth)")
        }
        // Each entry takes at least 2 bytes: a key length and a value tag.
        let count = try readLength(minimumBytesEach: 2)
        var entries = builder.beginMap(count: count)
        var previousKey: UnsafeRawBufferPointer?
        for index in 0..<count {
            let keyOffset = offset
            let raw = try readStringBytes()
            guard let key = builder.key(raw, index: index) else { throw MeshCodecError(.invalidUTF8, offset: offset - raw.count) }
            if let previousKey, !UTF8Order.less(previousKey, raw) {
                throw MeshCodecError(.nonCanonicalKeys, offset: keyOffset, detail: "key \"\(String(decoding: raw, as: UTF8.self))\"")
            }
            previousKey = raw
            let value = try readValue(depth: depth, maxDepth: maxDepth, into: &builder)
            builder.append(key, value, to: &entries)
        }
        return builder.endMap(entries)
    }

    /// Walks one tagged value (see ``readMapBody(depth:maxDepth:into:)``).
    mutating func readValue<Builder: EncodingBuilder>(
        depth: Int, maxDepth: Int, into builder: inout Builder
    ) throws(MeshCodecError) -> Builder.Value {
        let tagOffset = offset
        let tagByte = try readByte()
        guard let tag = MeshCodec.Tag(rawValue: tagByte) else {
            throw MeshCodecError(.unknownTag, offset: tagOffset, detail: "tag \(tagByte)")
        }
        switch tag {
        case .null: return builder.scalar(.null)
        case .falseValue: return builder.scalar(.bool(false))
        case .trueValue: return builder.scalar(.bool(true))
        case .int8: return builder.scalar(.int8(Int8(bitPattern: try readByte())))
        case .uint8: return builder.scalar(.uint8(try readByte()))
        case .int16:
            let v = try readZigZag()
            guard let n = Int16(exactly: v) else { throw MeshCodecError(.integerOutOfRange, offset: tagOffset, detail: "int16 \(v)") }
            return builder.scalar(.int16(n))
        case .int32:
            let v = try readZigZag()
            guard let n = Int32(exactly: v) else { throw MeshCodecError(.integerOutOfRange, offset: tagOffset, detail: "int32 \(v)") }
            return builder.scalar(.int32(n))
        case .int64: return builder.scalar(.int64(try readZigZag()))
        case .uint16:
            let v = try readVarint()
            guard let n = UInt16(exactly: v) else { throw MeshCodecError(.integerOutOfRange, offset: tagOffset, detail: "uint16 \(v)") }
            return builder.scalar(.uint16(n))
        case .uint32:
            let v = try readVarint()
            guard let n = UInt32(exactly: v) else { throw MeshCodecError(.integerOutOfRange, offset: tagOffset, detail: "uint32 \(v)") }
            return builder.scalar(.uint32(n))
        case .uint64: return builder.scalar(.uint64(try readVarint()))
        case .float64:
            guard remaining >= 8 else { throw MeshCodecError(.truncated, offset: offset) }
            let raw = readRaw(8)
            let bits = raw.loadUnaligned(as: UInt64.self)
            return builder.scalar(.float64(Double(bitPattern: UInt64(littleEndian: bits))))
        case .string:
            let raw = try readStringBytes()
            guard let string = builder.string(raw) else { throw MeshCodecError(.invalidUTF8, offset: offset - raw.count) }
            return string
        case .bytes:
            let count = try readLength(minimumBytesEach: 1)
            return builder.bytes(readRaw(count))
        case .array:
            guard depth < maxDepth else {
                throw MeshCodecError(.depthLimitExceeded, offset: tagOffset, detail: "deeper than \(maxDepth)")
            }
            let count = try readLength(minimumBytesEach: 1)
            var elements = builder.beginArray(count: count)
            for index in 0..<count {
                builder.willRead(element: index)
                let element = try readValue(depth: depth + 1, maxDepth: maxDepth, into: &builder)
                builder.append(element, to: &elements)
            }
            return builder.endArray(elements)
        case .map:
            return builder.map(try readMapBody(depth: depth + 1, maxDepth: maxDepth, into: &builder))
        }
    }
}
