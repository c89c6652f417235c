import MeshCore
import Testing

@Suite struct CodableBridgeTests {
    struct Appointment: Codable, Equatable {
        var date: String
        var title: String
    }

    enum Priority: String, Codable { case low, high }

    enum Shape: Codable, Equatable {
        case circle(radius: Double)
        case square(side: Int)
    }

    struct Schedule: Codable, Equatable {
        var owner: String
        var id: UInt64
        var level: Int8
        var score: Double
        var active: Bool
        var appointments: [Appointment]
        var tags: [String: Int]
        var blob: [UInt8]
        var note: String?
        var priority: Priority
        var shapes: [Shape]
        var matrix: [[Int]]
    }

    let sample = Schedule(
        owner: "Jon", id: .max, level: -3, score: 0.25, active: true,
        appointments: [Appointment(date: "01/01/2022", title: "New Year Party")],
        tags: ["a": 1], blob: [1, 2, 255], note: nil, priority: .high,
        shapes: [.circle(radius: 1.5), .square(side: 2)], matrix: [[1, 2], [], [3]])

    @Test func roundTripsThroughMeshDataAndTheCodec() throws {
        let data = try MeshDataEncoder().encode(sample)
        let wire = try MeshCodec.encode(data)
        let decoded = try MeshDataDecoder().decode(Schedule.self, from: MeshCodec.decode(wire))
        #expect(decoded == sample)
    }

    @Test func mapsSwiftTypesToTheExpectedKinds() throws {
        let data = try MeshDataEncoder().encode(sample)
        #expect(data["id"] == .uint64(.max))
        #expect(data["level"] == .int8(-3))
        #expect(data["blob"] == .bytes([1, 2, 255]))
        #expect(data["note"] == nil)  // nil optionals are omitted
        #expect(data["priority"] == .string("high"))
        #expect(try data.getArray("appointments").first == .map(["date": "01/01/2022", "title": "New Year Party"]))
    }

    @Test func decodingErrorsNameTheField() throws {
        var data = try MeshDataEncoder().encode(sample)
        data["level"] = .int64(1000)
        #expect {
            try MeshDataDecoder().decode(Schedule.self, from: data)
        } throws: { error in
            guard case DecodingError.dataCorrupted(let context) = error else { return false }
            return context.codingPath.map(\.stringValue) == ["level"]
        }
        data.removeValue(forKey: "owner")
        #expect {
            try MeshDataDecoder().decode(Schedule.self, from: data)
        } throws: { error in
            guard case DecodingError.keyNotFound(let key, _) = error else { return false }
            return key.stringValue == "owner"
        }
    }

    @Test func topLevelMustBeAMap() {
        #expect(throws: EncodingError.self) { try MeshDataEncoder().encode([1, 2, 3]) }
        #expect(throws: (any Error).self) { try MeshDataDecoder().decodeValue(Int.self, from: .string("x")) }
    }
}
