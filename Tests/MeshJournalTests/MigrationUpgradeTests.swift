import Foundation
import MeshCore
import MeshMigrations
import Testing
@testable import MeshJournal

/// A journal written by an older schema opens, migrates, and keeps every message and its state.
@Suite struct MigrationUpgradeTests {
    @Test func version1JournalUpgradesWithoutLosingMessagesOrState() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("v1.sqlite")
        do {
            let db = try SQLiteConnection(path: path, mode: .readWriteCreate)
            try db.execute("PRAGMA journal_mode = WAL")
            let applied = try Migrator(migrations: [MeshMigrations.all[0]]).migrate(db, nowMs: 1)
            #expect(applied.map(\.id) == [1])
            try db.execute("""
                INSERT INTO mesh_node VALUES (1, '0123456789abcdef0123456789abcdef', 3, 2, 100, 100);
                INSERT INTO mesh_outbound(seq, command_id, kind, peer, status, attempts, created_at, completed_at, payload)
                    VALUES (1, 1024, 0, 'b:1', 1, 1, 1000, 1500, x'01'),
                           (2, 1024, 0, 'b:1', 0, 4, 2000, NULL, x'01');
                INSERT INTO mesh_peer(node_id, first_seen, last_seen) VALUES ('ffffffffffffffffffffffffffffffff', 0, 0);
                INSERT INTO mesh_inbound(origin, origin_seq, command_id, kind, peer, status, attempts, created_at, completed_at, error, payload)
                    VALUES (1, 7, 1024, 0, 'c:1', 1, 1, 3000, 3100, NULL, x'01'),
                           (1, 8, 1024, 0, 'c:1', 2, 2, 4000, NULL, 'boom', x'01');
                INSERT INTO mesh_invocation(inbound_id, handler_index, attempt, started_at, finished_at, outcome)
                    VALUES (1, 0, 1, 3050, 3090, 0);
                """)
        }

        let journal = try await Journal.open(path: path, logger: .test)
        #expect(journal.appliedMigrations == Array(MeshMigrations.all.map(\.id).dropFirst()))
        let pending = try await journal.pendingOutbound()
        #expect(pending.map(\.seq) == [2])
        #expect(pending.first?.attempts == 4)
        let open = try await journal.openInbound()
        #expect(open.map(\.originSeq) == [8])
        #expect(open.first?.status == .failed)
        #expect(open.first?.error == "boom")
        let rows = try await journal.read { db in
            try db.rows("SELECT direction, origin_seq, status, attempts, completed_at_ms FROM mesh_messages ORDER BY direction, origin_seq")
        }
        #expect(rows == [
            ["in", "7", "handled", "1", "3100"], ["in", "8", "failed", "2", nil],
            ["out", "1", "acked", "1", "1500"], ["out", "2", "pending", "4", nil],
        ])
        #expect(try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_invocations") } == 1)
        // New writes after the upgrade continue the sequence.
        let seq = try await journal.appendOutbound(OutboundMessage(commandID: 1, kind: .send, peer: "b:1", data: ["x": .int64(1)]))
        #expect(seq == 3)
        #expect(try await journal.markOutboundAcked([2, 3]) == 2)
        #expect(try await journal.read { db in try db.scalarText("PRAGMA integrity_check") } == "ok")
        #expect(try await journal.read { db in try db.rows("PRAGMA foreign_key_check") }.isEmpty)
        await journal.close()
    }
}
