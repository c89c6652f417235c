import Mesh
import MeshCore
import MeshJournal
import MeshTransport
import Synchronization
import Testing

/// Synchronous handlers (`handleCommandInline`): run on the node's thread inside the transaction that journals
/// their message, so the message, its invocations, its status and its response commit together.
@Suite struct InlineHandlerTests {
    /// How many rows of `mesh_inbound` a fresh reader of `path` sees: what is committed at that moment.
    static func committedInbound(_ path: String) -> Int64 {
        (try? SQLiteConnection(path: path, mode: .readOnly).scalarInt("SELECT count(*) FROM mesh_inbound")) ?? -1
    }

    @Test func anInlineHandlerRunsBeforeItsMessageCommitsAndAnAsyncOneAfter() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        let path = b.journal.path
        let seen = Mutex<[String: Int64]>([:])
        try b.handleCommandInline(2100) { data, _ in
            seen.withLock { $0["inline"] = Self.committedInbound(path) }
            return data
        }
        // A closure that never awaits, given to handleCommand: still an async handler (not the inline overload).
        try b.handleCommand(2101) { data, _ in
            seen.withLock { $0["async"] = Self.committedInbound(path) }
            return data
        }
        // Registering queued a catch-up pass (for messages that arrived without a handler): once it is over, a
        // message of 2100 runs inline.
        try await eventually { b.isLaneIdle(2100) }
        #expect(try await a.sendRequest(2100, to: b.address, ["n": 1], timeout: .seconds(30)) == ["n": 1])
        #expect(try await a.sendRequest(2101, to: b.address, ["n": 2], timeout: .seconds(30)) == ["n": 2])
        // Inline: the request was not committed yet while its handler ran (it commits with what the handler did).
        // Async: the request was committed (and so was the first one) before its handler ran.
        #expect(seen.withLock { $0 } == ["inline": 0, "async": 2])
        // The inline request's row, its invocation, its status and its response, all journaled.
        try await eventually {
            try await b.journal.rows("""
                SELECT req.status, req.attempts, res.kind, res.status FROM mesh_messages req
                JOIN mesh_messages res ON res.correlation_id = req.message_id
                WHERE req.direction = 'in' AND req.command_id = 2100 AND res.direction = 'out'
                """) == [["handled", "1", "response", "acked"]]
        }
        #expect(try await b.journal.rows("""
            SELECT v.handler_index, v.attempt, v.outcome, v.response_json FROM mesh_invocations v
            JOIN mesh_messages m ON m.message_id = v.message_id WHERE m.command_id = 2100
            """) == [["0", "1", "ok", #"{"n":1}"#]])
        #expect(try await b.journal.rows("SELECT s.answered FROM mesh_inbound_state s JOIN mesh_inbound i ON i.id = s.id WHERE i.command_id = 2100")
            == [["1"]])
        await a.shutdown()
        await b.shutdown()
    }

    @Test func aChainWithAnAsyncHandlerRunsOnTheLaneAfterTheCommit() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        let path = b.journal.path
        let seen = Mutex<[Int64]>([])
        try b.handleCommandInline(2102) { _, _ in
            seen.withLock { $0.append(Self.committedInbound(path)) }
            return nil
        }
        try b.handleCommand(2102) { data, _ in data }
        #expect(try await a.sendRequest(2102, to: b.address, ["n": 3], timeout: .seconds(30)) == ["n": 3])
        #expect(seen.withLock { $0 } == [1])
        #expect(try await b.journal.rows("SELECT handler_index, outcome FROM mesh_invocations ORDER BY handler_index") == [["0", "ok"], ["1", "ok"]])
        await a.shutdown()
        await b.shutdown()
    }

    /// Message 0's first inline attempt fails: it is retried on the lane, and every later message of the command ID
    /// waits for it there (reserved) instead of running inline ahead of it.
    @Test func aFailedInlineAttemptIsRetriedOnTheLaneAndNothingOvertakesIt() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        let handled = Mutex<[Int]>([])
        struct FirstAttempt: Error {}
        try b.handleCommandInline(2103) { data, info in
            let i = Int(try data.getInt64("i"))
            if i == 0 && info.attempt == 1 { throw FirstAttempt() }
            handled.withLock { $0.append(i) }
            return nil
        }
        let count = 200
        var deliveries: [MeshNode.Delivery] = []
        for i in 0..<count { deliveries.append(try await a.send(2103, to: b.address, ["i": .int64(Int64(i))])) }
        for delivery in deliveries { #expect(await delivery.outcome() == .confirmed) }
        try await eventually { handled.withLock { $0.count } == count }
        #expect(handled.withLock { $0 } == Array(0..<count))
        try await eventually {
            try await b.journal.rows("""
                SELECT v.attempt, v.outcome FROM mesh_invocations v JOIN mesh_messages m ON m.message_id = v.message_id
                WHERE json_extract(m.payload_json, '$.i') = 0 ORDER BY v.attempt
                """) == [["1", "error"], ["2", "ok"]]
        }
        #expect(try await b.journal.rows("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND status = 'handled'") == [["\(count)"]])
        await a.shutdown()
        await b.shutdown()
    }

    /// A message handled inline writes its state row once, with its final status (it never enters the open-set
    /// index); one whose inline attempt failed is written `failed` and finished by the lane; an async chain's is
    /// written `received` and updated. Seen through temporary triggers on the node's own write connection.
    @Test func aMessageHandledInlineWritesItsStateRowOnceWithItsFinalStatus() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        struct FirstAttempt: Error {}
        try b.handleCommandInline(2106) { data, info in
            if try data.getInt64("i") == 1 && info.attempt == 1 { throw FirstAttempt() }
            return nil
        }
        try b.handleCommand(2107) { _, _ in nil }
        try await eventually { b.isLaneIdle(2106) }
        try await b.journal.write { context in
            try context.db.execute("""
                CREATE TEMP TABLE state_log(op TEXT, command_id INTEGER, status INTEGER);
                CREATE TEMP TRIGGER state_inserted AFTER INSERT ON main.mesh_inbound_state
                    BEGIN INSERT INTO state_log VALUES ('insert', new.command_id, new.status); END;
                CREATE TEMP TRIGGER state_updated AFTER UPDATE ON main.mesh_inbound_state
                    BEGIN INSERT INTO state_log VALUES ('update', new.command_id, new.status); END;
                """)
        }
        for (command, i) in [(UInt16(2106), 0), (2106, 1), (2107, 2)] {
            #expect(await (try await a.send(command, to: b.address, ["i": .int64(Int64(i))])).outcome() == .confirmed)
            try await eventually {
                try await b.journal.rows("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND status = 'handled'") == [["\(i + 1)"]]
            }
        }
        let log = try await b.journal.write { context in
            try context.db.rows("SELECT op, command_id, status FROM temp.state_log ORDER BY rowid").map { $0.map { $0 ?? "" } }
        }
        #expect(log == [
            ["insert", "2106", "1"],                          // handled inline: written once, final
            ["insert", "2106", "2"], ["update", "2106", "1"], // failed inline, handled on the lane
            ["insert", "2107", "1"],                          // async chain: no row while received, written when it ends (v12)
        ])
        await a.shutdown()
        await b.shutdown()
    }

    @Test(arguments: [1, 2])
    func anInlineRequestThatFailsEveryAttemptIsDeadLetteredAndAnsweredWithTheError(attempts: Int) async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b") { $0.maxHandlerAttempts = attempts }
        struct Refused: Error, CustomStringConvertible { var description: String { "refused inline" } }
        try b.handleCommandInline(2104) { _, _ in throw Refused() }
        let error = await #expect(throws: MeshError.self) { try await a.sendRequest(2104, to: b.address, ["n": 4], timeout: .seconds(30)) }
        #expect(error?.code == .handlerError)
        #expect(error?.message.contains("refused inline") == true, "\(String(describing: error))")
        let dead = try await b.deadLetters()
        #expect(dead.count == 1 && dead.first?.attempts == attempts && dead.first?.isAnswered == true)
        #expect(try await b.journal.rows("SELECT count(*) FROM mesh_invocations WHERE outcome = 'error'") == [["\(attempts)"]])
        await a.shutdown()
        await b.shutdown()
    }

    @Test func theWriterCountsTheWALFramesItsCommitsWrite() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        try b.handleCommandInline(2105) { _, _ in nil }
        let before = (a.journal.walFramesWritten, b.journal.walFramesWritten)
        for i in 0..<20 { #expect(await (try await a.send(2105, to: b.address, ["i": .int64(Int64(i))])).outcome() == .confirmed) }
        // Each message dirtied at least one page at each end (its row), so at least one frame each.
        #expect(a.journal.walFramesWritten - before.0 >= 20)
        try await eventually { b.journal.walFramesWritten - before.1 >= 20 }
        await a.shutdown()
        await b.shutdown()
    }
}
