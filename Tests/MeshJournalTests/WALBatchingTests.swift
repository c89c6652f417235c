import Foundation
import MeshCore
import Testing
@testable import MeshJournal

/// The `mesh-wal-batch` VFS of the write connection (``JournalConfiguration/batchesWALWrites``): a transaction's
/// WAL frames reach the file in one write, and what other connections see — at once after the commit — is what
/// SQLite's default VFS would give them. (A SIGKILL right after a commit is the crash matrix's business: its
/// `mesh node` children run with the default configuration, hence through this VFS.)
@Suite struct WALBatchingTests {
    static func counters(_ journal: Journal) async throws -> (appends: Int64, writes: Int64, syncs: Int64)? {
        try await journal.write(savepoint: false) { $0.db.walWriteCounters }
    }

    /// Under `.full`, a transaction of writes nobody waits on (here acknowledgement marks) commits without a sync on
    /// the writer: the thread that grows the WAL ahead syncs it when its time is up (here at once). A write somebody
    /// awaits still syncs in its own commit, before it is reported — also right after such a transaction. With
    /// `.normal` nothing syncs and nothing is asked of that thread.
    @Test(arguments: [JournalConfiguration.Durability.full, .normal])
    func aCommitNobodyWaitsOnIsSyncedOffTheWriter(durability: JournalConfiguration.Durability) async throws {
        try await withJournal(configuration: .init(durability: durability, deferredCommitMicroseconds: 0)) { journal, _ in
            let external = try externalConnection(journal.path)
            let seqs = try await journal.appendOutbound([try Self.smallMessage(1), try Self.smallMessage(2)])
            try await journal.write(savepoint: false) { $0.relaxedSyncWithinMicroseconds = 0 }
            let before = try #require(try await Self.counters(journal))
            let growthBefore = try #require(try await Self.growth(journal), "no growth ahead")
            #expect(try await journal.markOutboundAcked([seqs[0]]) == 1)
            let afterMark = try #require(try await Self.counters(journal))
            let growthAfterMark = try #require(try await Self.growth(journal))
            #expect(afterMark.writes > before.writes, "the acknowledgement's frames were not written")
            #expect(afterMark.syncs == before.syncs, "the writer synced a commit nobody waits on")
            #expect(growthAfterMark.backgroundSyncs == growthBefore.backgroundSyncs + (durability == .full ? 1 : 0))
            #expect(try external.scalarInt("SELECT count(*) FROM mesh_outbound_state WHERE seq = \(seqs[0]) AND status = 1") == 1)
            // The next awaited write syncs in its commit again.
            _ = try await journal.appendOutbound(try Self.smallMessage(3))
            let afterAppend = try #require(try await Self.counters(journal))
            #expect(afterAppend.syncs - afterMark.syncs == (durability == .full ? 1 : 0))
            #expect(try #require(try await Self.growth(journal)).backgroundSyncs == growthAfterMark.backgroundSyncs)
        }
    }

    /// The sync such a commit asked for is left out when an awaited commit syncs the WAL before its time is up (that
    /// sync covered the same frames): while messages flow, no second sync runs beside the writer's.
    @Test func anAwaitedCommitsSyncStandsInForTheBackgroundOne() async throws {
        try await withJournal(configuration: .init(durability: .full, deferredCommitMicroseconds: 0)) { journal, _ in
            let seqs = try await journal.appendOutbound([try Self.smallMessage(1), try Self.smallMessage(2)])
            try await journal.write(savepoint: false) { $0.relaxedSyncWithinMicroseconds = 600_000_000 }
            let before = try #require(try await Self.counters(journal))
            let growthBefore = try #require(try await Self.growth(journal), "no growth ahead")
            #expect(try await journal.markOutboundAcked([seqs[0]]) == 1)
            _ = try await journal.appendOutbound(try Self.smallMessage(3))
            // Waits until the grower made or skipped the sync asked for: the append's sync came first.
            let growth = try #require(try await Self.growth(journal))
            #expect(growth.skippedSyncs == growthBefore.skippedSyncs + 1)
            #expect(growth.backgroundSyncs == growthBefore.backgroundSyncs)
            #expect(try #require(try await Self.counters(journal)).syncs == before.syncs + 1)
        }
    }

    /// A commit nobody waits on, after an earlier one whose sync request a writer sync already covered but the grower
    /// had not yet seen (paused here to hold that order): the new request is not folded into the covered one, which
    /// the grower skips, so the new frames are still synced by the grower.
    @Test func aRequestAfterACoveredOneIsSyncedOnItsOwn() async throws {
        try await withJournal(configuration: .init(durability: .full, deferredCommitMicroseconds: 0)) { journal, _ in
            let seqs = try await journal.appendOutbound([try Self.smallMessage(1), try Self.smallMessage(2)])
            let growthBefore = try #require(try await Self.growth(journal), "no growth ahead")
            try await journal.write(savepoint: false) {
                $0.relaxedSyncWithinMicroseconds = 600_000_000
                #expect($0.db.pauseWALGrower(true))
            }
            #expect(try await journal.markOutboundAcked([seqs[0]]) == 1)  // asks for a sync within 10 minutes
            _ = try await journal.appendOutbound(try Self.smallMessage(3))  // the writer's sync covers it
            try await journal.write(savepoint: false) { $0.relaxedSyncWithinMicroseconds = 0 }
            #expect(try await journal.markOutboundAcked([seqs[1]]) == 1)  // asks again, due at once
            try await journal.write(savepoint: false) { _ = $0.db.pauseWALGrower(false) }
            let growth = try #require(try await Self.growth(journal))
            #expect(growth.backgroundSyncs == growthBefore.backgroundSyncs + 1, "the second request's frames were not synced")
            #expect(growth.skippedSyncs == growthBefore.skippedSyncs)
        }
    }

    static func smallMessage(_ i: Int) throws -> OutboundMessage {
        try OutboundMessage(commandID: 1024, kind: .send, peer: "127.0.0.1:8001", data: ["i": .int64(Int64(i))])
    }

    /// The WAL's growth ahead, once its thread has done what it was asked.
    static func growth(_ journal: Journal) async throws -> (steps: Int64, allocated: Int64, backgroundSyncs: Int64, skippedSyncs: Int64)? {
        try await journal.write(savepoint: false) { $0.db.walGrowth(waitingForIdle: true) }
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

    static func fileSize(_ path: String) throws -> Int64 {
        Int64(try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int))
    }

    /// The bytes of the journal's WAL log (header and frames), as a passive checkpoint reports its frames.
    static func logBytes(_ journal: Journal) async throws -> Int64 {
        let frameBytes = try #require(try externalConnection(journal.path).scalarInt("PRAGMA page_size")) + 24
        return 32 + Int64(try await journal.checkpoint(.passive).log) * frameBytes
    }

    /// The journal's database and WAL files copied while it is open (no `-shm`: as a power loss leaves them), and
    /// a connection to the copy, which recovers the log from the WAL file; with the copied WAL file's size.
    static func recoveredCopy(of journal: Journal, in dir: TemporaryDirectory) throws -> (connection: SQLiteConnection, walBytes: Int64) {
        let copy = dir.file("image.sqlite")
        try FileManager.default.copyItem(atPath: journal.path, toPath: copy)
        try FileManager.default.copyItem(atPath: journal.path + "-wal", toPath: copy + "-wal")
        let walBytes = try fileSize(copy + "-wal")
        return (try externalConnection(copy, readOnly: false), walBytes)
    }

    static func appendMessages(_ journal: Journal, count: Int) async throws {
        for i in 1...count {
            _ = try await journal.appendOutbound(try OutboundMessage(
                commandID: 1024, kind: .send, peer: "127.0.0.1:8001",
                data: ["i": .int64(Int64(i)), "body": .bytes([UInt8](repeating: 7, count: 3000))]))
        }
    }

    /// A thread keeps the WAL file ahead of its log with zeros, so commits overwrite blocks the file has (with
    /// `.full` the zeros are synced too); without the batching VFS the file grows as written.
    @Test(arguments: [JournalConfiguration.Durability.full, .normal])
    func theWALFileRunsAheadOfItsLog(durability: JournalConfiguration.Durability) async throws {
        try await withJournal(configuration: .init(durability: durability)) { journal, _ in
            try await Self.appendMessages(journal, count: 30)
            let growth = try #require(try await journal.write(savepoint: false) { $0.db.walGrowth(waitingForIdle: true) },
                                      "no growth ahead")
            let size = try Self.fileSize(journal.path + "-wal")
            #expect(growth.steps > 0)
            #expect(size == growth.allocated)
            // A log this short (about 1.5 MB) gets room as long as itself ahead: at least half of that is left.
            let log = try await Self.logBytes(journal)
            #expect(log > 1_000_000 && size >= log + log / 2, "WAL file of \(size) bytes for a log of \(log)")
            #expect(try externalConnection(journal.path).scalarInt("SELECT count(*) FROM mesh_outbound") == 30)
        }
        try await withJournal(configuration: .init(durability: durability, batchesWALWrites: false)) { journal, _ in
            try await Self.appendMessages(journal, count: 30)
            #expect(try await journal.write(savepoint: false) { $0.db.walGrowth() } == nil)
            let size = try Self.fileSize(journal.path + "-wal")
            #expect(size < Journal.walGrowthAheadBytes, "WAL file of \(size) bytes")
        }
    }

    /// The files as a power loss would leave them (a copy taken while the journal is open, without its shared
    /// memory index): recovery reads the WAL's frames up to its zero-filled tail and finds every commit.
    @Test func aWALWithAZeroFilledTailRecoversEveryCommit() async throws {
        try await withJournal { journal, dir in
            try await Self.appendMessages(journal, count: 40)
            let growth = try #require(try await journal.write(savepoint: false) { $0.db.walGrowth(waitingForIdle: true) })
            let (recovered, walBytes) = try Self.recoveredCopy(of: journal, in: dir)
            #expect(walBytes == growth.allocated)
            #expect(try recovered.scalarInt("SELECT count(*) FROM mesh_outbound") == 40)
            #expect(try recovered.scalarInt("SELECT max(seq) FROM mesh_outbound") == 40)
            #expect(try recovered.scalarText("PRAGMA integrity_check") == "ok")
        }
    }

    /// A checkpoint that truncates the WAL file to nothing, then more commits: the file grows ahead again from its
    /// new start, and the log the copy recovers holds exactly the commits after the truncation, on top of the
    /// database file's copy of the earlier ones.
    @Test func growthAheadStartsOverAfterTheWALIsTruncated() async throws {
        try await withJournal(configuration: .init(durability: .full)) { journal, dir in
            try await Self.appendMessages(journal, count: 20)
            let before = try #require(try await journal.write(savepoint: false) { $0.db.walGrowth(waitingForIdle: true) })
            try await journal.checkpoint(.truncate)
            #expect(try Self.fileSize(journal.path + "-wal") == 0)
            try await Self.appendMessages(journal, count: 20)
            let growth = try #require(try await journal.write(savepoint: false) { $0.db.walGrowth(waitingForIdle: true) })
            let size = try Self.fileSize(journal.path + "-wal")
            #expect(growth.steps > before.steps)
            let log = try await Self.logBytes(journal)
            #expect(size == growth.allocated && size >= log + log / 2, "WAL file of \(size) bytes for a log of \(log)")
            let recovered = try Self.recoveredCopy(of: journal, in: dir).connection
            #expect(try recovered.scalarInt("SELECT count(*) FROM mesh_outbound") == 40)
            #expect(try recovered.scalarText("PRAGMA integrity_check") == "ok")
        }
    }
}
