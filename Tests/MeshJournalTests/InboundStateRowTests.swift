import MeshCore
import Testing
@testable import MeshJournal

/// Schema v12: a received message has no state row until its handlers end; the open set reads both forms.
@Suite struct InboundStateRowTests {
    private func inbound(_ seq: UInt64, command: UInt16) throws -> InboundMessage { try JournalWriteTests().inbound(seq, command: command) }

    private func ids(_ rows: [StoredInbound]) -> [Int64] { rows.map(\.id) }

    @Test func theOpenSetHoldsReceivedMessagesWithoutStateRowsAndOpenStateRowsInIDOrder() async throws {
        try await withJournal { journal, _ in
            var id: [Int64] = []
            for seq in 1...6 {
                let result = try await journal.appendInbound([try inbound(UInt64(seq), command: seq % 2 == 0 ? 20 : 10)])[0]
                guard case .inserted(let rowID) = result else { Issue.record("\(result)"); return }
                id.append(rowID)
            }
            #expect(try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_inbound_state") } == 0)
            #expect(try await journal.inbound(id: id[0])?.status == .received)
            #expect(try await journal.inbound(id: id[0])?.attempts == 0)
            #expect(try await ids(journal.openInbound()) == id)
            #expect(try await journal.openInboundCommandIDs() == [10, 20])

            // Handled, failed (open, with a state row), unhandled (open), and one from before v12 (status 0 row).
            try await journal.setInboundStatus(id: id[0], .handled, attempts: 1)
            try await journal.setInboundStatus(id: id[1], .failed, attempts: 1, error: "boom")
            try await journal.setInboundStatus(id: id[2], .unhandled)
            try await journal.setInboundStatus(id: id[4], .handled, attempts: 1)
            let legacy = id[5]
            _ = try await journal.write { context in
                try context.db.execute("INSERT INTO mesh_inbound_state(id, command_id, status) VALUES (\(legacy), 20, 0)")
            }
            let open = try await journal.openInbound()
            #expect(ids(open) == [id[1], id[2], id[3], id[5]])
            #expect(open.map(\.status) == [.failed, .unhandled, .received, .received])
            #expect(try await ids(journal.openInbound(commandID: 20)) == [id[1], id[3], id[5]])
            #expect(try await ids(journal.openInbound(commandID: 10)) == [id[2]])
            // Paged: after an id, a limit, across both forms.
            #expect(try await ids(journal.openInbound(commandID: 20, afterID: id[1], limit: 1)) == [id[3]])
            #expect(try await ids(journal.openInbound(afterID: id[3], limit: 5)) == [id[5]])
            #expect(try await journal.openInboundCommandIDs() == [10, 20])

            // The audit view shows each as it is.
            #expect(try await journal.read { db in
                try db.rows("SELECT status, attempts FROM mesh_messages WHERE direction = 'in' ORDER BY id")
            } == [["handled", "1"], ["failed", "1"], ["unhandled", "0"], ["received", "0"], ["handled", "1"], ["received", "0"]])

            // Once every message has a state row the floor passes them; a new one is found above it.
            try await journal.setInboundStatus(id: id[3], .handled, attempts: 1)
            try await journal.setInboundStatus(id: id[5], .handled, attempts: 1)
            #expect(try await ids(journal.openInbound()) == [id[1], id[2]])
            let later = try await journal.appendInbound([try inbound(7, command: 30)])[0]
            #expect(try await ids(journal.openInbound()) == [id[1], id[2], later.id])
            #expect(try await journal.openInboundCommandIDs() == [10, 20, 30])
            #expect(try await journal.read { db in try db.rows("PRAGMA foreign_key_check") }.isEmpty)
        }
    }

    @Test func aRequestAnsweredBeforeItsStatusGetsAStateRowThatKeepsItOpen() async throws {
        try await withJournal { journal, _ in
            guard case .inserted(let request) = try await journal.appendInbound([try inbound(1, command: 5)])[0] else {
                Issue.record("not inserted"); return
            }
            var response = try OutboundMessage(commandID: 5, kind: .response, peer: "127.0.0.1:8001", data: ["ok": true])
            response.answersInboundID = request
            _ = try await journal.appendOutbound(response)
            let stored = try await journal.inbound(id: request)
            #expect(stored?.isAnswered == true)
            #expect(stored?.status == .received)
            #expect(try await ids(journal.openInbound()) == [request])
        }
    }

    /// The state-row upserts read the command ID from the message's row in a subquery (no statement journal): a
    /// message without its row changes nothing, as the `INSERT … SELECT` form did, and a response to it is refused.
    @Test func aStatusOrAnswerForAMessageWithoutItsRowChangesNothing() async throws {
        try await withJournal { journal, _ in
            guard case .inserted(let id) = try await journal.appendInbound([try inbound(1, command: 5)])[0] else {
                Issue.record("not inserted"); return
            }
            try await journal.setInboundStatus(id: id + 100, .handled, attempts: 1)
            try await journal.setInboundStatus(id: id + 101, .failed, attempts: 2, error: "boom")
            #expect(try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_inbound_state") } == 0)

            var response = try OutboundMessage(commandID: 5, kind: .response, peer: "127.0.0.1:8001", data: ["ok": true])
            response.answersInboundID = id + 100
            await #expect(throws: JournalError.self) { try await journal.appendOutbound(response) }
            #expect(try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_outbound") } == 0)

            // The message's own row still takes both.
            try await journal.setInboundStatus(id: id, .handled, attempts: 1)
            #expect(try await journal.inbound(id: id)?.status == .handled)
            #expect(try await journal.read { db in try db.rows("PRAGMA foreign_key_check") }.isEmpty)
        }
    }
}
