import Foundation
import MeshCore
import MeshJournal
import MeshTransport
import Synchronization
import Testing
@testable import Mesh

/// What a graceful shutdown promises: peers hear that the node left, running handlers are not failed by it,
/// the journal is closed when `shutdown()` returns, and the node refuses work with its own error afterwards.
@Suite struct GracefulShutdownTests {
    /// Three fresh nodes, five times over: the node that shuts down is reported `.left` by both others, never
    /// `.down` (the goodbye of its transport raced its leaving gossip and the events of a peer's transport used
    /// to win: `.down` about half of the time).
    @Test func aGracefulShutdownIsReportedAsLeftNotDown() async throws {
        // Fast heartbeats, but a member timeout no loaded machine can reach: a `.down` can only be the race.
        func configure(_ c: inout MeshConfiguration) {
            c.heartbeatInterval = .milliseconds(50)
            c.memberTimeout = .seconds(60)
        }
        for round in 0..<5 {
            let fixture = try NodeFixture()
            defer { fixture.remove() }
            let a = try await fixture.start("a") { configure(&$0) }
            let b = try await fixture.start("b") { configure(&$0); $0.seeds = [a.address] }
            let c = try await fixture.start("c") { configure(&$0); $0.seeds = [a.address] }
            try await eventually(30) { a.nodeAddresses().count == 3 && b.nodeAddresses().count == 3 }
            let (eventsA, eventsB) = (a.membershipEvents(), b.membershipEvents())
            let gone = c.address
            await c.shutdown()
            for (name, events) in [("a", eventsA), ("b", eventsB)] {
                let event = await first(events) { event in
                    switch event {
                    case .left(let m), .down(let m): m.address == gone
                    default: false
                    }
                }
                guard case .left = event else {
                    Issue.record("round \(round): \(name) saw \(String(describing: event)) for the node that shut down")
                    continue
                }
            }
            await b.shutdown()
            await a.shutdown()
        }
    }

    /// A handler still running at the shutdown timeout is cancelled, and that is not a handler failure: the
    /// message stays open (no retry, no dead letter) and its chain runs again at the next start.
    @Test func aHandlerCancelledAtShutdownLeavesItsMessageOpenForTheNextStart() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let started = Recorder<Int>()
        let b = try await fixture.start("b") { $0.shutdownTimeout = .milliseconds(200); $0.maxHandlerAttempts = 3 }
        try b.handleCommand(7) { _, info in
            await started.add(info.attempt)
            try await Task.sleep(for: .seconds(3600))  // honours cancellation by throwing
            return nil
        }
        let a = try await fixture.start("a")
        #expect(await (try await a.send(7, to: b.address, ["q": 1])).outcome() == .confirmed)
        try await eventually(30) { await started.count == 1 }
        let bAddress = b.address
        await b.shutdown()
        #expect(await started.items == [1], "the cancelled chain was retried")
        let journal = try SQLiteConnection(path: fixture.dir + "/b.sqlite", mode: .readOnly)
        #expect(try journal.rows("SELECT status, attempts, error FROM mesh_messages WHERE direction = 'in'") == [["received", "0", nil]])
        #expect(try journal.scalarInt("SELECT count(*) FROM mesh_invocation_rows WHERE outcome IS NOT NULL") == 0)
        journal.close()
        // The next start runs it again, and this time it finishes.
        let port = Int(bAddress.split(separator: ":").last!)!
        let handled = Recorder<MessageInfo>()
        let restarted = try await MeshNode.start(configuration: fixture.configuration("b", port: port), logger: testLogger) { node in
            try node.handleCommand(7) { _, info in await handled.add(info); return nil }
        }
        try await eventually(30) { await handled.count == 1 }
        #expect(await handled.items.first?.isResumed == true)
        try await eventually(30) {
            try await restarted.journal.rows("SELECT status FROM mesh_messages WHERE direction = 'in'") == [["handled"]]
        }
        await restarted.shutdown()
        await a.shutdown()
    }

    /// `shutdown()` returns once the journal is closed: no descriptor of it is open, its WAL is gone, and the
    /// stock shell can open it at once.
    @Test func shutdownReturnsWithTheJournalClosed() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let b = try await fixture.start("b")
        try b.handleCommand(7) { _ in nil }
        let a = try await fixture.start("a")
        for i in 0..<50 { _ = try await a.send(7, to: b.address, ["i": .int64(Int64(i))]) }
        try await eventually(30) { try await b.journal.rows("SELECT count(*) FROM mesh_messages WHERE status = 'handled'") == [["50"]] }
        let path = fixture.dir + "/b.sqlite"
        await b.shutdown()
        let open = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap {
            try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + $0)
        }.filter { $0.hasPrefix(path) && !$0.hasSuffix("-lock") }
        #expect(open.isEmpty, "\(open)")
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
        #expect(try SQLiteConnection(path: path, mode: .readOnly).scalarInt("SELECT count(*) FROM mesh_inbound") == 50)
        await a.shutdown()
    }

    /// After `shutdown()` every send fails with the node's own `notStarted`, not a journal error.
    @Test func sendsAfterShutdownFailWithNotStarted() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let target = "127.0.0.1:9"
        await a.shutdown()
        let calls: [(String, @Sendable () async throws -> Void)] = [
            ("send", { _ = try await a.send(1, to: target, ["x": 1]) }),
            ("usend", { _ = try await a.usend(1, to: target, ["x": 1]) }),
            ("sendRequest", { _ = try await a.sendRequest(1, to: target, ["x": 1]) }),
            ("sendMany", { _ = try await a.sendMany(1, to: [target], ["x": 1]) }),
            ("redrive", { _ = try await a.redrive(1, kind: .send, payload: [], replayOf: "x:1", to: target) }),
        ]
        for (name, call) in calls {
            let error = await #expect(throws: MeshError.self, "\(name)") { try await call() }
            #expect(error?.code == .notStarted, "\(name): \(String(describing: error))")
        }
    }

    /// A dead request re-queued after its error response went out runs its handlers again but is not answered a
    /// second time: the requester's journal holds one response for it.
    @Test func aRequeuedDeadRequestIsNotAnsweredTwice() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let failures = Mutex(1)  // fails once (its only attempt), then succeeds
        let runs = Recorder<Int>()
        let b = try await fixture.start("b") { $0.maxHandlerAttempts = 1 }
        try b.handleCommand(3000) { _, info in
            await runs.add(info.attempt)
            if failures.withLock({ $0 > 0 ? { $0 -= 1; return true }(&$0) : false }) { throw ReferenceFailure() }
            return ["fine": true]
        }
        let a = try await fixture.start("a")
        let error = await #expect(throws: MeshError.self) { try await a.sendRequest(3000, to: b.address, ["q": 1], timeout: .seconds(30)) }
        #expect(error?.code == .handlerError)
        let dead = try await b.deadLetters()
        #expect(dead.count == 1 && dead.first?.isAnswered == true)
        #expect(try await b.requeueDead(dead.map(\.id)) == 1)
        try await eventually(30) { try await b.journal.rows("SELECT status FROM mesh_messages WHERE direction = 'in'") == [["handled"]] }
        #expect(await runs.items == [1, 1])
        try await b.journal.barrier()
        #expect(try await b.journal.rows("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND kind = 'response'") == [["1"]])
        try await eventually(30) {
            try await b.journal.rows("SELECT status FROM mesh_messages WHERE direction = 'out'") == [["acked"]]
        }
        #expect(try await a.journal.rows("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND kind = 'response'") == [["1"]])
        await a.shutdown()
        await b.shutdown()
    }
}

/// What a test handler throws.
struct ReferenceFailure: Error, CustomStringConvertible {
    var description: String { "this handler fails on purpose" }
}
