import NIOCore

/// Entry points for fuzzing the transport's receive path with arbitrary bytes, outside the package (libFuzzer
/// targets under `Fuzz/`, run by `Tools/fuzz.sh`) and inside it (the short fuzz run of `swift test`). Each
/// checks its properties with `precondition`, so a violation is a crash the fuzzer reports.
///
/// Everything runs on a manual clock with no sockets: `ingest` is the same code the NIO handler runs per datagram.
@_spi(Fuzzing)
public enum TransportFuzzing {
    /// A fixed key: fuzz inputs are reproducible.
    static let key = try! ClusterKey(bytes: (0..<32).map { UInt8($0) })
    static let addressA = try! SocketAddress(ipAddress: "10.0.0.1", port: 1000)
    static let addressB = try! SocketAddress(ipAddress: "10.0.0.2", port: 2000)

    /// Bytes as they arrive at the socket, from anyone (before authentication): accepted only if they carry the
    /// tag the cluster key gives them, never answered otherwise, and the header and frame parsers are total.
    /// Frames that parse re-encode to bytes that parse the same.
    public static func datagram(_ bytes: [UInt8]) {
        let machine = TransportStateMachine(configuration: configuration(addressB, node: 2))
        let sealer = DatagramSealer(keyring: Keyring(key), encrypt: false)
        let datagram = ByteBuffer(bytes: bytes)
        let verdict = machine.ingest(datagram, sealer: sealer, from: addressA, now: start)
        if verdict == .accepted {
            guard case .success(let (header, body)) = sealer.open(datagram) else { preconditionFailure("accepted, yet it does not open") }
            let resealed = sealer.seal(header: header, body: body, allocator: ByteBufferAllocator())
            precondition(resealed == datagram, "a datagram without the key's tag was accepted")
        } else {
            precondition(machine.takeActions().isEmpty, "a rejected datagram was answered")
        }
        var buffer = ByteBuffer(bytes: bytes)
        _ = PacketHeader.read(from: &buffer)
        checkFrames(buffer)
        checkFrames(ByteBuffer(bytes: bytes))
    }

    /// Bytes as the frames of an authentic datagram from a peer with an open session (after authentication):
    /// the protocol must survive anything an insider or a bug could send, and keep its reassembly accounting.
    public static func authenticatedBody(_ bytes: [UInt8]) {
        var link = Link()
        link.inject(ByteBuffer(bytes: bytes))
        link.settle()
        link.checkInvariants()
    }

    /// Bytes read as a series of fragments (lane, sequence, index, count, total length, payload size) from a
    /// peer with an open session: partial, overlapping, contradictory and oversized fragment sets. Reassembly
    /// must stay within its memory caps, and its accounting must add up after every datagram.
    public static func fragments(_ bytes: [UInt8]) {
        var link = Link(maxReassemblyPerPeer: 64 * 1024, maxReassembly: 96 * 1024)
        var input = bytes[...]
        func next() -> UInt8? { input.popFirst() }
        while let flags = next(), let lane = next(), let seq = next(), let index = next(), let count = next(),
              let total = next(), let size = next() {
            let fragmentCount = UInt32(count % 8) + 1
            let frame = Frame.data(DataFrame(
                reliable: flags & 1 == 0, lane: UInt16(lane % 4), seq: UInt64(seq % 8) + 1,
                fragment: .init(index: UInt32(index) % fragmentCount, count: fragmentCount, totalLength: UInt32(total) * 512),
                payload: ByteBuffer(repeating: flags, count: Int(size) * 4)))
            var body = ByteBuffer()
            frame.write(to: &body)
            link.inject(body)
            link.checkInvariants()
            if flags & 4 != 0 { link.advance(.seconds(10)) }
        }
        link.settle()
        link.checkInvariants()
    }

    // MARK: - Helpers

    static let start = NIODeadline.uptimeNanoseconds(1_000_000_000_000)

    static func configuration(_ address: SocketAddress, node: UInt64) -> TransportConfiguration {
        TransportConfiguration(bindAddress: address, nodeID: NodeID(high: node, low: node), epoch: 1, keyring: Keyring(key))
    }

    /// Whatever parses as frames writes back to bytes that parse as the same frames.
    static func checkFrames(_ buffer: ByteBuffer) {
        var reader = buffer
        guard let frames = Frame.readAll(from: &reader) else { return }
        var written = ByteBuffer()
        for frame in frames { frame.write(to: &written) }
        var again = written
        precondition(Frame.readAll(from: &again) == frames, "frames changed when written and read back")
    }

    /// Two state machines joined in memory, A → B with an open session; datagrams go through `ingest`.
    struct Link {
        let a: TransportStateMachine
        let b: TransportStateMachine
        let sealer = DatagramSealer(keyring: Keyring(key), encrypt: false)
        var now = start
        var packetNumber: UInt64 = 1_000_000

        init(maxReassemblyPerPeer: Int? = nil, maxReassembly: Int? = nil) {
            var configB = configuration(addressB, node: 2)
            if let maxReassemblyPerPeer { configB.maxReassemblyBytesPerPeer = maxReassemblyPerPeer }
            if let maxReassembly { configB.maxReassemblyBytes = maxReassembly }
            a = TransportStateMachine(configuration: configuration(addressA, node: 1))
            b = TransportStateMachine(configuration: configB)
            // Open the session the way a first message does.
            _ = a.send(ByteBuffer(string: "hello"), lane: 1, reliability: .reliable, to: addressB, now: now)
            settle()
            precondition(b.sessions[addressA]?.phase == .established, "the fuzz link did not open its session")
        }

        /// A datagram from A's session to B, sealed with the cluster key, carrying `body` as its frames.
        mutating func inject(_ body: ByteBuffer) {
            packetNumber += 1
            let header = PacketHeader(encrypted: false, keyID: 0, sender: a.configuration.nodeID, senderEpoch: a.configuration.epoch,
                                      destinationEpoch: b.configuration.epoch, packetNumber: packetNumber)
            let datagram = sealer.seal(header: header, body: body, allocator: ByteBufferAllocator())
            _ = b.ingest(datagram, sealer: sealer, from: addressA, now: now)
            route()
        }

        mutating func advance(_ amount: TimeAmount) {
            now = now + amount
            a.tick(now: now)
            b.tick(now: now)
            route()
        }

        /// Lets both machines exchange what they owe each other (bounded), confirming deliveries as a node would.
        mutating func settle() {
            for _ in 0..<64 {
                a.flush(now: now)
                b.flush(now: now)
                if !route() { return }
            }
        }

        @discardableResult
        mutating func route() -> Bool {
            var moved = false
            for (machine, from) in [(a, addressA), (b, addressB)] {
                for action in machine.takeActions() {
                    switch action {
                    case .transmit(let address, let header, let body):
                        let target = address == addressB ? b : a
                        _ = target.ingest(sealer.seal(header: header, body: body, allocator: ByteBufferAllocator()), sealer: sealer,
                                          from: from, now: now)
                        moved = true
                    case .deliver(let message):
                        if message.token.needsConfirmation { machine.confirm(message.token) }
                        moved = true
                    case .outcome, .event:
                        break
                    }
                }
            }
            return moved
        }

        func checkInvariants() {
            for machine in [a, b] {
                let perSession = machine.sessions.values.reduce(0) { $0 + $1.reassemblyBytes }
                precondition(machine.reassemblyByteCount == perSession, "reassembly accounting: total \(machine.reassemblyByteCount), sessions \(perSession)")
                precondition(machine.reassemblyByteCount >= 0, "negative reassembly bytes")
                precondition(machine.reassemblyByteCount <= machine.configuration.maxReassemblyBytes, "reassembly over its global cap")
                for session in machine.sessions.values {
                    precondition(session.reassemblyBytes <= machine.configuration.maxReassemblyBytesPerPeer, "reassembly over its per-peer cap")
                }
            }
        }
    }
}
