import MeshJournal
import NIOCore

/// The node-level header inside each transport message: what kind of message it is and its origin sequence
/// (with the transport's sender node id, the globally unique message id), plus the optional correlation id
/// (request/response) and replay origin.
///
/// ```
/// u8 version (1) | u8 kind | varint originSeq | u8 flags (1: correlation, 2: replayOf, 4: error response, 8: relay)
/// [varint length + correlation utf8] [varint length + replayOf utf8] [varint length + relay utf8]
/// | MeshCodec payload (rest)
/// ```
struct Envelope: Equatable, Sendable {
    static let version: UInt8 = 1

    var kind: MessageKind
    var originSeq: UInt64
    var correlationID: String?
    var replayOf: String?
    /// A response reporting that the request's handler failed; the payload is the error text (UTF-8).
    var isError = false
    /// SendMany: the branch the receiver forwards this message to, `"limit;addr,addr"`.
    var relay: String? = nil
    var payload: [UInt8]

    /// Longest relay branch text accepted (about 2,900 IPv4 addresses).
    static let maxRelayBytes = 65536

    func encode() -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: payload.count + 24 + (correlationID?.utf8.count ?? 0) + (relay?.utf8.count ?? 0))
        buffer.writeInteger(Self.version)
        buffer.writeInteger(UInt8(kind.rawValue))
        Self.writeVarint(originSeq, to: &buffer)
        buffer.writeInteger(UInt8((correlationID != nil ? 1 : 0) | (replayOf != nil ? 2 : 0) | (isError ? 4 : 0) | (relay != nil ? 8 : 0)))
        // Each written in turn, not through an array of the three (two allocations per message).
        Self.writeText(correlationID, to: &buffer)
        Self.writeText(replayOf, to: &buffer)
        Self.writeText(relay, to: &buffer)
        buffer.writeBytes(payload)
        return buffer
    }

    /// Decodes an envelope; `nil` for anything malformed (the message is then rejected, not journaled).
    static func decode(_ buffer: ByteBuffer) -> Envelope? {
        var b = buffer
        guard b.readInteger(as: UInt8.self) == version, let kindByte = b.readInteger(as: UInt8.self),
              let kind = MessageKind(rawValue: Int(kindByte)), let seq = readVarint(&b), seq > 0,
              let flags = b.readInteger(as: UInt8.self), flags & ~15 == 0 else { return nil }
        guard case .some(let correlationID) = readText(&b, present: flags & 1 != 0, maxLength: 256),
              case .some(let replayOf) = readText(&b, present: flags & 2 != 0, maxLength: 256),
              case .some(let relay) = readText(&b, present: flags & 8 != 0, maxLength: maxRelayBytes) else { return nil }
        return Envelope(kind: kind, originSeq: seq, correlationID: correlationID, replayOf: replayOf, isError: flags & 4 != 0,
                        relay: relay, payload: b.readBytes(length: b.readableBytes) ?? [])
    }

    /// An optional text field: its varint length and UTF-8 bytes, if present.
    private static func writeText(_ text: String?, to buffer: inout ByteBuffer) {
        guard let text else { return }
        writeVarint(UInt64(text.utf8.count), to: &buffer)
        buffer.writeString(text)
    }

    /// Reads an optional text field: `.some(nil)` when absent, `.some(text)` when present and well-formed, `nil`
    /// when present but malformed or longer than `maxLength` bytes.
    private static func readText(_ buffer: inout ByteBuffer, present: Bool, maxLength: Int) -> String?? {
        guard present else { return .some(nil) }
        guard let length = readVarint(&buffer), length <= UInt64(maxLength),
              let text = buffer.readString(length: Int(length)) else { return nil }
        return .some(text)
    }

    private static func writeVarint(_ value: UInt64, to buffer: inout ByteBuffer) {
        var v = value
        while v >= 0x80 {
            buffer.writeInteger(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        buffer.writeInteger(UInt8(v))
    }

    private static func readVarint(_ buffer: inout ByteBuffer) -> UInt64? {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while let byte = buffer.readInteger(as: UInt8.self) {
            guard shift < 64 else { return nil }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
        }
        return nil
    }
}
