import Crypto
import Foundation
import NIOCore

/// Seals and opens datagrams: authenticates header and body under the keyring, optionally encrypting the body.
///
/// - Authentication only (default): a 16-byte tag = HMAC-SHA256 (truncated) over header and body, under a key
///   derived from the cluster key with HKDF (`info: "mesh.mac.v1"`), so the raw cluster key is never used
///   directly.
/// - Encryption: ChaCha20-Poly1305 with a key derived per (key id, sender node, sender epoch) and the packet
///   number as nonce; the header is the associated data. Nonces never repeat because packet numbers never
///   repeat within an epoch and the journal never reuses an epoch.
///
/// Confined to the event loop that owns the transport (it caches derived keys), hence not `Sendable`.
final class DatagramSealer {
    let keyring: Keyring
    let encrypt: Bool
    /// HMAC-SHA256 as two SHA-256 states that have already absorbed the padded key (RFC 2104): per datagram
    /// they are copied (swift-crypto's digests are copy-on-write) and fed raw pointers, so neither the key
    /// schedule nor the generic `DataProtocol` path runs per datagram.
    private var macTemplates: [UInt8: (inner: SHA256, outer: SHA256)] = [:]
    private var aeadKeys: [AEADKeyID: SymmetricKey] = [:]

    private struct AEADKeyID: Hashable {
        let keyID: UInt8
        let node: NodeID
        let epoch: UInt32
    }

    init(keyring: Keyring, encrypt: Bool) {
        self.keyring = keyring
        self.encrypt = encrypt
        for (id, key) in keyring.keys {
            let macKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: key.bytes),
                                                salt: Array("mesh.transport".utf8), info: Array("mesh.mac.v1".utf8),
                                                outputByteCount: 32)
            var block = [UInt8](repeating: 0, count: 64)
            macKey.withUnsafeBytes { raw in for i in 0..<raw.count { block[i] = raw[i] } }
            var inner = SHA256()
            var outer = SHA256()
            inner.update(data: block.map { $0 ^ 0x36 })
            outer.update(data: block.map { $0 ^ 0x5C })
            macTemplates[id] = (inner, outer)
        }
    }

    private func aeadKey(_ keyID: UInt8, _ node: NodeID, _ epoch: UInt32) -> SymmetricKey? {
        let id = AEADKeyID(keyID: keyID, node: node, epoch: epoch)
        if let key = aeadKeys[id] { return key }
        guard let cluster = keyring.keys[keyID] else { return nil }
        var info = Array("mesh.aead.v1".utf8)
        withUnsafeBytes(of: node.high.bigEndian) { info.append(contentsOf: $0) }
        withUnsafeBytes(of: node.low.bigEndian) { info.append(contentsOf: $0) }
        withUnsafeBytes(of: epoch.bigEndian) { info.append(contentsOf: $0) }
        let key = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: cluster.bytes), salt: Array("mesh.transport".utf8),
                                         info: info, outputByteCount: 32)
        if aeadKeys.count > 4096 { aeadKeys.removeAll() }
        aeadKeys[id] = key
        return key
    }

    private static func nonce(_ packetNumber: UInt64) -> ChaChaPoly.Nonce {
        var bytes = [UInt8](repeating: 0, count: 12)
        withUnsafeBytes(of: packetNumber.bigEndian) { raw in
            for i in 0..<8 { bytes[4 + i] = raw[i] }
        }
        return try! ChaChaPoly.Nonce(data: bytes)  // 12 bytes: cannot fail
    }

    /// The datagram for `header` and `body` (frames), sealed with the primary key. Authenticated only, a body with
    /// room for the header before its readable bytes and for the tag after them (as the state machine writes it)
    /// becomes the datagram itself: header and tag are written into that room, and the frames are not copied.
    func seal(header: PacketHeader, body: consuming ByteBuffer, allocator: ByteBufferAllocator) -> ByteBuffer {
        var header = header
        header.keyID = keyring.primaryID
        header.encrypted = encrypt
        if !encrypt, body.readerIndex >= PacketHeader.size, body.writableBytes >= PacketHeader.tagSize {
            var out = consume body
            let end = out.writerIndex
            out.moveReaderIndex(to: out.readerIndex - PacketHeader.size)
            out.moveWriterIndex(to: out.readerIndex)
            header.write(to: &out)
            out.moveWriterIndex(to: end)
            appendTag(to: &out, keyID: header.keyID)
            return out
        }
        var out = allocator.buffer(capacity: PacketHeader.size + body.readableBytes + PacketHeader.tagSize)
        header.write(to: &out)
        if encrypt, let key = aeadKey(header.keyID, header.sender, header.senderEpoch) {
            let headerBytes = out.readableBytesView
            let sealed = body.withUnsafeReadableBytes { plaintext in
                try! ChaChaPoly.seal(plaintext, using: key, nonce: Self.nonce(header.packetNumber),
                                     authenticating: Array(headerBytes))
            }
            out.writeBytes(sealed.ciphertext)
            out.writeBytes(sealed.tag)
            return out
        }
        var body = body
        out.writeBuffer(&body)
        appendTag(to: &out, keyID: header.keyID)
        return out
    }

    /// Appends the authentication tag of the readable bytes of `datagram` (header and frames): its MAC, truncated.
    private func appendTag(to datagram: inout ByteBuffer, keyID: UInt8) {
        let code = mac(datagram, keyID: keyID)
        _ = code.withUnsafeBytes { datagram.writeBytes(UnsafeRawBufferPointer(rebasing: $0.prefix(PacketHeader.tagSize))) }
    }

    /// HMAC-SHA256 of the readable bytes of `bytes` (RFC 2104), from the precomputed states.
    private func mac(_ bytes: ByteBuffer, keyID: UInt8) -> SHA256.Digest {
        var (inner, outer) = macTemplates[keyID]!
        bytes.withUnsafeReadableBytes { inner.update(bufferPointer: $0) }
        inner.finalize().withUnsafeBytes { outer.update(bufferPointer: $0) }
        return outer.finalize()
    }

    /// Why a datagram was dropped before anything else looked at it.
    enum Rejection: Error, Equatable {
        case malformed
        case unknownKey
        case badTag
    }

    /// Checks a datagram's tag and returns its header and plaintext body.
    func open(_ datagram: ByteBuffer) -> Result<(PacketHeader, ByteBuffer), Rejection> {
        guard datagram.readableBytes >= PacketHeader.size + PacketHeader.tagSize else { return .failure(.malformed) }
        var reader = datagram
        guard let header = PacketHeader.read(from: &reader) else { return .failure(.malformed) }
        guard keyring.keys[header.keyID] != nil else { return .failure(.unknownKey) }
        let bodyLength = reader.readableBytes - PacketHeader.tagSize
        let headerAndBody = datagram.getSlice(at: datagram.readerIndex, length: PacketHeader.size + bodyLength)!
        if header.encrypted {
            let tag = datagram.getBytes(at: datagram.readerIndex + PacketHeader.size + bodyLength, length: PacketHeader.tagSize)!
            guard let key = aeadKey(header.keyID, header.sender, header.senderEpoch) else { return .failure(.unknownKey) }
            let headerBytes = datagram.getBytes(at: datagram.readerIndex, length: PacketHeader.size)!
            let ciphertext = datagram.getBytes(at: datagram.readerIndex + PacketHeader.size, length: bodyLength)!
            guard let box = try? ChaChaPoly.SealedBox(nonce: Self.nonce(header.packetNumber), ciphertext: ciphertext, tag: tag),
                  let plaintext = try? ChaChaPoly.open(box, using: key, authenticating: headerBytes) else {
                return .failure(.badTag)
            }
            var body = ByteBufferAllocator().buffer(capacity: plaintext.count)
            body.writeBytes(plaintext)
            return .success((header, body))
        }
        let expected = mac(headerAndBody, keyID: header.keyID)
        var difference: UInt8 = 0
        expected.withUnsafeBytes { code in
            datagram.withUnsafeReadableBytes { bytes in
                let tag = PacketHeader.size + bodyLength
                for i in 0..<PacketHeader.tagSize { difference |= code[i] ^ bytes[tag + i] }
            }
        }
        guard difference == 0 else { return .failure(.badTag) }
        return .success((header, datagram.getSlice(at: datagram.readerIndex + PacketHeader.size, length: bodyLength)!))
    }
}
