import Foundation
import MeshCore
import Synchronization
import Testing
@testable import MeshJournal

@Suite struct JournalWriteTests {
    static let peerNode = "0123456789abcdef0123456789abcdef"

    func outbound(_ i: Int, command: UInt16 = 1024) throws -> OutboundMessage {
        try OutboundMessage(commandID: command, kind: .send, peer: "127.0.0.1:8001", data: ["i": .int64(Int64(i)), "myName": "Jon"])
    }

    func inbound(_ seq: UInt64, origin: String = peerNode, command: UInt16 = 1024) throws -> InboundMessage {
        InboundMessage(originNode: origin, originSeq: seq, commandID: command, kind: .send, peer: "127.0.0.1:8001",
                       payload: try MeshCodec.encode(["seq": .uint64(seq)]))
    }

    @Test func appendReturnsOnlyAfterCommitVisibleToOtherConnections() async throws {
        try await withJournal { journal, dir in
            let external = try externalConnection(journal.path)
            for i in 1...20 {
                let seq = try await journal.appendOutbound(outbound(i))
                #expect(seq == UInt64(i))
                // A separate connection (like an operator's sqlite3 shell) already sees the committed row.
                #expect(try external.scalarInt("SELECT count(*) FROM mesh_outbound WHERE seq = \(seq)") == 1)
            }
        }
    }

    @Test func groupCommitGathersConcurrentAppendsAndKeepsSequencesUnique() async throws {
        try await withJournal(configuration: .init(maxBatchDelayMicroseconds: 20_000)) { journal, _ in
            let seqs = try await withThrowingTaskGroup(of: UInt64.self) { group in
                for i in 0..<400 { group.addTask { try await journal.appendOutbound(outbound(i)) } }
                return try await group.reduce(into: [UInt64]()) { $0.append($1) }
            }
            #expect(Set(seqs) == Set(1...400))
            let stats = journal.writeStatistics
            #expect(stats.jobs >= 400)
            #expect(stats.transactions < stats.jobs)  // at least some appends shared a transaction
        }
    }

    /// A streamed status (nobody waits on it) is held back so it shares the commit of the next awaited write:
    /// one transaction for both, where committing at once would have cost two.
    @Test func deferrableWriteSharesTheNextAwaitedWritesCommit() async throws {
        // A 60 s deferral: no stall between the two writes can let the status commit alone.
        try await withJournal(configuration: .init(deferredCommitMicroseconds: 60_000_000)) { journal, _ in
            let id = try await journal.appendInbound([inbound(1)])[0]
            guard case .inserted(let rowID) = id else { Issue.record("not inserted"); return }
            let before = journal.writeStatistics.transactions
            journal.postInboundStatus(id: rowID, .handled, attempts: 1)
            _ = try await journal.appendOutbound(outbound(1))  // awaited: commits at once, carrying the status
            #expect(journal.writeStatistics.transactions == before + 1)
            #expect(try await journal.read { db in
                try db.scalarInt("SELECT status FROM mesh_inbound_state WHERE id = \(rowID)")
            } == 1)
        }
    }

    /// On a lent executor the deferral is a timer; when an awaited write ends the hold early, the timer is cancelled
    /// instead of waking the executor later for an empty step.
    @Test func anEndedDeferralCancelsItsTimerOnALentExecutor() async throws {
        let executor = RecordingExecutor()
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let journal = try await Journal.open(path: dir.file("node.sqlite"), configuration: .init(deferredCommitMicroseconds: 60_000_000),
                                             writerExecutor: executor, logger: .test)
        let id = try await journal.appendInbound([inbound(1)])[0]
        guard case .inserted(let rowID) = id else { Issue.record("not inserted"); return }
        journal.postInboundStatus(id: rowID, .handled, attempts: 1)
        // The held batch arms its timer (on the executor's queue, right after the post).
        let deadline = ContinuousClock.now + .seconds(10)
        while executor.counts.scheduled == 0 && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(1)) }
        #expect(executor.counts == .init(scheduled: 1, cancelled: 0))
        _ = try await journal.appendOutbound(outbound(1))
        #expect(executor.counts == .init(scheduled: 1, cancelled: 1))
        await journal.close()
    }

    /// A message whose state row the job's `then` writes (`stateWrittenInJob`) may come twice in one batch (a
    /// retransmission in the same read): the second copy is a duplicate of the first, not an error, and the first
    /// gets its state row after `then`.
    @Test func aCopyInTheSameBatchOfAMessageWhoseStateThenWritesIsADuplicate() async throws {
        try await withJournal { journal, _ in
            var row = try inbound(7)
            row.stateWrittenInJob = true
            let results = try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[InboundAppendResult], any Error>) in
                journal.appendInboundRelaying([row, row], then: { _, results in results.count }) { result in
                    continuation.resume(with: result.map(\.results))
                }
            }
            guard case .inserted(let id) = results[0] else { Issue.record("\(results)"); return }
            #expect(results[1] == .duplicate(id: id, status: .received))
            // Received, not yet handled: no state row (schema v12).
            #expect(try await journal.inbound(id: id)?.status == .received)
            #expect(try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_inbound_state WHERE id = \(id)") } == 0)
        }
    }

    /// A job that fails undoes its own writes and only those: alone in its transaction (which then runs without a
    /// savepoint and is rolled back whole) and beside other jobs in one batch (its savepoint is rolled back, theirs
    /// commit). Either way the writer goes on numbering outbound messages where the committed ones left off.
    @Test func aFailingJobUndoesItsOwnWritesAloneOrInABatch() async throws {
        struct HandlerBroke: Error {}
        let executor = RecordingExecutor()
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let journal = try await Journal.open(path: dir.file("node.sqlite"), writerExecutor: executor, logger: .test)
        var row = try inbound(1)
        row.forwards = [try outbound(1)]
        let relayed = row
        let second = try inbound(2)
        let failing: @Sendable (WorkerContext, [InboundAppendResult]) throws -> Void = { _, _ in throw HandlerBroke() }
        // Alone: the row, its state and its forward (an outbound row) are all undone.
        let alone = await withCheckedContinuation { (done: CheckedContinuation<Bool, Never>) in
            journal.appendInboundRelaying([relayed], then: failing) { result in
                if case .failure(let error) = result { done.resume(returning: error is HandlerBroke) } else { done.resume(returning: false) }
            }
        }
        #expect(alone)
        #expect(try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_inbound") } == 0)
        #expect(try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_outbound") } == 0)
        #expect(try await journal.appendOutbound(outbound(2)) == 1)
        // In a batch (both queued before the writer's next step): only the failing job's writes are undone.
        let (failed, kept) = await withCheckedContinuation { (done: CheckedContinuation<(Bool, Bool), Never>) in
            let outcomes = Mutex<[Int: Bool]>([:])
            @Sendable func record(_ index: Int, _ ok: Bool) {
                let all = outcomes.withLock { $0[index] = ok; return $0 }
                if all.count == 2 { done.resume(returning: (all[0]!, all[1]!)) }
            }
            executor.execute {
                journal.appendInboundRelaying([relayed], then: failing) { result in
                    if case .failure(let error) = result { record(0, error is HandlerBroke) } else { record(0, false) }
                }
                journal.appendInboundRelaying([second], then: nil as (@Sendable (WorkerContext, [InboundAppendResult]) throws -> Void)?) { result in
                    if case .success = result { record(1, true) } else { record(1, false) }
                }
            }
        }
        #expect(failed)
        #expect(kept)
        #expect(try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_inbound") } == 1)
        #expect(try await journal.read { db in try db.scalarInt("SELECT origin_seq FROM mesh_inbound") } == 2)
        #expect(try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_outbound") } == 1)
        #expect(try await journal.appendOutbound(outbound(3)) > 1)
        await journal.close()
    }

    /// `commitAtOnce` on the lent executor commits before the call returns — but never inside a running job: one
    /// submitted from a completion is queued and committed after it, in order.
    @Test func commitAtOnceCommitsBeforeReturningButNeverInsideAJob() async throws {
        let executor = RecordingExecutor()
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let journal = try await Journal.open(path: dir.file("node.sqlite"), writerExecutor: executor, logger: .test)
        let (first, second) = (try inbound(1), try inbound(2))
        let order = Mutex<[String]>([])
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            executor.execute {
                journal.appendInboundRelaying([first], commitAtOnce: true, then: nil as (@Sendable (WorkerContext, [InboundAppendResult]) throws -> Void)?) { _ in
                    order.withLock { $0.append("first committed") }
                    journal.appendInboundRelaying([second], commitAtOnce: true, then: nil as (@Sendable (WorkerContext, [InboundAppendResult]) throws -> Void)?) { _ in
                        order.withLock { $0.append("second committed") }
                        done.resume()
                    }
                    order.withLock { $0.append("second submitted") }
                }
                order.withLock { $0.append("first submitted") }
            }
        }
        #expect(order.withLock { $0 } == ["first committed", "second submitted", "first submitted", "second committed"])
        #expect(try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_inbound") } == 2)
        await journal.close()
    }

    /// With no awaited write coming, a deferrable write still commits by itself once the deferral passed.
    @Test func deferrableWriteCommitsAloneAfterTheDeferral() async throws {
        try await withJournal(configuration: .init(deferredCommitMicroseconds: 2_000)) { journal, _ in
            let id = try await journal.appendInbound([inbound(1)])[0]
            guard case .inserted(let rowID) = id else { Issue.record("not inserted"); return }
            journal.postInboundStatus(id: rowID, .handled, attempts: 1)
            let deadline = ContinuousClock.now + .seconds(10)
            var status: Int64?
            while ContinuousClock.now < deadline {
                status = try await journal.read { db in try db.scalarInt("SELECT status FROM mesh_inbound_state WHERE id = \(rowID)") }
                if status == 1 { break }
                try await Task.sleep(for: .milliseconds(1))
            }
            #expect(status == 1)
        }
    }

    @Test func deferralIsValidated() {
        #expect(throws: JournalError.self) { try JournalConfiguration(deferredCommitMicroseconds: -1).validate() }
        #expect(throws: JournalError.self) { try JournalConfiguration(deferredCommitMicroseconds: 60_000_001).validate() }
    }

    @Test func commandIDsWithPendingOrOpenMessagesComeFromTheirIndexes() async throws {
        try await withJournal { journal, _ in
            let seqs = try await journal.appendOutbound([try outbound(1, command: 7), try outbound(2, command: 3), try outbound(3, command: 65000),
                                                         try outbound(4, command: 7)])
            try await journal.markOutboundAcked([seqs[1]])
            #expect(try await journal.pendingOutboundCommandIDs() == [7, 65000])
            _ = try await journal.appendInbound([try inbound(1, command: 9), try inbound(2, command: 2), try inbound(3, command: 9)])
            #expect(try await journal.openInboundCommandIDs() == [2, 9])
            try await journal.markOutboundAcked([seqs[0], seqs[2], seqs[3]])
            #expect(try await journal.pendingOutboundCommandIDs() == [])
        }
    }

    @Test func batchAppendIsAllOrNothingAndOrdered() async throws {
        try await withJournal { journal, _ in
            let seqs = try await journal.appendOutbound((0..<5).map { try outbound($0) })
            #expect(seqs == [1, 2, 3, 4, 5])
            let pending = try await journal.pendingOutbound()
            #expect(pending.map(\.seq) == [1, 2, 3, 4, 5])
            #expect(try MeshCodec.decode(pending[2].payload).int64("i") == 2)
        }
    }

    @Test func sequencesAreNeverReusedEvenAfterEveryRowIsDeleted() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("node.sqlite")
        let journal = try await Journal.open(path: path, logger: .test)
        _ = try await journal.appendOutbound((0..<3).map { try outbound($0) })
        await journal.close()
        try externalConnection(path, readOnly: false).execute("DELETE FROM mesh_outbound")
        let reopened = try await Journal.open(path: path, logger: .test)
        #expect(try await reopened.appendOutbound(outbound(9)) == 4)
        await reopened.close()
    }

    @Test func ackAndFailTransitionsOnlyFromPending() async throws {
        try await withJournal { journal, _ in
            let seqs = try await journal.appendOutbound((0..<3).map { try outbound($0) })
            #expect(try await journal.markOutboundAcked([seqs[0], seqs[0]]) == 1)
            #expect(try await journal.markOutboundFailed(seqs[1], error: "peer down"))
            #expect(try await !journal.markOutboundFailed(seqs[0], error: "late"))  // acked stays acked
            #expect(try await journal.markOutboundAcked([seqs[1]]) == 0)  // failed stays failed
            try await journal.recordOutboundAttempts([seqs[2], seqs[2]])
            let acked = try #require(try await journal.outbound(seq: seqs[0]))
            let failed = try #require(try await journal.outbound(seq: seqs[1]))
            let pending = try #require(try await journal.outbound(seq: seqs[2]))
            #expect(acked.status == .acked && acked.completedAtMs != nil)
            #expect(failed.status == .failed && failed.error == "peer down")
            #expect(pending.status == .pending && pending.attempts == 3)  // 1 at the first send, +2
            #expect(try await journal.pendingOutbound().map(\.seq) == [seqs[2]])
        }
    }

    @Test func pendingOutboundFiltersByCommandAndPages() async throws {
        try await withJournal { journal, _ in
            for i in 0..<10 { _ = try await journal.appendOutbound(outbound(i, command: i % 2 == 0 ? 1 : 2)) }
            let ones = try await journal.pendingOutbound(commandID: 1)
            #expect(ones.map(\.seq) == [1, 3, 5, 7, 9])
            let page = try await journal.pendingOutbound(commandID: 1, afterSeq: 3, limit: 2)
            #expect(page.map(\.seq) == [5, 7])
        }
    }

    /// Schema v10 reads pending messages by sequence from a floor that moves up as messages are acknowledged: every
    /// pending message stays visible however the floor moved — acknowledged in and out of order, failed, none
    /// pending at all, new ones after that, the newest ones pruned, and after a reopen.
    @Test func pendingOutboundStaysCompleteAsTheFloorMovesUp() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("floor.sqlite")
        let journal = try await Journal.open(path: path, logger: .test)
        var seqs: [UInt64] = []
        for i in 0..<6 { seqs.append(try await journal.appendOutbound(try outbound(i, command: i % 2 == 0 ? 1 : 2))) }
        func pending() async throws -> [UInt64] { try await journal.pendingOutbound().map(\.seq) }
        #expect(try await pending() == seqs)
        #expect(try await journal.markOutboundAcked([seqs[0], seqs[2]]) == 2)
        #expect(try await pending() == [seqs[1], seqs[3], seqs[4], seqs[5]])
        #expect(try await journal.pendingOutbound(commandID: 1).map(\.seq) == [seqs[4]])
        #expect(try await journal.pendingOutboundCommandIDs() == [1, 2])
        #expect(try await journal.markOutboundFailed(seqs[1], error: "peer down"))
        #expect(try await journal.markOutboundAcked([seqs[3], seqs[5]]) == 2)
        #expect(try await pending() == [seqs[4]])
        #expect(try await journal.pendingOutbound(afterSeq: seqs[4]).isEmpty)
        #expect(try await journal.pendingOutboundCommandIDs() == [1])
        #expect(try await journal.markOutboundAcked([seqs[4]]) == 1)
        // None pending: the floor moves past the last sequence; the next message is above it all the same.
        #expect(try await pending().isEmpty)
        #expect(try await journal.pendingOutboundCommandIDs().isEmpty)
        #expect(try await journal.pendingOutboundPeers().isEmpty)
        let next = try await journal.appendOutbound(try outbound(6, command: 3))
        #expect(try await pending() == [next])
        #expect(try await journal.pendingOutboundCommandIDs() == [3])
        // Every finished row pruned, the newest included: sequences are never reused, so the floor holds.
        #expect(try await journal.markOutboundAcked([next]) == 1)
        #expect(try await pending().isEmpty)
        while try await journal.pruneFinished(completedBeforeMs: Int64.max).outbound > 0 {}
        #expect(try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_outbound") } == 0)
        let after = try await journal.appendOutbound(try outbound(7, command: 4))
        #expect(after > next)
        #expect(try await pending() == [after])
        await journal.close()
        let reopened = try await Journal.open(path: path, logger: .test)
        #expect(try await reopened.pendingOutbound().map(\.seq) == [after])
        #expect(try await reopened.pendingOutboundPeers().count == 1)
        await reopened.close()
    }

    @Test func inboundDeduplicatesOnOriginAndSequence() async throws {
        try await withJournal { journal, _ in
            let first = try await journal.appendInbound([inbound(1), inbound(2)])
            guard case .inserted(let id1) = first[0], case .inserted = first[1] else {
                Issue.record("expected two inserts, got \(first)")
                return
            }
            try await journal.setInboundStatus(id: id1, .handled)
            let again = try await journal.appendInbound([inbound(1), inbound(3)])
            #expect(again[0] == .duplicate(id: id1, status: .handled))
            if case .inserted = again[1] {} else { Issue.record("seq 3 should be new") }
            // The same sequence from another origin is a different message.
            let other = try await journal.appendInbound([inbound(1, origin: "ffffffffffffffffffffffffffffffff")])
            if case .inserted = other[0] {} else { Issue.record("other origin should be new") }
            let counts = try await journal.counts()
            #expect(counts["in.received"] == 3)
            #expect(counts["in.handled"] == 1)
        }
    }

    @Test func payloadsAndTheirJSONAreStoredExactlyEvenWhenEmpty() async throws {
        // Payloads and JSON are bound without copies for the insert (SQLITE_STATIC within the step): what lands in
        // the row must be byte for byte what was given, an empty payload a zero-length blob (not NULL).
        try await withJournal { journal, _ in
            let big = try MeshCodec.encode(["name": "Jöns 🎉", "body": .bytes((0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 31) })])
            let payloads: [[UInt8]] = [big, [], [0, 0xFF, 0]]
            for payload in payloads {
                var message = OutboundMessage(commandID: 7, kind: .send, peer: "p", payload: payload)
                message.payloadJSON = payload.isEmpty ? "" : #"{"name":"Jöns 🎉"}"#
                _ = try await journal.appendOutbound(message)
            }
            var rows: [InboundMessage] = []
            for (i, payload) in payloads.enumerated() {
                var row = try inbound(UInt64(100 + i))
                row.payload = payload
                rows.append(row)
            }
            _ = try await journal.appendInbound(rows)
            let stored = try await journal.read { db in
                (try db.rows("SELECT typeof(payload), hex(payload), payload_json FROM mesh_outbound ORDER BY seq"),
                 try db.rows("SELECT typeof(payload), hex(payload) FROM mesh_inbound ORDER BY id"))
            }
            func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02X", $0) }.joined() }
            #expect(stored.0 == payloads.map { ["blob", hex($0), $0.isEmpty ? "" : #"{"name":"Jöns 🎉"}"#] })
            #expect(stored.1 == payloads.map { ["blob", hex($0)] })
        }
    }

    @Test func inboundRejectsMalformedOriginIDs() async throws {
        try await withJournal { journal, _ in
            let error = await #expect(throws: JournalError.self) { try await journal.appendInbound([inbound(1, origin: "nope")]) }
            #expect(error?.code == .invalidArgument)
        }
    }

    @Test func openInboundListsUnfinishedMessagesInArrivalOrder() async throws {
        try await withJournal { journal, _ in
            let results = try await journal.appendInbound((1...6).map { try inbound(UInt64($0), command: $0 <= 3 ? 7 : 8) })
            try await journal.setInboundStatus(id: results[0].id, .handled)
            try await journal.setInboundStatus(id: results[1].id, .failed, attempts: 1, error: "boom")
            try await journal.setInboundStatus(id: results[2].id, .dead, attempts: 5, error: "boom")
            try await journal.setInboundStatus(id: results[3].id, .unhandled)
            let open7 = try await journal.openInbound(commandID: 7)
            #expect(open7.map(\.originSeq) == [2])
            #expect(open7[0].error == "boom" && open7[0].attempts == 1)
            let all = try await journal.openInbound()
            #expect(all.map(\.originSeq) == [2, 4, 5, 6])
            let dead = try #require(try await journal.inbound(id: results[2].id))
            #expect(dead.status == .dead && dead.completedAtMs != nil)
        }
    }

    @Test func aFailingJobIsUndoneAloneWhileTheBatchCommits() async throws {
        struct Planned: Error {}
        try await withJournal(configuration: .init(maxBatchDelayMicroseconds: 20_000)) { journal, _ in
            async let good = journal.appendOutbound(outbound(1))
            async let bad: Void = journal.write(savepoint: true) { context in
                try context.db.execute("INSERT INTO mesh_peer(node_id, first_seen, last_seen) VALUES ('\(Self.peerNode)', 0, 0)")
                throw Planned()
            }
            async let good2 = journal.appendOutbound(outbound(2))
            let seqs = try await [good, good2]
            var threw = false
            do { try await bad } catch is Planned { threw = true }
            #expect(threw)
            #expect(Set(seqs) == [1, 2])
            let peers = try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_peer") }
            #expect(peers == 0)
        }
    }

    @Test func diskFullFailsCleanlyKeepsCommittedRowsAndRecovers() async throws {
        try await withJournal { journal, _ in
            _ = try await journal.appendOutbound(outbound(0))
            let pages = try await journal.write { context in try context.db.scalarInt("PRAGMA page_count") ?? 0 }
            // Simulate a full disk: SQLite may not grow the file past a few more pages.
            _ = try await journal.write { context in try context.db.scalarInt("PRAGMA max_page_count = \(pages + 4)") }
            let big = OutboundMessage(commandID: 1, kind: .send, peer: "p", payload: [UInt8](repeating: 0xEE, count: 64 * 1024))
            var sawFull = false
            for _ in 0..<10 {
                do {
                    _ = try await journal.appendOutbound(big)
                } catch let error as JournalError {
                    #expect(error.code == .diskFull)
                    sawFull = true
                    break
                }
            }
            #expect(sawFull)
            // What was committed before is intact and readable; the failed row left nothing behind.
            #expect(try await journal.outbound(seq: 1)?.status == .pending)
            // Space returns: writing works again.
            _ = try await journal.write { context in try context.db.scalarInt("PRAGMA max_page_count = 1073741823") }
            let seq = try await journal.appendOutbound(big)
            #expect(try await journal.outbound(seq: seq)?.payload.count == 64 * 1024)
            let integrity = try await journal.read { db in try db.scalarText("PRAGMA integrity_check") }
            #expect(integrity == "ok")
        }
    }

    @Test func anExternalWriterHoldingTheLockGivesBusyNotAHang() async throws {
        try await withJournal(configuration: .init(busyTimeoutMilliseconds: 100)) { journal, _ in
            let external = try externalConnection(journal.path, readOnly: false)
            try external.execute("BEGIN IMMEDIATE")
            let error = await #expect(throws: JournalError.self) { try await journal.appendOutbound(outbound(1)) }
            #expect(error?.code == .busy)
            try external.execute("COMMIT")
            #expect(try await journal.appendOutbound(outbound(2)) >= 1)
        }
    }

    @Test func invocationsAreRecordedWithOutcomeAndResponse() async throws {
        try await withJournal { journal, _ in
            let id = try await journal.appendInbound([inbound(1)])[0].id
            let ok = try await journal.startInvocation(inboundID: id, handlerIndex: 0, attempt: 1)
            try await journal.finishInvocation(ok, outcome: .ok, response: ["answer": 42])
            let failed = try await journal.startInvocation(inboundID: id, handlerIndex: 1, attempt: 1)
            try await journal.finishInvocation(failed, outcome: .error, error: "handler threw: boom")
            let rows = try await journal.read { db in
                try db.rows("SELECT handler_index, outcome, error, response_json FROM mesh_invocations ORDER BY id")
            }
            #expect(rows == [["0", "ok", nil, #"{"answer":42}"#], ["1", "error", "handler threw: boom", nil]])
        }
    }
}

@Suite struct CheckpointTests {
    /// The WAL hook's policy: nothing below the background threshold; a background pass at the threshold, then one
    /// each time the WAL grew by a step (not one per commit); urgent passes after every commit once the passes fell
    /// behind by the urgent lag, and near the bound (the catch-up region); inline at the bound; after the WAL started
    /// over, quiet again until it is back at the threshold.
    @Test func backgroundPassesFollowTheWALsGrowthInStepsAndHurryNearTheBound() {
        let limits = CheckpointScheduler.Limits(backgroundPages: 4000, hardPages: 8000)
        #expect(limits.stepPages == 250)
        #expect(limits.urgentLagPages == 1000)
        #expect(limits.catchUpPages == 7500)
        let small = CheckpointScheduler.Limits(backgroundPages: 50, hardPages: 400)
        #expect(small.stepPages == 3 && small.urgentLagPages == 87 && small.catchUpPages == 357)
        #expect(CheckpointScheduler.Limits(backgroundPages: 40000, hardPages: 80000).stepPages == 256)
        #expect(CheckpointScheduler.Limits(backgroundPages: 1, hardPages: 2).stepPages == 1)
        #expect(CheckpointScheduler.Limits(backgroundPages: 1, hardPages: 2).catchUpPages == 1)

        #expect(limits.decide(walPages: 3999, lastPosted: 0, backfilled: 0) == .none)
        #expect(limits.decide(walPages: 4000, lastPosted: 0, backfilled: 0) == .background)
        // Within a step of the last pass: nothing; a step on: the next pass.
        #expect(limits.decide(walPages: 4100, lastPosted: 4000, backfilled: 3990) == .none)
        #expect(limits.decide(walPages: 4249, lastPosted: 4000, backfilled: 3990) == .none)
        #expect(limits.decide(walPages: 4250, lastPosted: 4000, backfilled: 3990) == .background)
        // The passes fell behind by the urgent lag (counted from the threshold before any pass finished).
        #expect(limits.decide(walPages: 4999, lastPosted: 4768, backfilled: 0) == .none)
        #expect(limits.decide(walPages: 5000, lastPosted: 4768, backfilled: 0) == .urgent)
        #expect(limits.decide(walPages: 6100, lastPosted: 6000, backfilled: 5000) == .urgent)
        #expect(limits.decide(walPages: 6100, lastPosted: 6000, backfilled: 5990) == .none)
        // Near the bound, after every commit; at it, inline.
        #expect(limits.decide(walPages: 7499, lastPosted: 7400, backfilled: 7390) == .none)
        #expect(limits.decide(walPages: 7500, lastPosted: 7400, backfilled: 7390) == .urgent)
        #expect(limits.decide(walPages: 7999, lastPosted: 7998, backfilled: 7990) == .urgent)
        #expect(limits.decide(walPages: 8000, lastPosted: 7998, backfilled: 7990) == .inline)
        // Started over: the scheduler resets lastPosted and backfilled, and the cycle begins again.
        #expect(limits.decide(walPages: 12, lastPosted: 0, backfilled: 0) == .none)
        #expect(limits.decide(walPages: 4010, lastPosted: 0, backfilled: 0) == .background)
    }

    @Test func walIsCheckpointedInTheBackgroundAndStaysBounded() async throws {
        let configuration = JournalConfiguration(checkpointPages: 50, walLimitPages: 400)
        try await withJournal(configuration: configuration) { journal, _ in
            let payload = [UInt8](repeating: 0xAB, count: 2000)
            var maxWALBytes = 0
            for round in 0..<40 {
                _ = try await withThrowingTaskGroup(of: UInt64.self) { group in
                    for _ in 0..<50 {
                        group.addTask {
                            try await journal.appendOutbound(OutboundMessage(commandID: UInt16(round), kind: .send, peer: "p", payload: payload))
                        }
                    }
                    return try await group.reduce(0) { $0 + $1 }
                }
                let attributes = try? FileManager.default.attributesOfItem(atPath: journal.path + "-wal")
                maxWALBytes = max(maxWALBytes, (attributes?[.size] as? Int) ?? 0)
            }
            let stats = journal.checkpointStatistics
            #expect(stats.background + stats.inline > 0)
            // 2000 rows of ~2 KiB went through; the WAL never held more than the limit plus one batch.
            let pageSize = Int(try await journal.read { db in try db.scalarInt("PRAGMA page_size") } ?? 0)
            #expect(pageSize == configuration.pageSize)
            #expect(maxWALBytes < (400 + 200) * (pageSize + 24) + 64 * 1024, "WAL reached \(maxWALBytes) bytes")
            #expect(try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_outbound") } == 2000)
        }
    }
}

/// A serial executor on a dispatch queue that counts the timers the writer arms and cancels.
final class RecordingExecutor: JournalExecutor {
    struct Counts: Equatable { var scheduled = 0, cancelled = 0 }
    private let queue = DispatchQueue(label: "recording-executor")
    private let key = DispatchSpecificKey<Bool>()
    private let state = Mutex(Counts())
    var counts: Counts { state.withLock { $0 } }

    init() { queue.setSpecific(key: key, value: true) }

    func execute(_ work: @escaping @Sendable () -> Void) { queue.async(execute: work) }

    func execute(after delay: Duration, _ work: @escaping @Sendable () -> Void) { _ = schedule(after: delay, work) }

    func schedule(after delay: Duration, _ work: @escaping @Sendable () -> Void) -> @Sendable () -> Void {
        final class Cancelled: Sendable { let flag = Atomic(false) }
        let cancelled = Cancelled()
        state.withLock { $0.scheduled += 1 }
        let milliseconds = Int(min(delay, .seconds(3600)) / .milliseconds(1))
        queue.asyncAfter(deadline: .now() + .milliseconds(milliseconds)) {
            if !cancelled.flag.load(ordering: .acquiring) { work() }
        }
        return { [self] in
            cancelled.flag.store(true, ordering: .releasing)
            self.state.withLock { $0.cancelled += 1 }
        }
    }

    var isCurrent: Bool { DispatchQueue.getSpecific(key: key) == true }
}
