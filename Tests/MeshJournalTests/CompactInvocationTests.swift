import Dispatch
import Foundation
import MeshCore
import Testing
@testable import MeshJournal

/// Migration 0009: the common invocation (the first handler, returned, ending its message) is kept in the message's
/// state row; every other one in a row of its own. `mesh_invocations` shows both the same way, and invocation ids
/// stay unique and increasing across both forms, rollbacks, restarts and pruning.
@Suite struct CompactInvocationTests {
    static let peerNode = JournalWriteTests.peerNode

    /// A received message from ``peerNode`` for command 7 (the journal tests' message).
    func inbound(_ seq: UInt64) throws -> InboundMessage { try JournalWriteTests().inbound(seq, command: 7) }

    /// Every invocation id committed is at most the recorded reservation (what a restart starts above).
    func expectIDsReserved(_ journal: Journal, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        let (highest, reserved) = try await journal.read { db in
            (try db.scalarInt("SELECT coalesce(max(id), 0) FROM mesh_invocation_rows") ?? -1,
             try db.scalarInt("SELECT invocation_reserved FROM mesh_node") ?? -1)
        }
        #expect(highest <= reserved, "invocation id \(highest) committed above the reservation \(reserved)", sourceLocation: sourceLocation)
    }

    @Test func postedInvocationsTakeTheCompactFormOnlyWhenTheyEndTheMessageWithTheFirstHandler() async throws {
        try await withJournal { journal, _ in
            let ids = try await journal.appendInbound([inbound(1), inbound(2), inbound(3)]).map(\.id)
            // Hold the writer while the invocations are posted: their start jobs then find them finished and write
            // nothing, as when a handler returns before the writer gets to its start.
            let (entered, enteredContinuation) = AsyncStream<Void>.makeStream()
            let gate = DispatchSemaphore(value: 0)
            async let held: Void = journal.write { _ in
                enteredContinuation.yield()
                gate.wait()
            }
            for await _ in entered { break }
            let first = journal.postInvocationStart(inboundID: ids[0], handlerIndex: 0, attempt: 1)
            journal.postInvocationFinish(first, outcome: .ok, response: ["answer": 42], status: (.handled, 1, nil))
            let failed = journal.postInvocationStart(inboundID: ids[1], handlerIndex: 0, attempt: 1)
            journal.postInvocationFinish(failed, outcome: .error, error: "boom", status: (.failed, 1, "boom"))
            let later = journal.postInvocationStart(inboundID: ids[2], handlerIndex: 1, attempt: 1)
            journal.postInvocationFinish(later, outcome: .ok, status: (.handled, 1, nil))
            gate.signal()
            try await held
            try await journal.barrier()

            let forms = try await journal.read { db in
                try db.rows("""
                    SELECT (SELECT count(*) FROM mesh_invocation), (SELECT group_concat(id) FROM mesh_inbound_state WHERE invocation_id IS NOT NULL)
                    """)
            }
            #expect(forms == [["2", "\(ids[0])"]])
            let rows = try await journal.read { db in
                try db.rows("""
                    SELECT v.message_id, v.handler_index, v.attempt, v.outcome, v.error, v.response_json, v.replay_run,
                           v.finished_at_ms = m.completed_at_ms, v.started_at_ms <= v.finished_at_ms, v.response IS NOT NULL
                    FROM mesh_invocations v JOIN mesh_messages m ON m.message_id = v.message_id AND m.direction = 'in'
                    ORDER BY v.id
                    """)
            }
            #expect(rows == [
                ["\(Self.peerNode):1", "0", "1", "ok", nil, #"{"answer":42}"#, nil, "1", "1", "1"],
                ["\(Self.peerNode):2", "0", "1", "error", "boom", nil, nil, nil, "1", "0"],
                ["\(Self.peerNode):3", "1", "1", "ok", nil, nil, nil, "1", "1", "0"],
            ])
            #expect(try await journal.recordedResult(inboundID: ids[0]) == .ok(response: ["answer": 42]))
            try await expectIDsReserved(journal)
        }
    }

    @Test func aMessageHandledAgainKeepsBothInvocationsAndALaterStatusLeavesThemAsTheyWere() async throws {
        try await withJournal { journal, _ in
            let id = try await journal.appendInbound([inbound(1)])[0].id
            for response: MeshData in [["run": 1], ["run": 2]] {
                try await journal.write { context in
                    try Journal.writeInboundStatus(id: id, commandID: 7, .handled, attempts: 1, error: nil,
                                                   invocation: .init(inboundID: id, handlerIndex: 0, attempt: 1, startedAt: 5, outcome: .ok,
                                                                     response: response),
                                                   context: context)
                }
            }
            // The message goes back to the queue (as a re-queue does): its recorded invocations do not change.
            try await journal.write { context in
                try Journal.writeInboundStatus(id: id, commandID: 7, .received, attempts: 0, error: nil, context: context)
            }
            let rows = try await journal.read { db in
                try db.rows("""
                    SELECT handler_index, attempt, started_at_ms, finished_at_ms IS NOT NULL, outcome, response_json FROM mesh_invocations ORDER BY id
                    """)
            }
            #expect(rows == [["0", "1", "5", "1", "ok", #"{"run":1}"#], ["0", "1", "5", "1", "ok", #"{"run":2}"#]])
            #expect(try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_invocation") } == 1)
            // The recorded result is the last chain's.
            #expect(try await journal.recordedResult(inboundID: id) == .ok(response: ["run": 2]))
        }
    }

    @Test func invocationIDsAreNeverReusedAcrossRollbacksRestartsAndPruning() async throws {
        struct Planned: Error {}
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("node.sqlite")
        let messages = try (1...4).map { try inbound($0) }
        func handle(_ target: Journal, seq: UInt64) async throws -> Int64 {
            let appended = try await target.appendInbound([messages[Int(seq) - 1]])
            let id = appended[0].id
            try await target.write { context in
                try Journal.writeInboundStatus(id: id, commandID: 7, .handled, attempts: 1, error: nil,
                                               invocation: .init(inboundID: id, handlerIndex: 0, attempt: 1, startedAt: 1, outcome: .ok),
                                               context: context)
            }
            return try await target.read { db in try db.scalarInt("SELECT invocation_id FROM mesh_inbound_state WHERE id = \(id)") } ?? 0
        }

        var journal = try await Journal.open(path: path, logger: .test)
        let first = try await handle(journal, seq: 1)
        // A job that takes more ids than one reservation covers, then fails: its savepoint undoes the reservation it
        // recorded, and the next id must be covered by a new one.
        await #expect(throws: Planned.self) {
            try await journal.write(savepoint: true) { context in
                for _ in 0..<(WorkerContext.invocationIDBlock + 100) { _ = try context.nextInvocationID() }
                throw Planned()
            }
        }
        let second = try await handle(journal, seq: 2)
        #expect(second > first + WorkerContext.invocationIDBlock)
        try await expectIDsReserved(journal)
        await journal.close()

        journal = try await Journal.open(path: path, logger: .test)
        let third = try await handle(journal, seq: 3)
        #expect(third > second)
        try await expectIDsReserved(journal)
        // Pruning every row leaves nothing to take a maximum from; the next open still starts above every id used.
        _ = try await journal.write { context in try context.db.execute("DELETE FROM mesh_inbound") }
        #expect(try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_invocation_rows") } == 0)
        await journal.close()

        journal = try await Journal.open(path: path, logger: .test)
        let fourth = try await handle(journal, seq: 4)
        #expect(fourth > third)
        try await expectIDsReserved(journal)
        await journal.close()
    }
}
