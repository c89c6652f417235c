import MeshCore
import Testing

@Suite struct MeshDataTests {
    @Test func literalsBuildTypedValues() {
        let data: MeshData = ["name": "Jon", "level": 12, "ratio": 0.5, "ok": true, "none": nil, "list": [1, "two"]]
        #expect(data["name"] == .string("Jon"))
        #expect(data["level"] == .int64(12))
        #expect(data["ratio"] == .float64(0.5))
        #expect(data["ok"] == .bool(true))
        #expect(data["none"] == .null)
        #expect(data["list"] == .array([.int64(1), .string("two")]))
        #expect(data.count == 6)
        // Interpolated strings are strings too (the README writes `["player": "p-\(level)"]`).
        let level = 7
        let interpolated: MeshData = ["player": "p-\(level)", "nested": ["at": "x\(level * 2)"]]
        #expect(interpolated["player"] == .string("p-7"))
        #expect(interpolated["nested"] == .map(["at": .string("x14")]))
    }

    @Test func throwingAccessorsNameKeyAndFoundType() throws {
        let data: MeshData = ["myName": "Jon", "level": .int64(300)]
        #expect(try data.getString("myName") == "Jon")

        let missing = #expect(throws: MeshDataError.self) { try data.getString("nope") }
        #expect(missing?.code == .missingKey)
        #expect(missing?.key == "nope")
        #expect(missing?.description == "key \"nope\": missing (expected string)")

        let mismatch = #expect(throws: MeshDataError.self) { try data.getBytes("myName") }
        #expect(mismatch?.code == .typeMismatch)
        #expect(mismatch?.description == "key \"myName\": expected bytes, found string (3 bytes)")

        let range = #expect(throws: MeshDataError.self) { try data.getUint8("level") }
        #expect(range?.code == .outOfRange)
        #expect(range?.description == "key \"level\": expected uint8, found int64 300 (out of range)")
    }

    @Test func integerAccessorsConvertExactlyBetweenWidths() throws {
        let data: MeshData = ["small": .uint8(200), "neg": .int8(-5), "big": .uint64(.max)]
        #expect(try data.getInt64("small") == 200)
        #expect(try data.getInt16("neg") == -5)
        #expect(try data.getUint64("big") == .max)
        #expect(try data.getInt("small") == 200)
        #expect(data.int8("small") == nil)  // 200 does not fit Int8
        #expect(data.uint32("neg") == nil)  // negative
        #expect(data.int64("big") == nil)  // UInt64.max does not fit Int64
        #expect((#expect(throws: MeshDataError.self) { try data.getInt8("small") })?.code == .outOfRange)
    }

    @Test func floatAccessorDoesNotConvertIntegers() {
        let data: MeshData = ["n": 3]
        #expect(data.float64("n") == nil)
        #expect((#expect(throws: MeshDataError.self) { try data.getFloat64("n") })?.code == .typeMismatch)
    }

    @Test func optionalAccessorsReturnNilForAbsentOrOtherKinds() {
        let data: MeshData = ["s": "x", "b": .bytes([1]), "t": true, "m": ["k": 1], "a": [1]]
        #expect(data.string("s") == "x")
        #expect(data.string("b") == nil)
        #expect(data.bytes("b") == [1])
        #expect(data.bool("t") == true)
        #expect(data.map("m")?["k"] == .int64(1))
        #expect(data.array("a")?.count == 1)
        #expect(data.string("absent") == nil)
    }

    @Test func floatEqualityIsRepresentational() {
        #expect(MeshValue.float64(.nan) == .float64(.nan))
        #expect(MeshValue.float64(0.0) != .float64(-0.0))
        #expect(MeshValue.int8(1) != .int64(1))
        #expect(Set<MeshValue>([.float64(.nan), .float64(.nan)]).count == 1)
    }

    @Test func absentKeyIsNotNull() {
        // Regression: MeshValue is ExpressibleByNilLiteral, so a careless `nil` can turn into `.null`.
        var data: MeshData = ["present": nil]
        #expect(data["absent"] == Optional<MeshValue>.none)
        #expect(data["present"] == .some(.null))
        #expect(data.removeValue(forKey: "absent") == Optional<MeshValue>.none)
    }

    @Test func entriesStaySortedThroughEdits() {
        var data = MeshData()
        for key in ["m", "a", "z", "b", "y"] { data[key] = .string(key) }
        data["m"] = nil
        data["a"] = 1
        #expect(data.keys == ["a", "b", "y", "z"])
        #expect(data["a"] == .int64(1))
        #expect(data.removeValue(forKey: "z") == .string("z"))
        #expect(data.keys == ["a", "b", "y"])
        let literal: MeshData = ["k": 1, "k": 2, "j": 0]
        #expect(literal.keys == ["j", "k"] && literal["k"] == .int64(2))
        #expect(MeshData(["b": 1, "a": 2]) == ["a": 2, "b": 1])
    }

    @Test func descriptionIsJSON() {
        let data: MeshData = ["b": 1, "a": "x"]
        #expect(data.description == #"{"a":"x","b":1}"#)
    }
}
