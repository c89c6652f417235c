import Foundation
import MeshCore
import Testing
@testable import MeshJournal

/// The `mesh-wal-batch` VFS of the write connection (``JournalConfiguration/batchesWALWrites``): a transaction's
/// WAL frames reach the file in one write, and what other connections see — at once after the commit — is what
/// SQLite's default VFS would give them. (A SIGKILL right after a commit is the crash matrix's business: its
/// `mesh node` children run with the default configuration, hence through this VFS.)
@Suite struct WALBatchingTests {
    static func counters(_ journal: Journal) async throws -> (appends: Int64, writes: Int64)? {
        try await journal.write(savepoint: false) { $0.db.walWriteCounters }
    }

    @Test func eachCommitReachesTheWALInOneWriteAndIsVisibleAtOnce() async throws {
        try await withJournal { journal, _ in
            let external = try externalConnection(journal.path)
            let before = try #require(try await Self.counters(journal), "the writer is not on the batching VFS")
            let commitsBefore = journal.writeStatistics.transactions
            for i in 1...20 {
                let message = try OutboundMessage(commandID: 1024, kind: .send, peer: "127.0.0.1:8001",
                                                  data: ["i": .int64(Int64(i)), "body": .bytes([UInt8](repeating: 7, count: 3000))])
                let seq = try await journal.appendOutbound(message)
                // Another connection (an operator's sqlite3 shell) sees the row as soon as the append returns.
                #expect(try external.scalarInt("SELECT count(*) FROM mesh_outbound WHERE seq = \(seq)") == 1)
            }
            let commits = journal.writeStatistics.transactions - commitsBefore
            let after = try #require(try await Self.counters(journal))
            let (appends, writes) = (after.appends - before.appends, after.writes - before.writes)
            // SQLite wrote every frame as a header and a page, two or more frames per commit (row, state, index).
            #expect(appends >= 4 * Int64(commits), "appends \(appends), commits \(commits)")
            // One write per commit (plus one if the WAL restarted meanwhile: its header is synced on its own).
            #expect(writes >= Int64(commits) && writes <= Int64(commits) + 1, "writes \(writes), commits \(commits)")
            #expect(try external.scalarText("PRAGMA integrity_check") == "ok")
        }
    }

    @Test func aTransactionLargerThanTheBufferIsWrittenWhole() async throws {
        try await withJournal { journal, _ in
            let before = try #require(try await Self.counters(journal))
            // ~50 pages of 8 KiB in one transaction: more than one buffer's worth (128 KiB).
            try await journal.write { context in
                try context.db.execute("CREATE TABLE big(id INTEGER PRIMARY KEY, body BLOB)")
                try context.db.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 40) INSERT INTO big SELECT i, zeroblob(10000) FROM n")
            }
            let after = try #require(try await Self.counters(journal))
            #expect(after.writes - before.writes >= 3, "\(after.writes - before.writes) writes for ~400 KB")
            let external = try externalConnection(journal.path)
            #expect(try external.scalarInt("SELECT count(*) FROM big WHERE length(body) = 10000") == 40)
            #expect(try external.scalarText("PRAGMA integrity_check") == "ok")
        }
    }

    @Test func turnedOffTheWriterUsesSQLitesDefaultVFS() async throws {
        try await withJournal(configuration: .init(batchesWALWrites: false)) { journal, _ in
            _ = try await journal.appendOutbound(try OutboundMessage(commandID: 1, kind: .send, peer: "127.0.0.1:8001", data: ["a": 1]))
            #expect(try await Self.counters(journal) == nil)
            #expect(try externalConnection(journal.path).scalarInt("SELECT count(*) FROM mesh_outbound") == 1)
        }
    }
}
