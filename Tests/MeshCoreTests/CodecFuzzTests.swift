import Foundation
import Testing
@_spi(Fuzzing) import MeshCore

/// The codec's short fuzz run, always part of `swift test`: the libFuzzer entry point (`CodecFuzzing.codec`) on
/// every committed seed in `Fuzz/codec-seeds` and `MESH_FUZZ_ITERATIONS` (default 200) seeded mutations of each.
@Suite struct CodecFuzzTests {
    static let iterations = Int(ProcessInfo.processInfo.environment["MESH_FUZZ_ITERATIONS"] ?? "") ?? 200

    @Test func theCodecEntryPointHoldsOnEveryCommittedSeedAndItsMutations() throws {
        let seeds = try committedFuzzSeeds("codec-seeds")
        var mutator = FuzzMutator(seed: 0x636F_6465)
        mutator.run(CodecFuzzing.codec, seeds: seeds, iterations: Self.iterations)
        // The seeds are real inputs, not noise: each decodes (or unpacks as a capsule).
        for seed in seeds {
            #expect((try? MeshCodec.decode(seed)) != nil || (try? DataCapsule.unpack(seed)) != nil, "\(seed.prefix(16))")
        }
    }
}

/// The committed seeds of a `Fuzz/` folder; a missing or empty folder is an error, not an empty run.
func committedFuzzSeeds(_ folder: String, file: StaticString = #filePath) throws -> [[UInt8]] {
    let dir = URL(fileURLWithPath: "\(file)").deletingLastPathComponent().appendingPathComponent("../../Fuzz/\(folder)").standardized
    let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
    try #require(!names.isEmpty, "Fuzz/\(folder) holds no seed")
    return try names.map { try [UInt8](Data(contentsOf: dir.appendingPathComponent($0))) }
}
