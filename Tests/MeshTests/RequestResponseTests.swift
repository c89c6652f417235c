import Mesh
import MeshCore
import MeshJournal
import Testing

@Suite struct RequestResponseTests {
    @Test func requestGetsTheFirstNonNilResponseAndBothSidesJournalTheLink() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        try b.handleCommand(2001) { _ in nil }  // observes, answers nothing
        try b.handleCommand(2001) { data in ["greeting": .string("hello \(try data.getString("myName"))")] }
        try b.handleCommand(2001) { _ in ["greeting": "ignored: a response was already given"] }
        let response = try await a.sendRequest(2001, to: b.address, ["myName": "Jon"], timeout: .seconds(30))
        #expect(response == ["greeting": "hello Jon"])
        // Requester: request out, response in, linked by correlation_id.
        try await eventually {
            try await a.journal.rows("""
                SELECT req.kind, res.kind, res.status, json_extract(res.payload_json, '$.greeting')
                FROM mesh_messages req JOIN mesh_messages res ON res.correlation_id = req.message_id
                WHERE req.direction = 'out' AND res.direction = 'in'
                """) == [["request", "response", "handled", "hello Jon"]]
        }
        // Responder: request in (handled, three invocations), response out (acked) with the same link.
        try await eventually {
            try await b.journal.rows("""
                SELECT req.status, res.kind, res.status FROM mesh_messages req
                JOIN mesh_messages res ON res.correlation_id = req.message_id
                WHERE req.direction = 'in' AND res.direction = 'out'
                """) == [["handled", "response", "acked"]]
        }
        #expect(try await b.journal.rows("SELECT handler_index, outcome, response_json FROM mesh_invocations ORDER BY handler_index")
            == [["0", "ok", nil], ["1", "ok", #"{"greeting":"hello Jon"}"#], ["2", "ok", #"{"greeting":"ignored: a response was already given"}"#]])
        await a.shutdown()
        await b.shutdown()
    }

    /// One handler's response is encoded once for the two places it is journaled: its invocation's record and the
    /// response message carry the same bytes and the same JSON — inline (synchronous handler) and on the lane.
    @Test(arguments: [false, true])
    func oneHandlersResponseIsTheSameInItsInvocationAndItsMessage(inline: Bool) async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        let answer: MeshData = ["greeting": "hello", "body": .bytes([1, 2, 3]), "n": .int32(7)]
        if inline {
            try b.handleCommandInline(2005) { _, _ in answer }
        } else {
            try b.handleCommand(2005) { _ in answer }
        }
        #expect(try await a.sendRequest(2005, to: b.address, ["q": 1], timeout: .seconds(30)) == answer)
        let rows = try await b.journal.rows("""
            SELECT hex(v.response), v.response_json, hex(m.payload), m.payload_json FROM mesh_invocations v
            JOIN mesh_messages m ON m.direction = 'out' AND m.kind = 'response'
            """)
        #expect(rows.count == 1)
        let row = try #require(rows.first)
        #expect(row[0] == row[2] && row[1] == row[3])
        #expect(row[2] == (try MeshCodec.encode(answer)).map { ($0 < 16 ? "0" : "") + String($0, radix: 16, uppercase: true) }.joined())
        #expect(row[3] == MeshJSON.string(from: answer))
        await a.shutdown()
        await b.shutdown()
    }

    @Test func aResponseIsJournaledAlreadyHandledAndNeverOpen() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        try b.handleCommand(2004) { data in data }
        for i in 0..<5 {
            _ = try await a.sendRequest(2004, to: b.address, ["i": .string("\(i)")], timeout: .seconds(30))
            // The response's row is complete in the very commit that let the request return: no status write
            // follows it, and it never enters the open set (handlers never run for responses).
            #expect(try await a.journal.rows("""
                SELECT s.status, s.attempts, s.completed_at IS NOT NULL FROM mesh_inbound i
                JOIN mesh_inbound_state s ON s.id = i.id WHERE i.kind = 3
                """).allSatisfy { $0 == ["1", "1", "1"] })
        }
        #expect(try await a.journal.rows("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND status IN ('received', 'failed', 'unhandled')") == [["0"]])
        #expect(try await a.journal.rows("SELECT count(*), min(status) FROM mesh_messages WHERE direction = 'in' AND kind = 'response'")
            == [["5", "handled"]])
        await a.shutdown()
        await b.shutdown()
    }

    @Test func aHandlerErrorReachesTheRequesterWithItsMessage() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b") { $0.maxHandlerAttempts = 1 }
        struct NotFound: Error, CustomStringConvertible { var description: String { "no such player" } }
        try b.handleCommand(2002) { _ in throw NotFound() }
        let error = await #expect(throws: MeshError.self) { try await a.sendRequest(2002, to: b.address, ["id": 7], timeout: .seconds(30)) }
        #expect(error?.code == .handlerError)
        #expect(error?.message == "no such player")
        await a.shutdown()
        await b.shutdown()
    }

    @Test func aRequestNobodyAnswersTimesOut() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")  // no handler for 2003: the request waits, unhandled
        let error = await #expect(throws: MeshError.self) {
            try await a.sendRequest(2003, to: b.address, ["x": 1], timeout: .milliseconds(300))
        }
        #expect(error?.code == .timeout)
        await a.shutdown()
        await b.shutdown()
    }

    @Test func manyConcurrentRequestsEachGetTheirOwnResponse() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        try b.handleCommand(2004) { data in ["double": .int64(try data.getInt64("n") * 2)] }
        let results = try await withThrowingTaskGroup(of: (Int64, Int64).self) { group in
            for n in 0..<200 {
                group.addTask {
                    (Int64(n), try await a.sendRequest(2004, to: b.address, ["n": .int64(Int64(n))], timeout: .seconds(60)).getInt64("double"))
                }
            }
            return try await group.reduce(into: [(Int64, Int64)]()) { $0.append($1) }
        }
        #expect(results.count == 200)
        #expect(results.allSatisfy { $0.1 == $0.0 * 2 })
        await a.shutdown()
        await b.shutdown()
    }
}
