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
    }
}
