/// The codec's fuzz entry point, shared by the libFuzzer target (`Fuzz/`, `Tools/fuzz.sh codec`) and the short
/// run in `swift test`, so both check exactly the same properties. Not API: SPI for fuzzing.
@_spi(Fuzzing)
public enum CodecFuzzing {
    /// Checks, on any bytes: decoding never traps; whatever decodes re-encodes canonically (the same bytes
    /// decode to the same value, and encode again to the same bytes) and renders as JSON; `DataCapsule.unpack`
    /// never traps; rendering JSON straight from the bytes refuses what decoding refuses, with the same error, and
    /// otherwise writes the decoded value's JSON. A violated property stops the process (`preconditionFailure`), as
    /// a fuzzer needs.
    public static func codec(_ bytes: [UInt8]) {
        let decoded = Result { () throws(MeshCodecError) in try MeshCodec.decode(bytes) }
        let rendered = Result { () throws(MeshCodecError) in try MeshJSON.string(encoded: bytes) }
        switch (decoded, rendered) {
        case (.success(let data), .success(let json)):
            guard json == MeshJSON.string(from: data) else { preconditionFailure("JSON from the bytes differs from the decoded value's") }
        case (.failure(let a), .failure(let b)):
            guard a == b else { preconditionFailure("JSON from the bytes failed with \(b), decoding with \(a)") }
        default:
            preconditionFailure("decoding and JSON from the bytes disagree on whether the input is valid")
        }
        if let data = try? decoded.get() {
            guard let encoded = try? MeshCodec.encode(data) else { preconditionFailure("a decoded value did not encode") }
            guard let again = try? MeshCodec.decode(encoded), again == data else { preconditionFailure("round trip changed the value") }
            guard (try? MeshCodec.encode(again)) == encoded else { preconditionFailure("encoding is not canonical") }
            _ = MeshJSON.string(from: data)
        }
        _ = try? DataCapsule.unpack(bytes)
    }
}

/// Seeded random edits of fuzz inputs (bit flips, byte changes, truncation, insertion, duplicated slices), for the
/// short fuzz runs in `swift test`: libFuzzer explores further, this keeps every entry point exercised on every
/// run, the same way each time.
@_spi(Fuzzing)
public struct FuzzMutator: Sendable {
    private var random: SplitMix64

    /// A mutator whose edits follow from `seed`.
    public init(seed: UInt64) { random = SplitMix64(seed: seed) }

    /// The next pseudo-random number (SplitMix64).
    public mutating func next() -> UInt64 { random.next() }

    /// One to four random edits of `input`.
    public mutating func mutate(_ input: [UInt8]) -> [UInt8] {
        var bytes = input
        for _ in 0...(next() % 4) {
            let position = bytes.isEmpty ? 0 : Int(next() % UInt64(bytes.count))
            switch next() % 6 {
            case 0 where !bytes.isEmpty: bytes[position] ^= UInt8(1 << (next() % 8))
            case 1 where !bytes.isEmpty: bytes[position] = UInt8(truncatingIfNeeded: next())
            case 2: bytes = Array(bytes.prefix(position))
            case 3: bytes.insert(contentsOf: (0..<(next() % 8)).map { _ in UInt8(truncatingIfNeeded: next()) }, at: position)
            case 4 where !bytes.isEmpty:
                let end = min(bytes.count, position + Int(next() % 16))
                bytes.insert(contentsOf: bytes[position..<end], at: position)
            default: bytes.append(UInt8(truncatingIfNeeded: next()))
            }
        }
        return bytes
    }

    /// Runs `target` on each seed, `iterations` mutations of each, and `iterations` random inputs.
    public mutating func run(_ target: ([UInt8]) -> Void, seeds: [[UInt8]], iterations: Int) {
        for seed in seeds {
            target(seed)
            for _ in 0..<iterations { target(mutate(seed)) }
        }
        for _ in 0..<iterations {
            target((0..<(next() % 256)).map { _ in UInt8(truncatingIfNeeded: next()) })
        }
    }
}
