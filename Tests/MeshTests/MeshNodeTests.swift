import Mesh
import MeshCore
import MeshFaultProxy
import NIOCore
import MeshJournal
import MeshTransport
import Testing

@Suite struct MeshNodeTests {
    @Test func seedScenarioArrivesIntactAndEveryStepIsJournaled() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        let seen = Recorder<(String, [String])>()
        let handledIDs = Recorder<String>()
        try b.handleCommand(1024) { data, info in
            await handledIDs.add(info.messageID)
            let name = try data.getString("myName")
            let schedule = try DataCapsule.unpack(data.getBytes("mySchedule"))
            let titles = try schedule.getAsArray("appointments").map { try $0.getAsString("title") }
            await seen.add((name, titles))
            return nil
        }
        var schedule = DataCapsule()
        schedule.setAsArray("appointments", [
            DataCapsule(["date": "01/01/2022", "title": "New Year Party"]),
            DataCapsule(["date": "25/12/2022", "title": "Christmas Party"]),
        ])
        let delivery = try await a.send(1024, to: b.address, ["myName": "Jon", "mySchedule": .bytes(try schedule.pack())])
        #expect(await delivery.outcome() == .confirmed)
        try await eventually { await seen.count == 1 }
        let first = await seen.items[0]
        #expect(first.0 == "Jon" && first.1 == ["New Year Party", "Christmas Party"])
        // Sender: journaled and acked. Receiver: journaled, handled, one ok invocation.
        try await eventually {
            try await a.journal.rows("SELECT status FROM mesh_messages WHERE direction = 'out'") == [["acked"]]
        }
        try await eventually {
            try await b.journal.rows("SELECT status, json_extract(payload_json, '$.myName') FROM mesh_messages WHERE direction = 'in'")
                == [["handled", "Jon"]]
        }
        let invocations = try await b.journal.rows("SELECT message_id, handler_index, attempt, outcome FROM mesh_invocations")
        #expect(invocations == [[delivery.messageID, "0", "1", "ok"]])
        // The handler saw the message's id as the sender and the audit views name it.
        #expect(await handledIDs.items == [delivery.messageID])
        await a.shutdown()
        await b.shutdown()
    }

    /// A handler still running is visible in `mesh_invocations` (started, not finished); when it ends, that same
    /// row is completed — one row per invocation, whether its start was written early or not.
    @Test func aRunningInvocationIsVisibleAndCompletedInPlace() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        let (gate, open) = AsyncStream.makeStream(of: Void.self)
        try b.handleCommand(9) { _ in
            for await _ in gate { break }
            return nil
        }
        try b.handleCommand(10) { _ in nil }
        #expect(await (try await a.send(9, to: b.address, ["slow": true])).outcome() == .confirmed)
        try await eventually {
            try await b.journal.rows("SELECT command_id, outcome, finished_at IS NULL FROM mesh_invocations") == [["9", nil, "1"]]
        }
        open.yield()
        #expect(await (try await a.send(10, to: b.address, ["fast": true])).outcome() == .confirmed)
        try await eventually {
            try await b.journal.rows("SELECT command_id, outcome, finished_at IS NULL, started_at <= finished_at FROM mesh_invocations ORDER BY command_id")
                == [["9", "ok", "0", "1"], ["10", "ok", "0", "1"]]
        }
        #expect(try await b.journal.rows("SELECT status FROM mesh_messages WHERE direction = 'in' ORDER BY id") == [["handled"], ["handled"]])
        await a.shutdown()
        await b.shutdown()
    }

    @Test func severalHandlersRunInRegistrationOrderAndFailuresDeadLetter() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b") { $0.maxHandlerAttempts = 2 }
        let calls = Recorder<String>()
        struct Boom: Error, CustomStringConvertible { var description: String { "boom" } }
        try b.handleCommand(7) { data in
            await calls.add("first:\(try data.getInt("n"))")
            return nil
        }
        try b.handleCommand(7) { data in
            await calls.add("second:\(try data.getInt("n"))")
            if try data.getInt("n") == 2 { throw Boom() }
            return nil
        }
        for n in 1...3 { try await a.send(7, to: b.address, ["n": .int64(Int64(n))]) }
        try await eventually { await calls.count == 8 }  // 2 + 2×2 (retried once) + 2
        #expect(await calls.items == ["first:1", "second:1", "first:2", "second:2", "first:2", "second:2", "first:3", "second:3"])
        try await eventually {
            try await b.journal.rows("SELECT status, attempts, error FROM mesh_messages WHERE direction = 'in' ORDER BY id")
                == [["handled", "1", nil], ["dead", "2", "boom"], ["handled", "1", nil]]
        }
        await a.shutdown()
        await b.shutdown()
    }

    @Test func messagesWithoutHandlerWaitAsUnhandledThenDispatchInOrder() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        for n in 1...5 { #expect(await (try await a.send(3000, to: b.address, ["n": .int64(Int64(n))])).outcome() == .confirmed) }
        try await eventually {
            try await b.journal.rows("SELECT count(*) FROM mesh_messages WHERE status = 'unhandled'") == [["5"]]
        }
        let order = Recorder<Int64>()
        try b.handleCommand(3000) { data in
            await order.add(try data.getInt64("n"))
            return nil
        }
        for n in 6...7 { try await a.send(3000, to: b.address, ["n": .int64(Int64(n))]) }
        try await eventually { await order.count == 7 }
        #expect(await order.items == [1, 2, 3, 4, 5, 6, 7])
        await a.shutdown()
        await b.shutdown()
    }

    @Test func reservedCommandIDsAreRefused() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let node = try await fixture.start("a")
        let error = #expect(throws: MeshError.self) { try node.handleCommand(65000) { _ in nil } }
        #expect(error?.code == .reservedCommand)
        await node.shutdown()
    }

    @Test func restartedSenderResendsPendingMessagesAndTheReceiverDeduplicates() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let b = try await fixture.start("b")
        let handled = Recorder<Int64>()
        try b.handleCommand(9) { data in
            await handled.add(try data.getInt64("n"))
            return nil
        }
        let a = try await fixture.start("a")
        for n in 1...3 { #expect(await (try await a.send(9, to: b.address, ["n": .int64(Int64(n))])).outcome() == .confirmed) }
        try await eventually { try await a.journal.rows("SELECT count(*) FROM mesh_outbound_state WHERE status = 1") == [["3"]] }
        await a.shutdown()
        // As if A had crashed before journaling the acknowledgements: its rows are pending again.
        let journal = try await Journal.open(path: fixture.configuration("a").journalPath, logger: testLogger)
        _ = try await journal.write { context in try context.db.execute("UPDATE mesh_outbound_state SET status = 0, completed_at = NULL") }
        await journal.close()
        let restarted = try await fixture.start("a")
        // A resends all three with the same message ids; B confirms them again without journaling or handling twice.
        try await eventually { try await restarted.journal.rows("SELECT count(*) FROM mesh_outbound_state WHERE status = 1") == [["3"]] }
        #expect(try await b.journal.rows("SELECT count(*) FROM mesh_inbound") == [["3"]])
        #expect(await handled.items == [1, 2, 3])
        await restarted.shutdown()
        await b.shutdown()
    }

    @Test func unfinishedInboundMessagesAreRedispatchedAtStart() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let path = fixture.configuration("b").journalPath
        // A journal left by a crash: two messages received, one handler invocation started and never finished.
        let journal = try await Journal.open(path: path, logger: testLogger)
        let origin = "0123456789abcdef0123456789abcdef"
        let rows = try await journal.appendInbound((1...2).map { n in
            InboundMessage(originNode: origin, originSeq: UInt64(n), commandID: 5, kind: .send, peer: "127.0.0.1:1",
                           payload: try! MeshCodec.encode(["n": .int64(Int64(n))]))
        })
        _ = try await journal.startInvocation(inboundID: rows[0].id, handlerIndex: 0, attempt: 1)
        await journal.close()

        let order = Recorder<Int64>()
        let b = try await MeshNode.start(configuration: fixture.configuration("b"), logger: testLogger)
        try b.handleCommand(5) { data in
            await order.add(try data.getInt64("n"))
            return nil
        }
        try await eventually { await order.count == 2 }
        #expect(await order.items == [1, 2])
        try await eventually {
            try await b.journal.rows("SELECT status FROM mesh_messages WHERE direction = 'in' ORDER BY id") == [["handled"], ["handled"]]
        }
        await b.shutdown()
    }

    @Test func sendingToAnUnreachablePeerFailsAndIsJournaledAsFailed() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { $0.retryTimeout = .milliseconds(500) }
        let delivery = try await a.send(1, to: "127.0.0.1:9", ["x": 1])
        guard case .failed(let error) = await delivery.outcome() else { Issue.record("delivered to nowhere"); return }
        #expect(error.code == .unreachable)
        try await eventually {
            try await a.journal.rows("SELECT status, error IS NOT NULL FROM mesh_messages WHERE direction = 'out'") == [["failed", "1"]]
        }
        let bad = await #expect(throws: MeshError.self) { try await a.send(1, to: "not-an-address", ["x": 1]) }
        #expect(bad?.code == .invalidAddress)
        await a.shutdown()
    }

    /// `sendConfirmed` returns once the outcome is known: confirmed means the receiver's journal already has the
    /// message when it returns; to nowhere it returns the failure (not a throw), journaled at the sender.
    @Test func sendConfirmedReturnsWithTheOutcome() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { $0.retryTimeout = .milliseconds(500) }
        let b = try await fixture.start("b")
        try b.handleCommand(5) { _ in nil }
        for n in 1...3 {
            let delivery = try await a.sendConfirmed(5, to: b.address, ["n": .int64(Int64(n))])
            #expect(await delivery.outcome() == .confirmed)
            #expect(try await b.journal.rows("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND message_id = '\(delivery.messageID)'")
                == [["1"]])
        }
        let lost = try await a.sendConfirmed(5, to: "127.0.0.1:9", ["n": 0])
        guard case .failed(let error) = await lost.outcome() else { Issue.record("delivered to nowhere"); return }
        #expect(error.code == .unreachable)
        let bad = await #expect(throws: MeshError.self) { try await a.sendConfirmed(5, to: "not-an-address", ["n": 0]) }
        #expect(bad?.code == .invalidAddress)
        await a.shutdown()
        await b.shutdown()
    }
}

@Suite struct ShutdownTests {
    @Test func aHungHandlerDoesNotHangShutdownAndItsMessageStaysOpen() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b") { $0.shutdownTimeout = .milliseconds(300) }
        let entered = Recorder<Int>()
        let released = Recorder<Int>()
        try b.handleCommand(11) { _ in
            await entered.add(1)
            // Hangs (ignores cancellation) until the test has checked the journal (at most 60 s): far longer
            // than the shutdown timeout, however slow the machine.
            let until = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < until, await released.count == 0 { try? await Task.sleep(for: .milliseconds(50)) }
            return nil
        }
        #expect(await (try await a.send(11, to: b.address, ["x": 1])).outcome() == .confirmed)
        try await eventually { await entered.count == 1 }
        // The handler outlives the test's checks; shutdown must not wait for it (a hang would fail here, not a
        // slow machine: the bound is far above the shutdown timeout).
        let returned = await MeshNode.race(timeout: .seconds(50)) { await b.shutdown() }
        #expect(returned, "shutdown waited for a hung handler")
        // The message was not handled: it is still open in the journal, for the next start.
        let journal = try await Journal.open(path: fixture.configuration("b").journalPath, logger: testLogger)
        #expect(try await journal.openInbound(commandID: 11).count == 1)
        await journal.close()
        await released.add(1)
        await a.shutdown()
    }
}

/// A restarted node with thousands of messages pending to a peer that does not answer starts at once and
/// serves everyone else: its resend to that peer waits for window space in the background, and new messages
/// to the same peer wait behind it (found by the recovery benchmark, where `start` waited for the give-up time
/// of every window-full of messages before it returned).
@Suite struct ResumeTests {
    /// A message journaled but not handled when the process ended is dispatched at the next start with
    /// `isResumed` set (its handlers may have run before); live traffic has it unset.
    @Test func messagesDispatchedByTheResumeAreMarked() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        do {
            let journal = try await Journal.open(path: fixture.configuration("b").journalPath, logger: testLogger)
            _ = try await journal.appendInbound([InboundMessage(originNode: String(repeating: "ab", count: 16), originSeq: 1, commandID: 5,
                                                                kind: .send, peer: "127.0.0.1:9", payload: try MeshCodec.encode(["n": 1]))])
            await journal.close()
        }
        let seen = Recorder<(Int, Bool)>()
        let b = try await fixture.start("b")
        try b.handleCommand(5) { data, info in
            await seen.add((try data.getInt("n"), info.isResumed))
            return nil
        }
        let a = try await fixture.start("a")
        #expect(await (try await a.send(5, to: b.address, ["n": 2])).outcome() == .confirmed)
        try await eventually { await seen.count == 2 }
        #expect(await seen.items.map(\.0) == [1, 2])
        #expect(await seen.items.map(\.1) == [true, false])
        await a.shutdown()
        await b.shutdown()
    }

    @Test func pendingMessagesToADeadPeerDoNotHoldUpTheStart() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        // A peer that takes datagrams and never answers: a fully partitioned fault proxy.
        let silent = try await FaultProxy.start(listen: try .init(ipAddress: "127.0.0.1", port: 0), forward: try .init(ipAddress: "127.0.0.1", port: 9),
                                                faults: .init(partitioned: true), seed: 1)
        let dead = "127.0.0.1:\(silent.listenAddress.port!)"
        let pending = 5000  // more than a peer's window (4096): the resend must wait for room
        do {
            let journal = try await Journal.open(path: fixture.configuration("a").journalPath, logger: testLogger)
            let row = OutboundMessage(commandID: 7, kind: .send, peer: dead, payload: try MeshCodec.encode(["n": 1]))
            for _ in 0..<(pending / 1000) { _ = try await journal.appendOutbound(Array(repeating: row, count: 1000)) }
            await journal.close()
        }
        let b = try await fixture.start("b")
        try b.handleCommand(2001) { data in data }
        // A start that waited for the dead peer would take the give-up time (120 s): 90 s tells the two apart with room
        // for a loaded machine (20 s was once too short under two builds' load).
        let started = Task { try await fixture.start("a") { $0.retryTimeout = .seconds(120); $0.peerTimeout = .seconds(120) } }
        let finished = await MeshNode.race(timeout: .seconds(90)) { _ = try? await started.value }
        guard finished else {
            Issue.record("start waited for the dead peer")
            return
        }
        let a = try await started.value
        let answer = try await a.sendRequest(2001, to: b.address, ["ping": 1], timeout: .seconds(120))
        #expect(try answer.getInt("ping") == 1)
        try await eventually {
            try await a.journal.rows("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND peer = '\(dead)' AND status = 'pending'")
                == [["\(pending)"]]
        }
        await a.shutdown()
        await b.shutdown()
        await silent.close()
    }
}
