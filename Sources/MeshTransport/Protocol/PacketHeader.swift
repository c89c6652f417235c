import NIOCore

/// The fixed header of every datagram, authenticated with the body.
///
/// ```
/// 0   u8   magic 0xD1 (Mesh transport, format 1)
/// 1   u8   flags: bit 0 = body encrypted
/// 2   u8   key id (which keyring key sealed it)
/// 3   u8   reserved, 0
/// 4   16 B sender node id
/// 20  u32  sender boot epoch
/// 24  u32  destination epoch as the sender knows it (0 = unknown: only hello may carry it)
/// 28  u64  packet number (per session, from 1, never reused: retransmissions get new numbers)
/// 36  …    frames (ciphertext when encrypted)
/// end 16 B authentication tag (HMAC-SHA256/128, or the ChaCha20-Poly1305 tag when encrypted)
/// ```
struct PacketHeader: Equatable, Sendable {
    static let magic: UInt8 = 0xD1
    static let size = 36
    static let tagSize = 16

    var encrypted: Bool
    var keyID: UInt8
    var sender: NodeID
    var senderEpoch: UInt32
    var destinationEpoch: UInt32
    var packetNumber: UInt64

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(Self.magic)
        buffer.writeInteger(UInt8(encrypted ? 1 : 0))
        buffer.writeInteger(keyID)
        buffer.writeInteger(UInt8(0))
        sender.write(to: &buffer)
        buffer.writeInteger(senderEpoch)
        buffer.writeInteger(destinationEpoch)
        buffer.writeInteger(packetNumber)
    }

    /// Reads a header; `nil` if the bytes cannot be one (wrong magic, unknown flags, too short).
    static func read(from buffer: inout ByteBuffer) -> PacketHeader? {
        guard buffer.readableBytes >= size,
              buffer.readInteger(as: UInt8.self) == magic,
              let flags = buffer.readInteger(as: UInt8.self), flags & ~1 == 0,
              let keyID = buffer.readInteger(as: UInt8.self),
              buffer.readInteger(as: UInt8.self) == 0,
              let sender = NodeID.read(from: &buffer),
              let senderEpoch = buffer.readInteger(as: UInt32.self),
              let destinationEpoch = buffer.readInteger(as: UInt32.self),
              let packetNumber = buffer.readInteger(as: UInt64.self) else { return nil }
        return PacketHeader(encrypted: flags & 1 != 0, keyID: keyID, sender: sender, senderEpoch: senderEpoch,
                            destinationEpoch: destinationEpoch, packetNumber: packetNumber)
    }
}
