/// The binary encoding of ``MeshData``: versioned, compact, canonical and lossless for every ``MeshValue``.
///
/// Layout (format version 1):
/// ```
/// message := 0x01 map-body
/// map-body := varint(count) { varint(key-length) key-utf8 value }*      keys strictly ascending by UTF-8 bytes
/// value    := tag payload
///   0 null | 1 false | 2 true
///   3 int8 (1 byte)  | 4 int16 | 5 int32 | 6 int64 (zigzag varint)
///   7 uint8 (1 byte) | 8 uint16 | 9 uint32 | 10 uint64 (varint)
///   11 float64 (8 bytes, little-endian IEEE 754 bits)
///   12 string / 13 bytes: varint(length) bytes
///   14 array: varint(count) value*      15 map: map-body
/// ```
/// Varints are unsigned LEB128 (at most 10 bytes). Because keys are sorted, equal maps encode to equal bytes,
/// which lets replay compare responses bytewise.
///
/// The decoder is total and bounded: it checks every length against the remaining input before allocating,
/// limits nesting to ``Limits/maxDepth`` (so recursion is bounded), validates UTF-8, and rejects trailing bytes,
/// duplicate keys and out-of-range integers with a ``MeshCodecError``.
public enum MeshCodec {
    /// The format version written as the first byte of every encoded message.
    public static let formatVersion: UInt8 = 1

    /// Bounds applied when encoding and decoding.
    public struct Limits: Sendable, Hashable {
        /// Maximum nesting of arrays and maps; the top-level map is depth 1. Default 64.
        public var maxDepth: Int
        /// Maximum size in bytes of an encoded message. Default 16 MiB (above the transport's 10 MB message cap).
        public var maxSize: Int

        /// Creates limits.
        public init(maxDepth: Int = 64, maxSize: Int = 16 << 20) {
            self.maxDepth = maxDepth
            self.maxSize = maxSize
        }

        /// The defaults: depth 64, 16 MiB.
        public static let `default` = Limits()
    }

    enum Tag: UInt8 {
        case null = 0, falseValue, trueValue
        case int8, int16, int32, int64
        case uint8, uint16, uint32, uint64
        case float64, string, bytes, array, map
    }

    // MARK: - Encoding

    /// Encodes `data` as a versioned message.
    /// - Throws: ``MeshCodecError`` with `depthLimitExceeded` or `tooLarge` when `data` exceeds `limits`, so
    ///   nothing is ever encoded that the decoder would refuse.
    public static func encode(_ data: MeshData, limits: Limits = .default) throws(MeshCodecError) -> [UInt8] {
        var writer = ByteWriter(capacity: 128)
        try encode(data, into: &writer.bytes, limits: limits)
        return writer.bytes
    }

    /// Appends the encoding of `data` to `buffer`.
    public static func encode(_ data: MeshData, into buffer: inout [UInt8], limits: Limits = .default) throws(MeshCodecError) {
        let start = buffer.count
        var writer = ByteWriter(taking: &buffer)
        defer { buffer = writer.bytes }
        writer.append(formatVersion)
        try writer.writeMapBody(data, depth: 1, maxDepth: limits.maxDepth)
        if writer.bytes.count - start > limits.maxSize {
            throw MeshCodecError(.tooLarge, offset: 0, detail: "\(writer.bytes.count - start) bytes > \(limits.maxSize)")
        }
    }

    // MARK: - Decoding

    /// Decodes a message produced by ``encode(_:limits:)``.
    /// - Throws: ``MeshCodecError`` for any input that is not exactly one well-formed message.
    public static func decode(_ bytes: [UInt8], limits: Limits = .default) throws(MeshCodecError) -> MeshData {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(MeshCodecError) in try decode(raw, limits: limits) } }
        return try result.get()
    }

    /// Decodes a message from raw memory (for example a slice of a datagram).
    public static func decode(_ buffer: UnsafeRawBufferPointer, limits: Limits = .default) throws(MeshCodecError) -> MeshData {
        var builder = ValueTreeBuilder()
        return try walk(buffer, limits: limits, into: &builder)
    }

    /// Checks the whole of `buffer` is one message within `limits` while `builder` builds it.
    static func walk<Builder: EncodingBuilder>(
        _ buffer: UnsafeRawBufferPointer, limits: Limits, into builder: inout Builder
    ) throws(MeshCodecError) -> Builder.Map {
        guard buffer.count <= limits.maxSize else {
            throw MeshCodecError(.tooLarge, offset: 0, detail: "\(buffer.count) bytes > \(limits.maxSize)")
        }
        var reader = ByteReader(buffer)
        let version = try reader.readByte()
        guard version == formatVersion else {
            throw MeshCodecError(.unsupportedVersion, offset: 0, detail: "version \(version), this build reads \(formatVersion)")
        }
        let map = try reader.readMapBody(depth: 1, maxDepth: limits.maxDepth, into: &builder)
        guard reader.isAtEnd else {
            throw MeshCodecError(.trailingBytes, offset: reader.offset, detail: "\(reader.remaining) bytes after the message")
        }
        return map
    }
}
