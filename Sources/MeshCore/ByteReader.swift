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

    mutating func readString() throws(MeshCodecError) -> String {
        let count = try readLength(minimumBytesEach: 1)
        let start = offset
        let raw = readRaw(count)
        guard let string = UTF8Order.string(raw) else {
            throw MeshCodecError(.invalidUTF8, offset: start)
        }
        return string
    }

    mutating func readMapBody(depth: Int, maxDepth: Int) throws(MeshCodecError) -> MeshData {
        guard depth <= maxDepth else {
            throw MeshCodecError(.depthLimitExceeded, offset: offset, detail: "deeper than \(maxDepth)")
        }
        // Each entry takes at least 2 bytes: a key length and a value tag.
        let count = try readLength(minimumBytesEach: 2)
        var entries: [(key: String, value: MeshValue)] = []
        entries.reserveCapacity(count)
        var previousKeyStart = -1
        var previousKeyCount = 0
        for _ in 0..<count {
            let keyOffset = offset
            let key = try readString()
            let keyStart = offset - key.utf8.count
            if previousKeyStart >= 0 {
                let prev = UnsafeRawBufferPointer(rebasing: base[previousKeyStart..<(previousKeyStart + previousKeyCount)])
                let current = UnsafeRawBufferPointer(rebasing: base[keyStart..<offset])
                guard UTF8Order.less(prev, current) else {
                    throw MeshCodecError(.nonCanonicalKeys, offset: keyOffset, detail: "key \"\(key)\"")
                }
            }
            previousKeyStart = keyStart
            previousKeyCount = offset - keyStart
            entries.append((key, try readValue(depth: depth, maxDepth: maxDepth)))
        }
        return MeshData(canonicalEntries: entries)
    }

    mutating func readValue(depth: Int, maxDepth: Int) throws(MeshCodecError) -> MeshValue {
        let tagOffset = offset
        let tagByte = try readByte()
        guard let tag = MeshCodec.Tag(rawValue: tagByte) else {
            throw MeshCodecError(.unknownTag, offset: tagOffset, detail: "tag \(tagByte)")
        }
        switch tag {
        case .null: return .null
        case .falseValue: return .bool(false)
        case .trueValue: return .bool(true)
        case .int8: return .int8(Int8(bitPattern: try readByte()))
        case .uint8: return .uint8(try readByte())
        case .int16:
            let v = try readZigZag()
            guard let n = Int16(exactly: v) else { throw MeshCodecError(.integerOutOfRange, offset: tagOffset, detail: "int16 \(v)") }
            return .int16(n)
        case .int32:
            let v = try readZigZag()
            guard let n = Int32(exactly: v) else { throw MeshCodecError(.integerOutOfRange, offset: tagOffset, detail: "int32 \(v)") }
            return .int32(n)
        case .int64: return .int64(try readZigZag())
        case .uint16:
            let v = try readVarint()
            guard let n = UInt16(exactly: v) else { throw MeshCodecError(.integerOutOfRange, offset: tagOffset, detail: "uint16 \(v)") }
            return .uint16(n)
        case .uint32:
            let v = try readVarint()
            guard let n = UInt32(exactly: v) else { throw MeshCodecError(.integerOutOfRange, offset: tagOffset, detail: "uint32 \(v)") }
            return .uint32(n)
        case .uint64: return .uint64(try readVarint())
        case .float64:
            guard remaining >= 8 else { throw MeshCodecError(.truncated, offset: offset) }
            let raw = readRaw(8)
            let bits = raw.loadUnaligned(as: UInt64.self)
            return .float64(Double(bitPattern: UInt64(littleEndian: bits)))
        case .string:
            return .string(try readString())
        case .bytes:
            let count = try readLength(minimumBytesEach: 1)
            return .bytes([UInt8](readRaw(count)))
        case .array:
            guard depth < maxDepth else {
                throw MeshCodecError(.depthLimitExceeded, offset: tagOffset, detail: "deeper than \(maxDepth)")
            }
            let count = try readLength(minimumBytesEach: 1)
            var elements: [MeshValue] = []
            elements.reserveCapacity(count)
            for _ in 0..<count { elements.append(try readValue(depth: depth + 1, maxDepth: maxDepth)) }
            return .array(elements)
        case .map:
            return .map(try readMapBody(depth: depth + 1, maxDepth: maxDepth))
        }
    }
}
