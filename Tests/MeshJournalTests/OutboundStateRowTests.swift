import MeshCore
import Testing
@testable import MeshJournal

/// Schema v11: a pending outbound message has no state row; its first change writes one.
@Suite struct OutboundStateRowTests {
    private func stateRows(_ journal: Journal) async throws -> [[String?]] {
        try await journal.read { db in try db.rows("SELECT seq, status, attempts, completed_at IS NOT NULL, error FROM mesh_outbound_state ORDER BY seq") }
    }

    private func audit(_ journal: Journal) async throws -> [[String?]] {
        try await journal.read { db in try db.rows("SELECT id, status, attempts, completed_at IS NOT NULL, error FROM mesh_messages WHERE direction = 'out' ORDER BY id") }
    }

    @Test func aJournaledMessageIsPendingWithoutAStateRowUntilItChanges() async throws {
        try await withJournal { journal, _ in
            var seqs: [UInt64] = []
            for i in 0..<4 {
                seqs.append(try await journal.appendOutbound(OutboundMessage(commandID: 7, kind: .send, peer: "p", data: ["i": .int64(Int64(i))])))
            }
            #expect(try await stateRows(journal).isEmpty)
            #expect(try await journal.outbound(seq: seqs[0])?.status == .pending)
            #expect(try await journal.outbound(seq: seqs[0])?.attempts == 1)
            #expect(try await journal.pendingOutboundCount() == 4)
            #expect(try await journal.pendingOutbound().map(\.seq) == seqs)
            #expect(try await journal.pendingOutboundCommandIDs() == [7])
            #expect(try await journal.pendingOutboundPeers() == ["p"])

            // Each change writes the row the first time and changes it after; a finished message stays finished.
            #expect(try await journal.markOutboundAcked([seqs[0]]) == 1)
            #expect(try await journal.markOutboundAcked([seqs[0]]) == 0)
            #expect(try await journal.markOutboundFailed(seqs[1], error: "gave up"))
            #expect(try await !journal.markOutboundFailed(seqs[0], error: "late"))
            try await journal.recordOutboundAttempts([seqs[2]])
            try await journal.recordOutboundAttempts([seqs[2]])
            #expect(try await journal.markOutboundAcked([seqs[2], 999]) == 1)
            // A sequence without its message's row changes nothing (the command ID's subquery is NULL).
            #expect(try await !journal.markOutboundFailed(999, error: "unknown"))
            try await journal.recordOutboundAttempts([999])
            #expect(try await stateRows(journal) == [
                ["\(seqs[0])", "1", "1", "1", nil],
                ["\(seqs[1])", "2", "1", "1", "gave up"],
                ["\(seqs[2])", "1", "3", "1", nil],
            ])
            #expect(try await audit(journal) == [
                ["\(seqs[0])", "acked", "1", "1", nil],
                ["\(seqs[1])", "failed", "1", "1", "gave up"],
                ["\(seqs[2])", "acked", "3", "1", nil],
                ["\(seqs[3])", "pending", "1", "0", nil],
            ])
            #expect(try await journal.pendingOutbound().map(\.seq) == [seqs[3]])
            #expect(try await journal.pendingOutboundCount() == 1)
            #expect(try await journal.read { db in try db.rows("PRAGMA foreign_key_check") }.isEmpty)
        }
    }

    /// A run of consecutive acknowledgements is one statement: it acknowledges the pending messages of the run,
    /// whether they have a state row (a resend) or not, leaves a failed or acknowledged one as it was, and counts
    /// each change once (duplicates and sequences without a message change nothing).
    @Test func aRunOfAcknowledgementsChangesEachPendingMessageOnce() async throws {
        try await withJournal { journal, _ in
            var seqs: [UInt64] = []
            for i in 0..<10 {
                seqs.append(try await journal.appendOutbound(OutboundMessage(commandID: 3, kind: .send, peer: "p", data: ["i": .int64(Int64(i))])))
            }
            try await journal.recordOutboundAttempts([seqs[2]])
            #expect(try await journal.markOutboundFailed(seqs[3], error: "gave up"))
            #expect(try await journal.markOutboundAcked([seqs[4]]) == 1)
            // seqs[0...7] in a shuffled order with a duplicate, then a short run, then a sequence without a message.
            let acks = [seqs[5], seqs[0], seqs[7], seqs[1], seqs[6], seqs[2], seqs[4], seqs[3], seqs[0], seqs[9], 9_999]
            #expect(try await journal.markOutboundAcked(acks) == 7)  // 0, 1, 2, 5, 6, 7 and 9; 3 failed, 4 acked already
            #expect(try await audit(journal).map { [$0[1], $0[2]] } == [
                ["acked", "1"], ["acked", "1"], ["acked", "2"], ["failed", "1"], ["acked", "1"],
                ["acked", "1"], ["acked", "1"], ["acked", "1"], ["pending", "1"], ["acked", "1"],
            ])
            #expect(try await journal.markOutboundAcked(Array(seqs[0...7])) == 0)
            #expect(try await journal.read { db in try db.rows("PRAGMA foreign_key_check") }.isEmpty)
        }
    }

    @Test func theWalkFindsMessagesWithoutStateRowsBetweenStateRowsAndPrunedGaps() async throws {
        try await withJournal { journal, _ in
            var seqs: [Int64] = []
            for i in 0..<9 {
                seqs.append(Int64(try await journal.appendOutbound(OutboundMessage(commandID: 1, kind: .send, peer: "p", data: ["i": .int64(Int64(i))]))))
            }
            // 0, 1, 6 acknowledged, 4 pending with a state row (from before v11), 1 and 6 then pruned with their state
            // rows; 2, 3, 5, 7, 8 pending without one.
            try await journal.markOutboundAcked([seqs[0], seqs[1], seqs[6]].map { UInt64($0) })
            let (legacy, pruned) = (seqs[4], [seqs[1], seqs[6]])
            _ = try await journal.write { context in
                try context.db.execute("INSERT INTO mesh_outbound_state(seq, command_id, status, attempts) VALUES (\(legacy), 1, 0, 1)")
                try context.db.execute("DELETE FROM mesh_outbound WHERE seq IN (\(pruned[0]), \(pruned[1]))")
            }
            let pending = [2, 3, 4, 5, 7, 8].map { seqs[$0] }
            let (three, five) = (seqs[3], seqs[5])
            let walked = try await journal.read { db in
                var all: [Int64] = [], fromThree: [Int64] = []
                let end = try Journal.walkUnsettled(.outbound, from: 0, db) { all.append($0); return true }
                try Journal.walkUnsettled(.outbound, from: three, db) { fromThree.append($0); return true }
                let stop = try Journal.walkUnsettled(.outbound, from: 0, db) { $0 < five }
                return (all, end, fromThree, stop)
            }
            #expect(walked.0 == pending)
            #expect(walked.1 == seqs[8] + 1)
            #expect(walked.2 == Array(pending.dropFirst()))
            #expect(walked.3 == seqs[5])
            #expect(try await journal.pendingOutbound(limit: 3).map { Int64($0.seq) } == Array(pending.prefix(3)))
            #expect(try await journal.pendingOutbound(afterSeq: UInt64(seqs[4])).map { Int64($0.seq) } == [seqs[5], seqs[7], seqs[8]])
            #expect(try await journal.pendingOutboundCount() == pending.count)
        }
    }

    @Test func aPendingStateRowFromBeforeV11StillReadsPending() async throws {
        try await withJournal { journal, _ in
            let seq = try await journal.appendOutbound(OutboundMessage(commandID: 3, kind: .send, peer: "q", data: [:]))
            // What a v10 journal holds for a message sent once and not yet acknowledged.
            _ = try await journal.write { context in
                try context.db.execute("INSERT INTO mesh_outbound_state(seq, command_id, status, attempts) VALUES (\(seq), 3, 0, 1)")
            }
            #expect(try await journal.pendingOutbound().map(\.seq) == [seq])
            #expect(try await audit(journal) == [["\(seq)", "pending", "1", "0", nil]])
            try await journal.recordOutboundAttempts([seq])
            #expect(try await journal.markOutboundAcked([seq]) == 1)
            #expect(try await audit(journal) == [["\(seq)", "acked", "2", "1", nil]])
            #expect(try await journal.pendingOutboundCount() == 0)
        }
    }
}
