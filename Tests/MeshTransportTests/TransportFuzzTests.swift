import Foundation
import MeshFaultProxy
import NIOCore
import Testing
@_spi(Fuzzing) @testable import MeshTransport

/// The short fuzz run that always runs: each fuzz entry point (the same ones `Tools/fuzz.sh` drives with
/// libFuzzer) on the committed seeds in `Fuzz/transport-seeds`, the seeds made here, and seeded random mutations
/// of them. `MESH_FUZZ_ITERATIONS` sets the mutations per seed (default 200); `MESH_WRITE_FUZZ_SEEDS=DIR` writes
/// the made seeds as files for libFuzzer's corpus.
@Suite struct TransportFuzzTests {
    static let iterations = Int(ProcessInfo.processInfo.environment["MESH_FUZZ_ITERATIONS"] ?? "") ?? 200

    /// Well-formed inputs each target starts from (libFuzzer and the mutations below find the rest).
    static func madeSeeds() -> [String: [UInt8]] {
        func body(_ frames: [Frame]) -> [UInt8] {
            var buffer = ByteBuffer()
            for frame in frames { frame.write(to: &buffer) }
            return Array(buffer.readableBytesView)
        }
        let sealer = DatagramSealer(keyring: Keyring(TransportFuzzing.key), encrypt: false)
        let header = PacketHeader(encrypted: false, keyID: 0, sender: NodeID(high: 1, low: 1), senderEpoch: 1, destinationEpoch: 0,
                                  packetNumber: 1)
        let hello = sealer.seal(header: header, body: ByteBuffer(bytes: body([.hello(version: 2, session: 1), .ping])), allocator: .init())
        let data = Frame.data(DataFrame(reliable: true, lane: 1, seq: 2, fragment: nil, payload: ByteBuffer(string: "message")))
        let fragment = { (index: UInt32) in
            Frame.data(DataFrame(reliable: true, lane: 2, seq: 1, fragment: .init(index: index, count: 3, totalLength: 12),
                                 payload: ByteBuffer(string: "abcd")))
        }
        return [
            "datagram-hello": Array(hello.readableBytesView),
            "body-data-ack": body([data, .ack(AckFrame(ranges: [5...9, 1...2], delayMicros: 100)), .ping]),
            "body-control": body([.confirm(lane: 1, upTo: 1), .abandon(lane: 1, from: 3, to: 4),
                                  .reject(lane: 1, seq: 1, reason: "no"), .goodbye]),
            "body-fragments": body([fragment(0), fragment(2), fragment(1)]),
            "fragments-structured": [0, 1, 1, 0, 2, 1, 4, 0, 1, 1, 1, 2, 1, 4, 0, 1, 1, 2, 2, 1, 4, 6, 3, 2, 9, 200, 255, 255],
        ]
    }

    static func committedSeeds() -> [[UInt8]] {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Fuzz/transport-seeds").standardized
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir.path)) ?? []
        return names.sorted().compactMap { try? [UInt8](Data(contentsOf: dir.appendingPathComponent($0))) }
    }

    /// Random edits of `input`: bit flips, byte changes, truncation, insertion, duplication of a slice.
    static func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
        var bytes = input
        for _ in 0...(rng.next() % 4) {
            let position = bytes.isEmpty ? 0 : Int(rng.next() % UInt64(bytes.count))
            switch rng.next() % 6 {
            case 0 where !bytes.isEmpty: bytes[position] ^= UInt8(1 << (rng.next() % 8))
            case 1 where !bytes.isEmpty: bytes[position] = UInt8(truncatingIfNeeded: rng.next())
            case 2: bytes = Array(bytes.prefix(position))
            case 3: bytes.insert(contentsOf: (0..<(rng.next() % 8)).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: position)
            case 4 where !bytes.isEmpty:
                let end = min(bytes.count, position + Int(rng.next() % 16))
                bytes.insert(contentsOf: bytes[position..<end], at: position)
            default: bytes.append(UInt8(truncatingIfNeeded: rng.next()))
            }
        }
        return bytes
    }

    static func run(_ target: ([UInt8]) -> Void, seeds: [[UInt8]], salt: UInt64) {
        var rng = SplitMix64(seed: 0x6D65_7368 ^ salt)
        for seed in seeds {
            target(seed)
            for _ in 0..<iterations { target(mutate(seed, &rng)) }
        }
        for _ in 0..<iterations {
            target((0..<(rng.next() % 256)).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
        }
    }

    @Test func datagramsFromAnyoneAreNeverAcceptedOrAnswered() {
        Self.run(TransportFuzzing.datagram, seeds: Array(Self.madeSeeds().values) + Self.committedSeeds(), salt: 1)
    }

    @Test func authenticatedBodiesKeepTheProtocolConsistent() {
        Self.run(TransportFuzzing.authenticatedBody, seeds: Array(Self.madeSeeds().values) + Self.committedSeeds(), salt: 2)
    }

    @Test func fragmentSetsStayWithinTheReassemblyCaps() {
        Self.run(TransportFuzzing.fragments, seeds: Array(Self.madeSeeds().values) + Self.committedSeeds(), salt: 3)
    }

    /// A datagram sealed with the fuzz key is accepted (so the harness really reaches the protocol), and the
    /// same bytes with one bit flipped are not.
    @Test func theHarnessReachesTheProtocol() {
        let sealer = DatagramSealer(keyring: Keyring(TransportFuzzing.key), encrypt: false)
        let machine = TransportStateMachine(configuration: TransportFuzzing.configuration(TransportFuzzing.addressB, node: 2))
        let hello = Self.madeSeeds()["datagram-hello"]!
        #expect(machine.ingest(ByteBuffer(bytes: hello), sealer: sealer, from: TransportFuzzing.addressA, now: TransportFuzzing.start) == .accepted)
        var flipped = hello
        flipped[40] ^= 1
        #expect(machine.ingest(ByteBuffer(bytes: flipped), sealer: sealer, from: TransportFuzzing.addressA, now: TransportFuzzing.start) == .badTag)
    }

    @Test func writeSeedsWhenAsked() throws {
        guard let dir = ProcessInfo.processInfo.environment["MESH_WRITE_FUZZ_SEEDS"] else { return }
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        for (name, bytes) in Self.madeSeeds() {
            try Data(bytes).write(to: URL(fileURLWithPath: dir).appendingPathComponent(name))
        }
    }
}
