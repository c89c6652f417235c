/// Appends the binary encoding to a growable byte array. Internal to ``MeshCodec``.
struct ByteWriter {
    var bytes: [UInt8]

    init(capacity: Int) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Takes over `buffer`'s storage (leaving it empty) so appends do not copy.
    init(taking buffer: inout [UInt8]) {
        bytes = buffer
        buffer = []
    }

    @inline(__always)
    mutating func append(_ byte: UInt8) { bytes.append(byte) }

    @inline(__always)
    mutating func writeVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        bytes.append(UInt8(truncatingIfNeeded: v))
    }

    @inline(__always)
    mutating func writeZigZag(_ value: Int64) {
        writeVarint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    @inline(__always)
    mutating func writeString(_ string: String) {
        var string = string
        string.withUTF8 { utf8 in
            writeVarint(UInt64(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    mutating func writeMapBody(_ map: MeshData, depth: Int, maxDepth: Int) throws(MeshCodecError) {
        guard depth <= maxDepth else {
            throw MeshCodecError(.depthLimitExceeded, offset: 0, detail: "deeper than \(maxDepth)")
        }
        writeVarint(UInt64(map.count))
        for (key, value) in map.entries {
            writeString(key)
            try writeValue(value, depth: depth, maxDepth: maxDepth)
        }
    }

    mutating func writeValue(_ value: MeshValue, depth: Int, maxDepth: Int) throws(MeshCodecError) {
        typealias Tag = MeshCodec.Tag
        switch value {
        case .null: append(Tag.null.rawValue)
        case .bool(let v): append(v ? Tag.trueValue.rawValue : Tag.falseValue.rawValue)
        case .int8(let v):
            append(Tag.int8.rawValue)
            append(UInt8(bitPattern: v))
        case .int16(let v):
            append(Tag.int16.rawValue)
            writeZigZag(Int64(v))
        case .int32(let v):
            append(Tag.int32.rawValue)
            writeZigZag(Int64(v))
        case .int64(let v):
            append(Tag.int64.rawValue)
            writeZigZag(v)
        case .uint8(let v):
            append(Tag.uint8.rawValue)
            append(v)
        case .uint16(let v):
            append(Tag.uint16.rawValue)
            writeVarint(UInt64(v))
        case .uint32(let v):
            append(Tag.uint32.rawValue)
            writeVarint(UInt64(v))
        case .uint64(let v):
            append(Tag.uint64.rawValue)
            writeVarint(v)
        case .float64(let v):
            append(Tag.float64.rawValue)
            withUnsafeBytes(of: v.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
        case .string(let v):
            append(Tag.string.rawValue)
            writeString(v)
        case .bytes(let v):
            append(Tag.bytes.rawValue)
            writeVarint(UInt64(v.count))
            bytes.append(contentsOf: v)
        case .array(let elements):
            guard depth < maxDepth else {
                throw MeshCodecError(.depthLimitExceeded, offset: 0, detail: "deeper than \(maxDepth)")
            }
            append(Tag.array.rawValue)
            writeVarint(UInt64(elements.count))
            for element in elements { try writeValue(element, depth: depth + 1, maxDepth: maxDepth) }
        case .map(let nested):
            append(Tag.map.rawValue)
            try writeMapBody(nested, depth: depth + 1, maxDepth: maxDepth)
        }
    }
}
