import NIOCore

/// What became of one datagram read from the socket.
enum IngestVerdict: Equatable {
    /// Authenticated, fresh and well formed: the state machine processed it.
    case accepted
    /// Larger than ``TransportConfiguration/maxDatagramSize``.
    case oversized
    /// Not a Mesh datagram, or its frames do not parse.
    case malformed
    /// Names a key this node does not have.
    case unknownKey
    /// Its authentication tag does not match.
    case badTag
    /// A packet number already seen (a replayed or duplicated datagram).
    case replayed
}

extension TransportStateMachine {
    /// The whole receive path of a datagram up to the protocol: size limit, authentication, replay check, frame
    /// parsing, then ``receive(header:frames:from:now:)``. Nothing that fails a check reaches the protocol, and
    /// nothing here answers an unauthenticated datagram. Shared by the NIO handler and the fuzz harness, so the
    /// fuzzer exercises exactly what the socket feeds.
    func ingest(_ datagram: ByteBuffer, sealer: DatagramSealer, from address: SocketAddress, now: NIODeadline) -> IngestVerdict {
        guard datagram.readableBytes <= configuration.maxDatagramSize else {
            counters.malformed += 1
            return .oversized
        }
        switch sealer.open(datagram) {
        case .failure(.malformed):
            counters.malformed += 1
            return .malformed
        case .failure(.unknownKey):
            counters.authFailures += 1
            return .unknownKey
        case .failure(.badTag):
            counters.authFailures += 1
            return .badTag
        case .success(let (header, body)):
            guard isFresh(header) else {
                counters.replays += 1
                return .replayed
            }
            var body = body
            guard let frames = Frame.readAll(from: &body) else {
                counters.malformed += 1
                return .malformed
            }
            receive(header: header, frames: frames, from: address, now: now)
            return .accepted
        }
    }
}
