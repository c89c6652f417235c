import Foundation
import MeshCore
import Testing
@testable import MeshJournal

/// Schema v14: outbound sequences are reserved ahead by synced commits, so that a power loss, which may take the
/// last commits of a `.normal` journal (and the messages in them a peer already has), never makes the next start
/// hand out one of their sequences again — a peer would drop the new message as a duplicate of the lost one.
///
/// A power loss is modelled by copying the journal's files right after its last synced commit: what is on the disk
/// then is at least that. Whether that commit was synced is checked on the write connection's sync counter.
@Suite struct SequenceReservationTests {
    static func message(_ i: Int) throws -> OutboundMessage {
        try OutboundMessage(commandID: 1024, kind: .send, peer: "127.0.0.1:8001", data: ["i": .int64(Int64(i))])
    }

    /// The syncs of the WAL the write connection asked for, read between transactions (a transaction of its own
    /// could be one that reserves).
    static func syncs(_ journal: Journal) async throws -> Int64 {
        try #require(try await journal.writer.submit(outsideTransaction: true) { $0.db.walWriteCounters }).syncs
    }

    static func reserved(_ path: String) throws -> Int64? {
        try externalConnection(path).scalarInt("SELECT out_seq_reserved FROM mesh_node")
    }

    /// The files a power loss right now could leave, copied to `directory` (the WAL's index is rebuilt from the WAL).
    static func copyAsAfterPowerLoss(_ path: String, to directory: TemporaryDirectory) throws -> String {
        let copy = directory.file("copy.sqlite")
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        try FileManager.default.copyItem(atPath: path + "-wal", toPath: copy + "-wal")
        return copy
    }

    @Test func aStartAfterAPowerLossHandsOutNoSequenceALostCommitHad() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("a.sqlite")
        let first = try await Journal.open(path: path, configuration: .init(durability: .normal), logger: .test)
        let epoch = first.identity.bootEpoch
        // The start's commit is synced although the durability is `.normal`: the copy is what a power loss leaves.
        let startSyncs = try await Self.syncs(first)
        let copy = try Self.copyAsAfterPowerLoss(path, to: dir)
        // These commits are not synced: a power loss may take them after their messages reached a peer.
        let lost = try await first.appendOutbound([try Self.message(1), try Self.message(2), try Self.message(3)])
        #expect(try await Self.syncs(first) == startSyncs, "a commit of messages was synced under .normal")
        await first.close()

        let restarted = try await Journal.open(path: copy, configuration: .init(durability: .normal), logger: .test)
        #expect(try await restarted.pendingOutbound().isEmpty, "the copy holds messages sent after it was taken")
        let next = try await restarted.appendOutbound(try Self.message(4))
        #expect(next > lost.max() ?? 0, "sequence \(next) handed out again after a power loss took \(lost)")
        #expect(restarted.identity.bootEpoch > epoch)
        await restarted.close()

        // Closed cleanly, the journal gives back the rest of its reservation: the next start continues right after.
        let reopened = try await Journal.open(path: path, configuration: .init(durability: .normal), logger: .test)
        #expect(try await reopened.appendOutbound(try Self.message(5)) == (lost.max() ?? 0) + 1)
        await reopened.close()
    }

    /// The copy above relies on the start's commit being synced: count its syncs, on a reopen (which writes only
    /// the start; a first open writes the schema too).
    @Test func theStartIsSyncedUnderNormalDurability() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("a.sqlite")
        let first = try await Journal.open(path: path, configuration: .init(durability: .normal), logger: .test)
        _ = try await first.appendOutbound(try Self.message(1))
        await first.close()
        let reopened = try await Journal.open(path: path, configuration: .init(durability: .normal), logger: .test)
        let syncs = try await Self.syncs(reopened)
        await reopened.close()
        // A reopen's WAL starts over: SQLite syncs its header at the first commit (one sync, made at NORMAL too);
        // the start's commit, made at FULL, syncs its frames as well.
        #expect(syncs >= 2, "the start's commit was not synced (\(syncs) syncs)")
    }

    /// Under `.normal`, a transaction that starts with less than half a reservation left is synced and records a
    /// new one; the others are not synced. Every sequence handed out stays at or below the recorded reservation.
    @Test func theReservationMovesInSyncedCommitsAheadOfEverySequence() async throws {
        var configuration = JournalConfiguration(durability: .normal)
        configuration.outSeqReservation = 64
        try await withJournal(configuration: configuration) { journal, _ in
            #expect(try Self.reserved(journal.path) == 64)
            var last: UInt64 = 0
            for round in 1...6 {
                let reservedBefore = try #require(try Self.reserved(journal.path))
                let lowBefore = reservedBefore - Int64(last) < 32
                let before = try await Self.syncs(journal)
                let seqs = try await journal.appendOutbound((0..<20).map { try Self.message(round * 100 + $0) })
                last = try #require(seqs.last)
                let reserved = try #require(try Self.reserved(journal.path))
                #expect(Int64(last) <= reserved, "round \(round): sequence \(last) above the reservation \(reserved)")
                if lowBefore {
                    #expect(reserved == Int64(seqs[0]) - 1 + 64, "round \(round)")
                    #expect(try await Self.syncs(journal) > before, "round \(round): the reserving commit was not synced")
                } else {
                    #expect(reserved == reservedBefore, "round \(round)")
                    #expect(try await Self.syncs(journal) == before, "round \(round): a commit was synced without reserving")
                }
            }
            #expect(last == 120)
        }
    }

    /// A transaction that is not synced hands out at most half a reservation: a job that runs past it is run
    /// again in a synced transaction that records a new one (under `.full`, where the commit is synced anyway, it
    /// records it in place). The caller sees its messages journaled, under sequences below the reservation.
    @Test(arguments: [JournalConfiguration.Durability.normal, .full])
    func aTransactionPastTheReservation(durability: JournalConfiguration.Durability) async throws {
        var configuration = JournalConfiguration(durability: durability)
        configuration.outSeqReservation = 64
        try await withJournal(configuration: configuration) { journal, _ in
            let before = try await Self.syncs(journal)
            let seqs = try await journal.appendOutbound(try (1...65).map { try Self.message($0) })
            #expect(seqs == Array(1...65))
            #expect(try #require(try Self.reserved(journal.path)) >= 65)
            #expect(try await Self.syncs(journal) > before)
            #expect(try externalConnection(journal.path).scalarInt("SELECT count(*) FROM mesh_outbound") == 65)
            // Several calls at once, which the writer may gather into one transaction: every message journaled once,
            // under its own sequence, all at or below the reservation.
            async let a = journal.appendOutbound(try (0..<30).map { try Self.message(100 + $0) })
            async let b = journal.appendOutbound(try (0..<70).map { try Self.message(200 + $0) })
            async let c = journal.appendOutbound(try (0..<5).map { try Self.message(300 + $0) })
            let all = try await a + b + c
            #expect(Set(all).count == 105)
            #expect(Set(all).isDisjoint(with: seqs))
            #expect(Int64(all.max() ?? 0) <= (try #require(try Self.reserved(journal.path))))
            #expect(try externalConnection(journal.path).scalarInt("SELECT count(*) FROM mesh_outbound") == 170)
        }
    }
}
