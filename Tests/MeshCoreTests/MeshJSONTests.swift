import Foundation
import MeshCore
import PropertyBased
import Testing

@Suite struct MeshJSONTests {
    @Test func rendersEveryKind() {
        let data: MeshData = [
            "s": "Jon", "i": .int8(-3), "u": .uint64(.max), "f": 1.5, "t": true, "n": nil,
            "b": .bytes([0, 1, 2, 254, 255]), "a": [1, "x"], "m": ["k": .uint16(9)],
            "nan": .float64(.nan), "inf": .float64(-.infinity),
        ]
        #expect(MeshJSON.string(from: data) == """
            {"a":[1,"x"],"b":"AAEC/v8=","f":1.5,"i":-3,"inf":"-Infinity","m":{"k":9},"n":null,"nan":"NaN",\
            "s":"Jon","t":true,"u":18446744073709551615}
            """)
    }

    @Test func escapesStrings() {
        let data: MeshData = ["q": "a\"b\\c\nd\u{1}é"]
        #expect(MeshJSON.string(from: data) == #"{"q":"a\"b\\c\nd\u0001é"}"#)
    }

    @Test func base64RoundTrips() async {
        await propertyCheck(count: 300, input: RandomValues.bytes) { bytes in
            #expect(Base64.decode(Base64.encode(bytes)) == bytes)
        }
        #expect(Base64.encode(Array("Man".utf8)) == "TWFu")
        #expect(Base64.encode(Array("Ma".utf8)) == "TWE=")
        #expect(Base64.encode(Array("M".utf8)) == "TQ==")
        #expect(Base64.decode("not base64!") == nil)
        // Against Foundation's encoder, at every length around the six-byte steps and at random contents.
        for length in 0..<100 {
            let bytes = (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 151 &+ length) }
            #expect(Base64.encode(bytes) == Data(bytes).base64EncodedString(), "length \(length)")
        }
        await propertyCheck(count: 300, input: RandomValues.bytes) { bytes in
            #expect(Base64.encode(bytes) == Data(bytes).base64EncodedString())
        }
    }

    @Test func jsonFromTheBytesIsTheDecodedValuesJSON() async throws {
        await propertyCheck(count: 500, input: RandomValues.meshData) { data in
            let bytes = try MeshCodec.encode(data)
            #expect(try MeshJSON.string(encoded: bytes) == MeshJSON.string(from: data))
        }
        // Keys in byte order, including two that are equal as Swift Strings; escapes; every kind.
        let keys: [UInt8] = [1, 2, 3, 0x65, 0xCC, 0x81, 0, 2, 0xC3, 0xA9, 2]
        let decodedKeys = try MeshCodec.decode(keys)
        #expect(try MeshJSON.string(encoded: keys) == MeshJSON.string(from: decodedKeys))
        let every: MeshData = [
            "s": "a\"b\\c\nd\u{1}é", "i": .int8(-3), "u": .uint64(.max), "f": 1.5, "t": true, "n": nil,
            "b": .bytes([0, 1, 2, 254, 255]), "a": [1, "x", []], "m": ["k": .uint16(9), "e": [:]],
            "nan": .float64(.nan), "inf": .float64(-.infinity),
        ]
        let everyBytes = try MeshCodec.encode(every)
        #expect(try MeshJSON.string(encoded: everyBytes) == MeshJSON.string(from: every))
    }

    @Test func jsonFromTheBytesRefusesWhatDecodingRefusesWithTheSameError() async throws {
        let invalid: [[UInt8]] = [
            [], [2, 0], [1, 0, 0], [1, 1, 1, 0x61, 99], [1, 2, 1, 0x62, 0, 1, 0x61, 0], [1, 2, 1, 0x61, 0, 1, 0x61, 0],
            [1, 1, 1, 0x61, 12, 2, 0xC3, 0x28], [1, 1, 2, 0xC3, 0x28, 0], [1, 1, 1, 0x61, 4, 0xF0, 0xA2, 0x04],
            [1, 1, 1, 0x61, 13, 0x80, 0x80, 0x80, 0x80, 0x80, 0x20],
        ]
        for bytes in invalid {
            let decoding = #expect(throws: MeshCodecError.self) { try MeshCodec.decode(bytes) }
            let rendering = #expect(throws: MeshCodecError.self) { try MeshJSON.string(encoded: bytes) }
            #expect(decoding == rendering, "\(bytes)")
        }
        let limits = MeshCodec.Limits(maxDepth: 2, maxSize: 64)
        for data: MeshData in [["deep": [[1]]], ["big": .bytes([UInt8](repeating: 7, count: 100))]] {
            let bytes = try MeshCodec.encode(data)
            let decoding = #expect(throws: MeshCodecError.self) { try MeshCodec.decode(bytes, limits: limits) }
            let rendering = #expect(throws: MeshCodecError.self) { try MeshJSON.string(encoded: bytes, limits: limits) }
            #expect(decoding != nil && decoding == rendering)
        }
        // Random edits of valid messages: both accept (with the same text) or both refuse (with the same error).
        await propertyCheck(count: 300, input: RandomValues.meshData, Gen.int(in: 0...10_000), Gen.uint8()) { data, position, xor in
            var bytes = try MeshCodec.encode(data)
            bytes[position % bytes.count] ^= (xor == 0 ? 1 : xor)
            let decoded = Result { () throws(MeshCodecError) in try MeshCodec.decode(bytes) }
            let rendered = Result { () throws(MeshCodecError) in try MeshJSON.string(encoded: bytes) }
            #expect(decoded.map { MeshJSON.string(from: $0) } == rendered)
        }
    }
}
