import MeshCore
import MeshJournal
import MeshTransport
import Testing
@testable import Mesh

/// A full disk at either end, end to end (SQLite's `max_page_count` stands in for the disk): the sender sees
/// failures it can act on, nothing half-written is kept, the nodes keep serving, and traffic resumes when space
/// returns.
@Suite struct DiskFullTests {
    static func limitJournal(_ node: MeshNode, extraPages: Int) async throws {
        _ = try await node.journal.write { context in
            let pages = try context.db.scalarInt("PRAGMA page_count") ?? 0
            return try context.db.scalarInt("PRAGMA max_page_count = \(pages + Int64(extraPages))")
        }
    }

    /// Space returns: applied by the writer before its next transaction, even while it retries failed writes.
    static func unlimitJournal(_ node: MeshNode) async throws {
        node.journal.setPageLimit(1_073_741_823)
    }

    @Test func receiverJournalFullRefusesVisiblyAndRecovers() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let handled = Recorder<Int64>()
        let b = try await fixture.start("b")
        try b.handleCommand(5) { data in
            await handled.add(try data.getInt64("i"))
            return nil
        }
        let a = try await fixture.start("a")
        let big = [UInt8](repeating: 0xAB, count: 48 * 1024)
        #expect(await (try await a.send(5, to: b.address, ["i": 0, "blob": .bytes(big)])).outcome() == .confirmed)
        try await Self.limitJournal(b, extraPages: 2)
        // B cannot journal these: it refuses them, so A sees each fail (none is confirmed without being durable).
        // The two spare pages may still have taken the first; whatever happened, the outcome must tell the truth.
        var confirmed: Set<Int64> = [0]
        var refused: Set<Int64> = []
        for i: Int64 in 1...5 {
            switch await (try await a.send(5, to: b.address, ["i": .int64(i), "blob": .bytes(big)])).outcome() {
            case .confirmed: confirmed.insert(i)
            case .failed(let error):
                #expect(error.code == .rejected, "\(error)")
                refused.insert(i)
            case .sent: Issue.record("a reliable message reported sent")
            }
        }
        #expect(refused.count >= 4, "\(refused.count) of 5 refused with two pages to spare")
        try await Self.unlimitJournal(b)
        for i: Int64 in 6...10 {
            #expect(await (try await a.send(5, to: b.address, ["i": .int64(i), "blob": .bytes(big)])).outcome() == .confirmed)
            confirmed.insert(i)
        }
        try await eventually(30) { await handled.items.contains(10) }
        // Per message: confirmed ⇒ journaled at B (once) and handled; refused ⇒ absent from B's journal, never handled.
        let journaled = try await b.journal.rows("SELECT json_extract(payload_json, '$.i') FROM mesh_messages WHERE direction = 'in'")
            .compactMap { $0[0].flatMap { Int64($0) } }
        #expect(journaled.sorted() == confirmed.sorted(), "journaled \(journaled.sorted()), confirmed \(confirmed.sorted())")
        #expect(await handled.items.sorted() == confirmed.sorted())
        #expect(try await b.journal.rows("PRAGMA integrity_check") == [["ok"]])
        await a.shutdown()
        await b.shutdown()
    }

    /// The journal fills up while handlers run: their invocation records and statuses cannot be written. They
    /// are held and retried, in order, until space returns — never dropped (which once left acknowledged messages
    /// `received`, without invocations, until the next restart re-ran them after newer ones).
    @Test func recordsThatCannotBeWrittenWaitForSpaceAndLandInOrder() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let gate = Gate()
        let handled = Recorder<Int64>()
        let big = [UInt8](repeating: 0xEF, count: 64 * 1024)
        let b = try await fixture.start("b")
        try b.handleCommand(5) { data in
            let i = try data.getInt64("i")
            if i == 1 { await gate.wait() }
            await handled.add(i)
            return ["echo": .bytes(big)]  // a 64 KiB invocation record: it needs new pages
        }
        let a = try await fixture.start("a")
        for i in 1...6 { #expect(await (try await a.send(5, to: b.address, ["i": .int64(Int64(i))])).outcome() == .confirmed) }
        // All six are journaled at B; the first handler is held. Now the disk is full.
        try await eventually(30) { try await b.journal.rows("SELECT count(*) FROM mesh_inbound") == [["6"]] }
        try await Self.limitJournal(b, extraPages: 0)
        await gate.open()
        try await eventually(30) { await handled.count == 6 }
        #expect(await handled.items == [1, 2, 3, 4, 5, 6])
        // Nothing of it could be written: still open, no invocation finished (the held one's start is recorded).
        #expect(try await b.journal.rows("SELECT count(*) FROM mesh_invocation_rows WHERE finished_at IS NOT NULL") == [["0"]])
        #expect(try await b.journal.rows("SELECT count(*) FROM mesh_inbound_state WHERE status = 1") == [["0"]])
        try await Self.unlimitJournal(b)
        try await eventually(30) { try await b.journal.rows("SELECT count(*) FROM mesh_inbound_state WHERE status = 1") == [["6"]] }
        // Each message handled once, with its one invocation, completed in arrival order.
        #expect(try await b.journal.rows("""
            SELECT i.id, count(v.id) FROM mesh_inbound i LEFT JOIN mesh_invocation_rows v ON v.inbound_id = i.id GROUP BY i.id ORDER BY i.id
            """).map { $0[1] } == Array(repeating: "1", count: 6))
        let completion = try await b.journal.rows("SELECT completed_at FROM mesh_inbound_state ORDER BY id").compactMap { $0[0].flatMap(Int64.init) }
        #expect(completion == completion.sorted())
        #expect(try await b.journal.rows("PRAGMA integrity_check") == [["ok"]])
        await a.shutdown()
        await b.shutdown()
    }

    /// A request's handler returns while the journal is full: its response, journaled with the request's status in
    /// one transaction, waits for space like the posted writes and leaves once space returns — it once failed for
    /// good, leaving the request open and its requester without an answer until the responder restarted.
    @Test func aResponseThatCannotBeJournaledWaitsForSpaceAndThenLeaves() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let gate = Gate()
        let returned = Recorder<Int>()
        let big = [UInt8](repeating: 0xA5, count: 64 * 1024)
        let b = try await fixture.start("b")
        try b.handleCommand(6) { _ in
            await gate.wait()
            await returned.add(1)
            return ["echo": .bytes(big)]  // a 64 KiB response: journaling it needs new pages
        }
        let a = try await fixture.start("a")
        async let response = a.sendRequest(6, to: b.address, ["i": 1], timeout: .seconds(120))
        try await eventually(30) { try await b.journal.rows("SELECT count(*) FROM mesh_inbound") == [["1"]] }
        try await Self.limitJournal(b, extraPages: 0)
        await gate.open()
        try await eventually(30) { await returned.count == 1 }
        // Transactions keep aborting after the handler returned (retries back off from 10 ms): the response's job,
        // queued at once, was among them. Nothing of it was kept.
        let abortedWhenReturned = b.journal.abortedTransactions
        try await eventually(30) { b.journal.abortedTransactions >= abortedWhenReturned + 3 }
        #expect(try await b.journal.rows("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND kind = 'response'") == [["0"]])
        #expect(try await b.journal.rows("SELECT status FROM mesh_messages WHERE direction = 'in'") == [["received"]])
        try await Self.unlimitJournal(b)
        #expect(try await response == ["echo": .bytes(big)])
        #expect(try await b.journal.rows("SELECT status FROM mesh_messages WHERE direction = 'in'") == [["handled"]])
        #expect(try await b.journal.rows("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND kind = 'response'") == [["1"]])
        #expect(try await b.journal.rows("SELECT handler_index, attempt, outcome FROM mesh_invocations") == [["0", "1", "ok"]])
        #expect(try await b.journal.rows("PRAGMA integrity_check") == [["ok"]])
        await a.shutdown()
        await b.shutdown()
    }

    @Test func senderJournalFullFailsTheSendCallAndRecovers() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let b = try await fixture.start("b")
        try b.handleCommand(5) { _ in nil }
        let a = try await fixture.start("a")
        let big = [UInt8](repeating: 0xCD, count: 48 * 1024)
        #expect(await (try await a.send(5, to: b.address, ["i": 0])).outcome() == .confirmed)
        try await Self.limitJournal(a, extraPages: 2)
        var thrown: (any Error)?
        for i in 1...5 {
            do {
                _ = try await a.send(5, to: b.address, ["i": .int64(Int64(i)), "blob": .bytes(big)])
            } catch {
                thrown = error
                break
            }
        }
        // Not journaled, so not sent: the caller learns it at once, with the disk named as the reason.
        let code = (thrown as? JournalError)?.code
        #expect(code == .diskFull, "\(String(describing: thrown))")
        try await Self.unlimitJournal(a)
        #expect(await (try await a.send(5, to: b.address, ["i": 99, "blob": .bytes(big)])).outcome() == .confirmed)
        #expect(try await a.journal.rows("PRAGMA integrity_check") == [["ok"]])
        await a.shutdown()
        await b.shutdown()
    }
}
