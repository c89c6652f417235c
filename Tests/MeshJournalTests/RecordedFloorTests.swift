import MeshCore
import Testing
@testable import MeshJournal

/// Schema v13: the floors of the unsettled messages are recorded, and an open starts its walks there.
@Suite struct RecordedFloorTests {
    private func inbound(_ seq: UInt64) throws -> InboundMessage { try JournalWriteTests().inbound(seq, command: 9) }

    @Test func anOpenStartsItsWalksAtTheRecordedFloors() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("node.sqlite")
        var journal = try await Journal.open(path: path, logger: .test)
        var seqs: [UInt64] = []
        var ids: [Int64] = []
        for i in 1...3 {
            seqs.append(try await journal.appendOutbound(OutboundMessage(commandID: 9, kind: .send, peer: "p", data: ["i": .int64(Int64(i))])))
            ids.append(try await journal.appendInbound([try inbound(UInt64(i))])[0].id)
        }
        try await journal.markOutboundAcked([seqs[0], seqs[1]])
        try await journal.setInboundStatus(id: ids[0], .handled, attempts: 1)
        try await journal.setInboundStatus(id: ids[1], .handled, attempts: 1)
        try await journal.persistFloors()
        #expect(try await journal.read { db in try db.rows("SELECT outbound_floor, inbound_floor FROM mesh_node") }
            == [["\(seqs[2])", "\(ids[2])"]])
        await journal.close()

        journal = try await Journal.open(path: path, logger: .test)
        // Below the floors nothing is read again: a state row deleted there (which would make its message look
        // unsettled to a walk from the first key) goes unseen.
        let (belowSeq, belowID) = (seqs[0], ids[0])
        _ = try await journal.write { context in
            try context.db.execute("DELETE FROM mesh_outbound_state WHERE seq = \(belowSeq)")
            try context.db.execute("DELETE FROM mesh_inbound_state WHERE id = \(belowID)")
        }
        #expect(try await journal.pendingOutbound().map(\.seq) == [seqs[2]])
        #expect(try await journal.openInbound().map(\.id) == [ids[2]])
        // Settled since: the next record moves up; nothing moved: nothing is written.
        try await journal.markOutboundAcked([seqs[2]])
        try await journal.persistFloors()
        #expect(try await journal.read { db in try db.rows("SELECT outbound_floor, inbound_floor FROM mesh_node") }
            == [["\(seqs[2] + 1)", "\(ids[2])"]])
        let commits = journal.writeStatistics.transactions
        try await journal.persistFloors()
        #expect(journal.writeStatistics.transactions == commits)
        await journal.close()
    }

    @Test func inboundIDsAreNeverReusedAfterPruningTheNewestRows() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("node.sqlite")
        var journal = try await Journal.open(path: path, logger: .test)
        var ids: [Int64] = []
        for i in 1...3 {
            let id = try await journal.appendInbound([try inbound(UInt64(i))])[0].id
            try await journal.setInboundStatus(id: id, .handled, attempts: 1)
            ids.append(id)
        }
        #expect(try await journal.pruneFinished(completedBeforeMs: WallClock.nowMs() + 60_000).inbound == 3)
        #expect(try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_inbound") } == 0)
        // In this run (the writer's counter) and after a restart (mesh_node.last_in_id, kept by a trigger).
        #expect(try await journal.appendInbound([try inbound(4)])[0].id == ids[2] + 1)
        #expect(try await journal.pruneFinished(completedBeforeMs: WallClock.nowMs() + 60_000).inbound == 0)  // received
        let four = ids[2] + 1
        _ = try await journal.write { context in try context.db.execute("DELETE FROM mesh_inbound WHERE id = \(four)") }
        await journal.close()
        journal = try await Journal.open(path: path, logger: .test)
        #expect(try await journal.appendInbound([try inbound(5)])[0].id == ids[2] + 2)
        await journal.close()
    }
}
