import MeshCore
import PropertyBased

/// Random MeshData for property tests: every kind, nested up to `depth`, with awkward strings and floats.
enum RandomValues {
    static let awkwardStrings = ["", "a", "myName", "ключ", "🔥", "a\u{0}b", "\"quoted\"", "line\nbreak", "\\", "é", "e\u{301}"]
    static let awkwardFloats: [Double] = [0, -0.0, 1.5, -2.25, .nan, .infinity, -.infinity, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1e-300]

    static func string(_ rng: inout any SeededRandomNumberGenerator) -> String {
        if Int.random(in: 0..<3, using: &rng) == 0 { return awkwardStrings.randomElement(using: &rng)! }
        let length = Int.random(in: 0..<12, using: &rng)
        var scalars = String.UnicodeScalarView()
        for _ in 0..<length {
            let choice = Int.random(in: 0..<10, using: &rng)
            let value: UInt32 = choice < 7 ? UInt32.random(in: 0x20..<0x7F, using: &rng)
                : choice < 9 ? UInt32.random(in: 0xA0..<0xD7FF, using: &rng) : UInt32.random(in: 0x1F300..<0x1F6FF, using: &rng)
            scalars.append(Unicode.Scalar(value)!)
        }
        return String(scalars)
    }

    static func value(_ rng: inout any SeededRandomNumberGenerator, depth: Int) -> MeshValue {
        let kinds = depth > 0 ? 15 : 13
        switch Int.random(in: 0..<kinds, using: &rng) {
        case 0: return .null
        case 1: return .bool(Bool.random(using: &rng))
        case 2: return .int8(Int8.random(in: .min ... .max, using: &rng))
        case 3: return .int16(Int16.random(in: .min ... .max, using: &rng))
        case 4: return .int32(Int32.random(in: .min ... .max, using: &rng))
        case 5: return .int64(Bool.random(using: &rng) ? Int64.random(in: .min ... .max, using: &rng) : [Int64.min, Int64.max, 0, -1].randomElement(using: &rng)!)
        case 6: return .uint8(UInt8.random(in: .min ... .max, using: &rng))
        case 7: return .uint16(UInt16.random(in: .min ... .max, using: &rng))
        case 8: return .uint32(UInt32.random(in: .min ... .max, using: &rng))
        case 9: return .uint64(Bool.random(using: &rng) ? UInt64.random(in: .min ... .max, using: &rng) : UInt64.max)
        case 10: return .float64(Bool.random(using: &rng) ? Double(bitPattern: UInt64.random(in: .min ... .max, using: &rng)) : awkwardFloats.randomElement(using: &rng)!)
        case 11: return .string(string(&rng))
        case 12: return .bytes((0..<Int.random(in: 0..<40, using: &rng)).map { _ in UInt8.random(in: .min ... .max, using: &rng) })
        case 13: return .array((0..<Int.random(in: 0..<5, using: &rng)).map { _ in value(&rng, depth: depth - 1) })
        default: return .map(map(&rng, depth: depth - 1))
        }
    }

    static func map(_ rng: inout any SeededRandomNumberGenerator, depth: Int) -> MeshData {
        var data = MeshData()
        for _ in 0..<Int.random(in: 0..<7, using: &rng) { data[string(&rng)] = value(&rng, depth: depth) }
        return data
    }

    static let meshData = Generator<MeshData, Shrink.None<MeshData>> { rng in map(&rng, depth: 3) }

    static let bytes = Generator<[UInt8], Shrink.None<[UInt8]>> { rng in
        (0..<Int.random(in: 0..<64, using: &rng)).map { _ in UInt8.random(in: .min ... .max, using: &rng) }
    }
}
