import MeshCore
import PropertyBased
import Testing

@Suite struct MeshCodecTests {
    @Test func roundTripsGeneratedValues() async {
        await propertyCheck(count: 500, input: RandomValues.meshData) { data in
            let bytes = try MeshCodec.encode(data)
            let decoded = try MeshCodec.decode(bytes)
            #expect(decoded == data)
            // Canonical: re-encoding the decoded value gives the same bytes.
            #expect(try MeshCodec.encode(decoded) == bytes)
        }
    }

    @Test func randomBytesNeverCrashTheDecoder() async {
        await propertyCheck(count: 2000, input: RandomValues.bytes) { bytes in
            do {
                let data = try MeshCodec.decode([1] + bytes)
                // Whatever decodes must re-encode to the same bytes (the format is canonical).
                #expect(try MeshCodec.encode(data) == [1] + bytes)
            } catch {
                // A clear error is fine; a trap is not.
            }
        }
    }

    @Test func mutatedEncodingsFailCleanlyOrDecode() async {
        await propertyCheck(count: 300, input: RandomValues.meshData, Gen.int(in: 0...10_000), Gen.uint8()) { data, position, xor in
            var bytes = try MeshCodec.encode(data)
            let index = position % bytes.count
            bytes[index] ^= (xor == 0 ? 1 : xor)
            // A clear MeshCodecError, or a value that re-encodes canonically (a flipped bit inside a string or a
            // number can still be a valid message) — never a trap or another error.
            do {
                let decoded = try MeshCodec.decode(bytes)
                #expect(try MeshCodec.decode(MeshCodec.encode(decoded)) == decoded)
            } catch is MeshCodecError {
            } catch {
                Issue.record("decode threw \(type(of: error)), not a MeshCodecError: \(error)")
            }
        }
    }

    @Test func everyProperPrefixIsRejectedAsTruncatedOrInvalid() throws {
        let data: MeshData = ["a": 1, "b": .bytes([1, 2, 3]), "c": ["x", .uint64(.max), ["k": .float64(2.5)]]]
        let bytes = try MeshCodec.encode(data)
        for length in 0..<bytes.count {
            #expect(throws: MeshCodecError.self) { try MeshCodec.decode(Array(bytes.prefix(length))) }
        }
    }

    @Test func encodingIsIndependentOfInsertionOrder() throws {
        var a = MeshData()
        a["zeta"] = 1
        a["alpha"] = 2
        a["mid"] = ["x": 1, "a": 2]
        var b = MeshData()
        b["mid"] = ["a": 2, "x": 1]
        b["alpha"] = 2
        b["zeta"] = 1
        #expect(try MeshCodec.encode(a) == MeshCodec.encode(b))
    }

    /// The wire format is a contract between versions: these bytes must never change for format 1.
    @Test func goldenBytes() throws {
        let data: MeshData = [
            "b": .bool(true), "i": .int16(-2), "u": .uint64(300), "s": "hi", "x": .bytes([0xAB]),
            "f": .float64(1.0), "a": [.null, .int8(-1)], "m": ["k": .uint8(7)],
        ]
        let expected: [UInt8] = [
            0x01, 0x08,
            0x01, 0x61, 0x0E, 0x02, 0x00, 0x03, 0xFF,  // "a": [null, int8 -1]
            0x01, 0x62, 0x02,  // "b": true
            0x01, 0x66, 0x0B, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F,  // "f": 1.0
            0x01, 0x69, 0x04, 0x03,  // "i": int16 -2 (zigzag 3)
            0x01, 0x6D, 0x0F, 0x01, 0x01, 0x6B, 0x07, 0x07,  // "m": {"k": uint8 7}
            0x01, 0x73, 0x0C, 0x02, 0x68, 0x69,  // "s": "hi"
            0x01, 0x75, 0x0A, 0xAC, 0x02,  // "u": uint64 300
            0x01, 0x78, 0x0D, 0x01, 0xAB,  // "x": bytes [0xAB]
        ]
        #expect(try MeshCodec.encode(data) == expected)
        #expect(try MeshCodec.decode(expected) == data)
    }

    @Test func integersStayExact() throws {
        let data: MeshData = ["max": .uint64(.max), "min": .int64(.min), "big": .int64(9_007_199_254_740_993)]
        let decoded = try MeshCodec.decode(MeshCodec.encode(data))
        #expect(decoded.uint64("max") == .max)
        #expect(decoded.int64("min") == .min)
        #expect(decoded.int64("big") == 9_007_199_254_740_993)  // 2^53 + 1: a float64 would round it
    }

    @Test func rejectsUnsupportedVersion() {
        #expect(throws: MeshCodecError(.unsupportedVersion, offset: 0, detail: "version 2, this build reads 1")) {
            try MeshCodec.decode([2, 0])
        }
    }

    @Test func rejectsTrailingBytes() {
        let error = #expect(throws: MeshCodecError.self) { try MeshCodec.decode([1, 0, 0]) }
        #expect(error?.code == .trailingBytes)
        #expect(error?.offset == 2)
    }

    @Test func rejectsUnknownTag() {
        let error = #expect(throws: MeshCodecError.self) { try MeshCodec.decode([1, 1, 1, 0x61, 99]) }
        #expect(error?.code == .unknownTag)
    }

    @Test func rejectsDuplicateAndUnorderedKeys() {
        let duplicate: [UInt8] = [1, 2, 1, 0x61, 0, 1, 0x61, 0]
        let unordered: [UInt8] = [1, 2, 1, 0x62, 0, 1, 0x61, 0]
        #expect((#expect(throws: MeshCodecError.self) { try MeshCodec.decode(duplicate) })?.code == .nonCanonicalKeys)
        #expect((#expect(throws: MeshCodecError.self) { try MeshCodec.decode(unordered) })?.code == .nonCanonicalKeys)
    }

    @Test func canonicallyEquivalentKeysStayDistinctAsOnTheWire() throws {
        // "e" + U+0301 (65 CC 81) and "é" (C3 A9) differ as bytes but are equal Swift Strings. Keys are bytes:
        // both survive, and re-encoding gives the same bytes.
        let bytes: [UInt8] = [1, 2, 3, 0x65, 0xCC, 0x81, 0, 2, 0xC3, 0xA9, 2]
        let data = try MeshCodec.decode(bytes)
        #expect(data.count == 2)
        #expect(data["\u{E9}"] == .bool(true))
        #expect(data["e\u{301}"] == .null)
        #expect(try MeshCodec.encode(data) == bytes)
    }

    @Test func rejectsInvalidUTF8() {
        let error = #expect(throws: MeshCodecError.self) { try MeshCodec.decode([1, 1, 1, 0x61, 12, 2, 0xC3, 0x28]) }
        #expect(error?.code == .invalidUTF8)
    }

    @Test func rejectsOutOfRangeNarrowIntegers() {
        // int16 with zigzag 70000 (35000 does not fit Int16), uint32 with 2^33.
        let int16: [UInt8] = [1, 1, 1, 0x61, 4, 0xF0, 0xA2, 0x04]
        let uint32: [UInt8] = [1, 1, 1, 0x61, 9, 0x80, 0x80, 0x80, 0x80, 0x20]
        #expect((#expect(throws: MeshCodecError.self) { try MeshCodec.decode(int16) })?.code == .integerOutOfRange)
        #expect((#expect(throws: MeshCodecError.self) { try MeshCodec.decode(uint32) })?.code == .integerOutOfRange)
    }

    @Test func rejectsOverlongVarints() {
        let bytes: [UInt8] = [1, 1, 1, 0x61, 10] + [UInt8](repeating: 0xFF, count: 10) + [0x01]
        #expect((#expect(throws: MeshCodecError.self) { try MeshCodec.decode(bytes) })?.code == .malformedVarint)
    }

    @Test func hugeClaimedLengthsDoNotAllocate() {
        // A bytes value claiming 2^40 bytes, and a map claiming 2^40 entries, in a 12-byte input.
        let bytesClaim: [UInt8] = [1, 1, 1, 0x61, 13, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]
        let mapClaim: [UInt8] = [1, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20]
        #expect((#expect(throws: MeshCodecError.self) { try MeshCodec.decode(bytesClaim) })?.code == .lengthOutOfRange)
        #expect((#expect(throws: MeshCodecError.self) { try MeshCodec.decode(mapClaim) })?.code == .lengthOutOfRange)
    }

    @Test func deepNestingIsBoundedBothWays() {
        // 100,000 nested arrays would overflow the stack of a naive recursive decoder.
        var bytes: [UInt8] = [1, 1, 1, 0x61]
        for _ in 0..<100_000 { bytes += [14, 1] }
        bytes.append(0)
        #expect((#expect(throws: MeshCodecError.self) { try MeshCodec.decode(bytes) })?.code == .depthLimitExceeded)

        var value: MeshValue = .null
        for _ in 0..<100 { value = .array([value]) }
        let error = #expect(throws: MeshCodecError.self) { try MeshCodec.encode(["deep": value]) }
        #expect(error?.code == .depthLimitExceeded)

        var shallow: MeshValue = .null
        for _ in 0..<62 { shallow = .array([shallow]) }
        #expect(throws: Never.self) { try MeshCodec.decode(MeshCodec.encode(["ok": shallow])) }
    }

    @Test func sizeLimitApplies() {
        let data: MeshData = ["blob": .bytes([UInt8](repeating: 7, count: 2000))]
        let limits = MeshCodec.Limits(maxDepth: 64, maxSize: 1000)
        #expect((#expect(throws: MeshCodecError.self) { try MeshCodec.encode(data, limits: limits) })?.code == .tooLarge)
        let bytes = try! MeshCodec.encode(data)
        #expect((#expect(throws: MeshCodecError.self) { try MeshCodec.decode(bytes, limits: limits) })?.code == .tooLarge)
    }

    @Test func errorDescriptionsNameThePlace() {
        let error = MeshCodecError(.truncated, offset: 17)
        #expect(error.description == "truncated input at byte 17")
    }
}
