import Foundation
import MeshFaultProxy
import NIOCore
import Testing
@_spi(Fuzzing) import MeshCore
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
            "body-handshake": body([.hello(version: 3, session: 2), .welcome(session: 3, answering: 2), .welcome(session: 4, answering: nil),
                                    .stale]),
            "fragments-structured": [0, 1, 1, 0, 2, 1, 4, 0, 1, 1, 1, 2, 1, 4, 0, 1, 1, 2, 2, 1, 4, 6, 3, 2, 9, 200, 255, 255],
        ]
    }

    /// The committed seeds of `Fuzz/transport-seeds`; a missing or empty folder fails the test.
    static func committedSeeds() throws -> [[UInt8]] {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Fuzz/transport-seeds").standardized
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        try #require(!names.isEmpty, "Fuzz/transport-seeds holds no seed")
        return try names.map { try [UInt8](Data(contentsOf: dir.appendingPathComponent($0))) }
    }

    /// Mutates `seeds` into `target` on a thread of its own (see ``onOwnThread(_:)``).
    static func run(_ target: @escaping @Sendable ([UInt8]) -> Void, seeds: [[UInt8]], salt: UInt64) async throws {
        try await onOwnThread {
            var mutator = FuzzMutator(seed: 0x6D65_7368 ^ salt)
            mutator.run(target, seeds: seeds, iterations: iterations)
        }
    }

    @Test func datagramsFromAnyoneAreNeverAcceptedOrAnswered() async throws {
        try await Self.run(TransportFuzzing.datagram, seeds: Array(Self.madeSeeds().values) + (try Self.committedSeeds()), salt: 1)
    }

    @Test func authenticatedBodiesKeepTheProtocolConsistent() async throws {
        try await Self.run(TransportFuzzing.authenticatedBody, seeds: Array(Self.madeSeeds().values) + (try Self.committedSeeds()), salt: 2)
    }

    @Test func fragmentSetsStayWithinTheReassemblyCaps() async throws {
        try await Self.run(TransportFuzzing.fragments, seeds: Array(Self.madeSeeds().values) + (try Self.committedSeeds()), salt: 3)
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

    /// The seeds made here are the committed ones (libFuzzer starts from the files): a change to a frame's format
    /// must come with new seed files, written by `MESH_WRITE_FUZZ_SEEDS=Fuzz/transport-seeds swift test --filter
    /// TransportFuzzTests`.
    @Test func theCommittedSeedsAreTheMadeOnes() throws {
        let dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Fuzz/transport-seeds").standardized
        if let target = ProcessInfo.processInfo.environment["MESH_WRITE_FUZZ_SEEDS"] {
            try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: true)
            for (name, bytes) in Self.madeSeeds() { try Data(bytes).write(to: URL(fileURLWithPath: target).appendingPathComponent(name)) }
        }
        for (name, bytes) in Self.madeSeeds() {
            let committed = try [UInt8](Data(contentsOf: dir.appendingPathComponent(name)))
            #expect(committed == bytes, "Fuzz/transport-seeds/\(name) is stale: write the seeds again (see above)")
        }
    }
}
