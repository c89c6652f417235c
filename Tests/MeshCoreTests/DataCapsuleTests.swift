import MeshCore
import Testing

@Suite struct DataCapsuleTests {
    /// The seed example of the Diarkis documentation: a schedule with two appointments, packed into a
    /// message next to a name, sent, and read back by the handler.
    @Test func seedScheduleExample() throws {
        // Sender.
        var schedule = DataCapsule()
        schedule.setAsArray("appointments", [
            DataCapsule(["date": "01/01/2022", "title": "New Year Party"]),
            DataCapsule(["date": "25/12/2022", "title": "Christmas Party"]),
        ])
        let data: MeshData = ["myName": "Jon", "mySchedule": .bytes(try schedule.pack())]
        let wire = try MeshCodec.encode(data)

        // Receiver's handler.
        let received = try MeshCodec.decode(wire)
        #expect(try received.getString("myName") == "Jon")
        let mySchedule = try DataCapsule.unpack(received.getBytes("mySchedule"))
        let appointments = try mySchedule.getAsArray("appointments")
        #expect(appointments.count == 2)
        #expect(try appointments[0].getAsString("date") == "01/01/2022")
        #expect(try appointments[0].getAsString("title") == "New Year Party")
        #expect(try appointments[1].getAsString("date") == "25/12/2022")
        #expect(try appointments[1].getAsString("title") == "Christmas Party")
    }

    @Test func everyScalarKindRoundTripsThroughPack() throws {
        var c = DataCapsule()
        c.setAsInt8("i8", -8)
        c.setAsUint8("u8", 8)
        c.setAsInt16("i16", -16)
        c.setAsUint16("u16", 16)
        c.setAsInt32("i32", -32)
        c.setAsUint32("u32", 32)
        c.setAsInt64("i64", .min)
        c.setAsUint64("u64", .max)
        c.setAsFloat64("f", 2.5)
        c.setAsBool("b", true)
        c.setAsString("s", "str")
        c.setAsBytes("x", [1, 2, 3])
        var inner = DataCapsule()
        inner.setAsString("k", "v")
        c.setAsCapsule("nested", inner)
        c.setAsMap("byName", ["one": inner, "two": DataCapsule()])

        let u = try DataCapsule.unpack(c.pack())
        #expect(u == c)
        #expect(try u.getAsInt8("i8") == -8)
        #expect(try u.getAsUint8("u8") == 8)
        #expect(try u.getAsInt16("i16") == -16)
        #expect(try u.getAsUint16("u16") == 16)
        #expect(try u.getAsInt32("i32") == -32)
        #expect(try u.getAsUint32("u32") == 32)
        #expect(try u.getAsInt64("i64") == .min)
        #expect(try u.getAsUint64("u64") == .max)
        #expect(try u.getAsFloat64("f") == 2.5)
        #expect(try u.getAsBool("b") == true)
        #expect(try u.getAsString("s") == "str")
        #expect(try u.getAsBytes("x") == [1, 2, 3])
        #expect(try u.getAsCapsule("nested").getAsString("k") == "v")
        #expect(try u.getAsMap("byName").keys.sorted() == ["one", "two"])
        #expect(try u.getAsMap("byName")["one"]?.getAsString("k") == "v")
    }

    @Test func gettersAreStrictAboutKinds() {
        var c = DataCapsule()
        c.setAsInt16("n", 5)
        let error = #expect(throws: MeshDataError.self) { try c.getAsInt64("n") }
        #expect(error?.code == .typeMismatch)
        #expect((#expect(throws: MeshDataError.self) { try c.getAsString("missing") })?.code == .missingKey)
        #expect((#expect(throws: MeshDataError.self) { try c.getAsArray("n") })?.code == .typeMismatch)
    }

    @Test func exportAndImportAreLossless() throws {
        var c = DataCapsule()
        c.setAsUint64("id", 42)
        c.setAsArray("list", [DataCapsule(["a": "b"])])
        let exported = c.export()
        var d = DataCapsule()
        try d.import(exported)
        #expect(d == c)
    }

    @Test func importRejectsNonCapsuleShapesAndKeepsOldContents() {
        var c = DataCapsule()
        c.setAsString("keep", "me")
        let withNull: MeshData = ["x": nil]
        let withScalarArray: MeshData = ["list": [1, 2]]
        #expect((#expect(throws: MeshDataError.self) { try c.import(withNull) })?.code == .invalidCapsule)
        let error = #expect(throws: MeshDataError.self) { try c.import(withScalarArray) }
        #expect(error?.code == .invalidCapsule)
        #expect(error?.key == "list[0]")
        #expect(c.contains("keep"))
    }

    @Test func unpackRejectsWellFormedNonCapsules() throws {
        let bytes = try MeshCodec.encode(["list": [1, 2]])
        let error = #expect(throws: MeshCodecError.self) { try DataCapsule.unpack(bytes) }
        #expect(error?.code == .invalidCapsule)
    }
}
