import Foundation
import Logging
import Mesh
import MeshBench
import MeshCore
import MeshJournal
import MeshMigrations
import MeshTransport
import Testing

/// The crash matrix: a real `mesh node` child is SIGKILLed by a failpoint (`MESH_FAILPOINT`) at each step of a
/// message's life, restarted on the same journal, and the invariants are checked: no acknowledged message
/// lost, nothing journaled twice at the receiver, every handler chain completed, `PRAGMA integrity_check` ok.
@Suite(.serialized) struct CrashMatrixTests {
    static let total = 1500

    struct Fixture {
        let dir: String
        let key: ClusterKey
        var keyFile: String { dir + "/cluster.key" }

        init() throws {
            dir = FileManager.default.temporaryDirectory.path + "/mesh-matrix-" + UUID().uuidString.prefix(8).lowercased()
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            key = ClusterKey.generate()
            try key.hex.write(toFile: keyFile, atomically: true, encoding: .utf8)
        }

        func remove() { try? FileManager.default.removeItem(atPath: dir) }

        /// The in-test node, patient enough (120 s) to outlast a child's restart on a loaded machine.
        func startLocal(handler: UInt16? = nil) async throws -> MeshNode {
            var logger = Logger(label: "crash-matrix")
            logger.logLevel = .critical
            var config = MeshConfiguration(address: "127.0.0.1:0", journalPath: dir + "/local.sqlite", clusterKey: key)
            config.retryTimeout = .seconds(120)
            config.peerTimeout = .seconds(120)
            let node = try await MeshNode.start(configuration: config, logger: logger)
            if let handler { try node.handleCommand(handler) { _ in nil } }
            return node
        }
    }

    /// Waits for `condition`, failing after 60 s without progress in `progress` (a stall), however slow the machine.
    static func awaitProgress(_ what: String, _ progress: () async throws -> Int64, until done: (Int64) -> Bool) async throws -> Int64 {
        var last: Int64 = -1
        var lastChange = ContinuousClock.now
        while true {
            let now = try await progress()
            if done(now) { return now }
            if now != last { last = now; lastChange = .now }
            if ContinuousClock.now - lastChange > .seconds(60) {
                Issue.record("\(what): stalled at \(now)")
                return now
            }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// The port a killed node restarts on is one no bind to port 0 can take meanwhile: below the ephemeral range.
    @Test func aRestartablePortIsFreeAndBelowTheEphemeralRange() throws {
        let range = (try String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) }
        let port = ChildNodeProcess.restartablePort()
        #expect(port >= 10_000 && port < (range.first ?? 32768), "\(port) against \(range)")
    }

    /// The receiver dies at the failpoint while this process streams to it, then restarts.
    /// Failpoint and the pass it fires at, mid-stream: the 400th message (failpoints count messages, never
    /// batches, whose sizes depend on timing). The receiver's handlers are synchronous (`--sink`: run inside the
    /// message's transaction, so a kill there undoes the message too) or, with `/async`, async (`--sink-async`:
    /// run on the lane after the commit).
    @Test(arguments: ["inbound.after-insert@400", "handler.inside@400", "handler.between@400",
                      "handler.inside@400/async", "handler.between@400/async"])
    func receiverKilledAtFailpoint(_ argument: String) async throws {
        let failpoint = String(argument.split(separator: "/")[0])
        let sink = argument.hasSuffix("/async") ? "--sink-async" : "--sink"
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let fixture = try Fixture()
        defer { fixture.remove() }
        let a = try await fixture.startLocal()
        let journalB = fixture.dir + "/b.sqlite"
        func arguments(port: String) -> [String] {
            // Two handlers on 1024, so there is a "between".
            ["node", "--bind", "127.0.0.1:\(port)", "--journal", journalB, "--key-file", fixture.keyFile, sink, "1024", sink, "1024"]
        }
        let log = fixture.dir + "/b.log"
        let first = try await MeshCommandTests.startNode(arguments(port: "\(ChildNodeProcess.restartablePort())"), environment: ["MESH_FAILPOINT": failpoint], stderrPath: log)
        let port = String(first.address.split(separator: ":").last!)
        let target = first.address
        let total = Self.total
        let sender = Task {
            try await withThrowingTaskGroup(of: [MeshNode.Delivery].self) { group in
                for worker in 0..<4 {
                    group.addTask {
                        var mine: [MeshNode.Delivery] = []
                        for i in stride(from: worker, to: total, by: 4) { mine.append(try await a.send(1024, to: target, ["i": .int64(Int64(i))])) }
                        return mine
                    }
                }
                return try await group.reduce(into: [MeshNode.Delivery]()) { $0 += $1 }
            }
        }
        let signal = await first.waitForExit(seconds: 60)
        #expect(signal == SIGKILL, "\(failpoint): the child ended with \(String(describing: signal))")
        if signal == nil { await first.kill() }
        // The message a handler failpoint interrupted (its note names it), and when the restart began.
        let interrupted = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("failpoint handler.") }.flatMap { $0.split(separator: " ").last.map(String.init) }
        let restartedAt = WallClock.nowMs()
        let second = try await MeshCommandTests.startNode(arguments(port: port))
        var unconfirmed = 0
        for delivery in try await sender.value where await delivery.outcome() != .confirmed { unconfirmed += 1 }
        #expect(unconfirmed == 0, "\(failpoint): \(unconfirmed) not confirmed")
        let reader = try SQLiteConnection(path: journalB, mode: .readOnly)
        _ = try await Self.awaitProgress("\(failpoint): handled at B", {
            try reader.scalarInt("SELECT count(*) FROM mesh_inbound_state WHERE status = 1") ?? 0
        }, until: { $0 >= Int64(total) })
        #expect(await second.terminate() == 0)
        await a.shutdown()

        let b = try SQLiteConnection(path: journalB, mode: .readOnly)
        #expect(try b.scalarInt("SELECT count(*) FROM mesh_inbound") == Int64(total), "\(failpoint)")
        #expect(try b.scalarInt("SELECT count(DISTINCT origin_seq) FROM mesh_inbound") == Int64(total), "\(failpoint): journaled twice")
        #expect(try b.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND status <> 'handled'") == 0, "\(failpoint): unfinished chains")
        // Every chain completed: both handlers of every message have a finished invocation.
        let invocations = try b.rows("SELECT handler_index, attempt, outcome, finished_at IS NULL, count(*) FROM mesh_invocation_rows GROUP BY 1, 2, 3, 4")
        #expect(try b.scalarInt("""
            SELECT count(*) FROM mesh_inbound i WHERE (SELECT count(DISTINCT handler_index) FROM mesh_invocation_rows v
                WHERE v.inbound_id = i.id AND v.finished_at IS NOT NULL AND v.outcome = 0) = 2
            """) == Int64(total), "\(failpoint): a chain did not complete; invocations by (handler, attempt, outcome, unfinished): \(invocations)")
        #expect(try b.scalarText("PRAGMA integrity_check") == "ok")
        #expect(try b.rows("PRAGMA foreign_key_check").isEmpty)
        // At-least-once: the chain a handler failpoint interrupted ran again, from its first handler, after the restart.
        if failpoint.hasPrefix("handler.") {
            let id = try #require(interrupted, "\(failpoint): no failpoint note in the child's log")
            #expect(try b.scalarInt("""
                SELECT count(*) FROM mesh_invocations WHERE message_id = '\(id)' AND handler_index = 0 AND outcome = 'ok'
                AND started_at_ms >= \(restartedAt)
                """) == 1, "\(failpoint): \(id) did not run again from its first handler after the restart")
        }
    }

    /// A responder dies after journaling an error response and before sending it; its restart resends the
    /// response as an error, so the requester, still waiting, gets `handlerError` with the remote text (the
    /// error flag was once lost on resend, and the requester saw an undecodable response).
    @Test func anErrorResponseResentAfterACrashIsStillAnError() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let fixture = try Fixture()
        defer { fixture.remove() }
        let a = try await fixture.startLocal()
        // B's first journaled outbound message is the error response: it dies right after committing it.
        let (result, second, journalB) = try await requestAcrossResponderCrash(fixture, from: a, handler: "--fail",
                                                                               failpoint: "outbound.after-insert@1", ["q": 1])
        let error = #expect(throws: MeshError.self) { try result.get() }
        #expect(error?.code == .handlerError)
        #expect(error?.message.contains("mesh node --fail 3000: this handler always fails") == true, "\(String(describing: error))")
        // The response, once confirmed by the requester's journal, is journaled acked at B.
        let b = try SQLiteConnection(path: journalB, mode: .readOnly)
        _ = try await Self.awaitProgress("response acked at B", {
            try b.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND kind = 'response' AND status = 'acked'") ?? 0
        }, until: { $0 == 1 })
        #expect(try b.rows("SELECT kind, status FROM mesh_messages WHERE direction = 'out'") == [["response", "acked"]])
        #expect(await second.terminate() == 0)
        await a.shutdown()
    }

    /// A responder dies right after its async handler chain ended and was committed, before the response left. The
    /// chain's end and the response are one transaction, so the restart resends the response: the requester, still
    /// waiting, gets its answer, and the handler ran once. (When the end was committed on its own, a kill between
    /// the two commits left the request handled and unanswered: the requester timed out.)
    @Test func aRequestHandledBeforeACrashIsStillAnswered() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let fixture = try Fixture()
        defer { fixture.remove() }
        let a = try await fixture.startLocal()
        let log = fixture.dir + "/b.log"
        let (result, second, journalB) = try await requestAcrossResponderCrash(fixture, from: a, handler: "--echo-async",
                                                                               failpoint: "handler.after-chain@1", ["q": 7], stderrPath: log)
        let note = try String(contentsOfFile: log, encoding: .utf8)
        #expect(note.contains("failpoint handler.after-chain: "), "\(note)")
        let answer = try result.get()
        #expect(answer.int64("q") == 7)
        let b = try SQLiteConnection(path: journalB, mode: .readOnly)
        _ = try await Self.awaitProgress("response acked at B", {
            try b.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND kind = 'response' AND status = 'acked'") ?? 0
        }, until: { $0 == 1 })
        // Handled once: the restart did not run the chain again (its end was committed before the kill).
        #expect(try b.rows("SELECT kind, status FROM mesh_messages WHERE direction = 'in'") == [["request", "handled"]])
        #expect(try b.scalarInt("SELECT answered FROM mesh_inbound_state") == 1)
        #expect(try b.scalarInt("SELECT count(*) FROM mesh_invocations WHERE outcome = 'ok'") == 1)
        #expect(await second.terminate() == 0)
        await a.shutdown()
    }

    /// A child `mesh node` B answering command 3000 with `handler` (its CLI flag) is killed at `failpoint` while a
    /// request from `a` waits for it (up to 120 s); B restarts on the same port and journal. Returns how the request
    /// ended, the restarted B and B's journal.
    func requestAcrossResponderCrash(_ fixture: Fixture, from a: MeshNode, handler: String, failpoint: String, _ data: MeshData,
                                     stderrPath: String? = nil) async throws
        -> (result: Result<MeshData, any Error>, second: ChildNodeProcess, journal: String) {
        let journalB = fixture.dir + "/b.sqlite"
        func arguments(port: String) -> [String] {
            ["node", "--bind", "127.0.0.1:\(port)", "--journal", journalB, "--key-file", fixture.keyFile, handler, "3000"]
        }
        let first = try await MeshCommandTests.startNode(arguments(port: "\(ChildNodeProcess.restartablePort())"),
                                                         environment: ["MESH_FAILPOINT": failpoint], stderrPath: stderrPath)
        let port = String(first.address.split(separator: ":").last!)
        let target = first.address
        let request = Task { try await a.sendRequest(3000, to: target, data, timeout: .seconds(120)) }
        let signal = await first.waitForExit(seconds: 60)
        #expect(signal == SIGKILL, "\(failpoint): the child ended with \(String(describing: signal))")
        if signal == nil { await first.kill() }
        let second = try await MeshCommandTests.startNode(arguments(port: port))
        return (await request.result, second, journalB)
    }

    /// The sender dies at the failpoint while streaming to this process, then restarts and resends.
    /// Per message for `outbound.after-insert`, per batch of acknowledgements for `outbound.after-send`.
    @Test(arguments: ["outbound.after-insert@400", "outbound.after-send@1"])
    func senderKilledAtFailpoint(_ failpoint: String) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let fixture = try Fixture()
        defer { fixture.remove() }
        let a = try await fixture.startLocal(handler: 2048)
        let journalB = fixture.dir + "/b.sqlite"
        let total = Self.total
        let arguments = ["node", "--bind", "127.0.0.1:0", "--journal", journalB, "--key-file", fixture.keyFile,
                         "--send-to", a.address, "--send-command", "2048", "--send-count", "\(total)"]
        let first = try await MeshCommandTests.startNode(arguments, environment: ["MESH_FAILPOINT": failpoint])
        let signal = await first.waitForExit(seconds: 60)
        #expect(signal == SIGKILL, "\(failpoint): the child ended with \(String(describing: signal))")
        if signal == nil { await first.kill() }
        let second = try await MeshCommandTests.startNode(arguments)
        // B resends what it had not seen acknowledged and generates the rest; A handles each message once.
        _ = try await Self.awaitProgress("\(failpoint): handled at A", {
            try await a.journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_inbound_state WHERE status = 1") ?? 0 }
        }, until: { $0 >= Int64(total) })
        let reader = try SQLiteConnection(path: journalB, mode: .readOnly)
        _ = try await Self.awaitProgress("\(failpoint): acked at B", {
            try reader.scalarInt("SELECT count(*) FROM mesh_outbound_state WHERE status = 1") ?? 0
        }, until: { $0 >= Int64(total) })
        #expect(await second.terminate() == 0)
        #expect(try await a.journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_inbound") } == Int64(total), "\(failpoint)")
        #expect(try await a.journal.read { db in try db.scalarInt("SELECT count(DISTINCT origin_seq) FROM mesh_inbound") } == Int64(total))
        await a.shutdown()
        let b = try SQLiteConnection(path: journalB, mode: .readOnly)
        #expect(try b.scalarInt("SELECT count(*) FROM mesh_outbound WHERE command_id = 2048") == Int64(total), "\(failpoint)")
        #expect(try b.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND status <> 'acked'") == 0, "\(failpoint): not all acked")
        #expect(try b.scalarText("PRAGMA integrity_check") == "ok")
    }

    /// Killed inside a pruning transaction that deleted rows in both directions (B sends to A and receives from
    /// A, so it has finished messages of both to prune): after the kill every row that transaction deleted is
    /// back — message, state row, invocations — and the restarted node goes on pruning and receiving.
    @Test func receiverKilledWhilePruning() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let fixture = try Fixture()
        defer { fixture.remove() }
        let a = try await fixture.startLocal(handler: 2048)
        let journalB = fixture.dir + "/b.sqlite"
        let config = fixture.dir + "/b.json"
        try """
            {"address": "127.0.0.1", "port": \(ChildNodeProcess.restartablePort()), "journal": "b.sqlite", "clusterKeyFile": "cluster.key",
             "retention": 1000, "pruneInterval": 50}
            """.write(toFile: config, atomically: true, encoding: .utf8)
        let log = fixture.dir + "/b.log"
        // The second pruning transaction that deletes in both directions dies before its commit.
        let first = try await MeshCommandTests.startNode(["node", "--config", config, "--sink", "1024", "--send-to", a.address,
                                                    "--send-command", "2048", "--send-count", "100000", "--send-rate", "400"],
                                                   environment: ["MESH_FAILPOINT": "prune.during@2"], stderrPath: log)
        let port = String(first.address.split(separator: ":").last!)
        // Traffic until the failpoint fires (rows become prunable 1 s after they finish).
        var sent = 0
        while first.process.isRunning && sent < 40_000 {
            _ = try? await a.send(1024, to: first.address, ["i": .int64(Int64(sent))])
            sent += 1
            if sent % 20 == 0 { try await Task.sleep(for: .milliseconds(50)) }
        }
        let signal = await first.waitForExit(seconds: 60)
        #expect(signal == SIGKILL, "the child ended with \(String(describing: signal))")
        if signal == nil { await first.kill() }
        // What the killed transaction had deleted, as its failpoint reported it.
        let report = try #require((try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n")
            .first { $0.hasPrefix("failpoint prune.during: ") }, "no failpoint report in the child's log")
        func ids(_ label: String) -> [Int64] {
            let words = report.split(separator: " ")
            guard let at = words.firstIndex(of: Substring(label)), at + 1 < words.count else { return [] }
            return words[at + 1].split(separator: ",").compactMap { Int64($0) }
        }
        let outbound = ids("outbound")
        let inbound = ids("inbound")
        #expect(!outbound.isEmpty && !inbound.isEmpty, "\(report.prefix(200))")
        let b = try SQLiteConnection(path: journalB, mode: .readOnly)
        #expect(try b.scalarText("PRAGMA integrity_check") == "ok")
        #expect(try b.rows("PRAGMA foreign_key_check").isEmpty)
        // Rolled back whole: every deleted row is there again, with its state row and (inbound) its invocation.
        let outList = outbound.map(String.init).joined(separator: ",")
        let inList = inbound.map(String.init).joined(separator: ",")
        #expect(try b.scalarInt("SELECT count(*) FROM mesh_outbound WHERE seq IN (\(outList))") == Int64(outbound.count))
        #expect(try b.scalarInt("SELECT count(*) FROM mesh_outbound_state WHERE seq IN (\(outList))") == Int64(outbound.count))
        #expect(try b.scalarInt("SELECT count(*) FROM mesh_inbound WHERE id IN (\(inList))") == Int64(inbound.count))
        #expect(try b.scalarInt("SELECT count(*) FROM mesh_inbound_state WHERE id IN (\(inList)) AND status = 1") == Int64(inbound.count))
        #expect(try b.scalarInt("SELECT count(DISTINCT inbound_id) FROM mesh_invocation_rows WHERE inbound_id IN (\(inList))") == Int64(inbound.count))
        b.close()
        // The restarted node opens the journal and goes on pruning (those rows too) and receiving.
        let second = try await MeshCommandTests.startNode(["node", "--config", config, "--bind", "127.0.0.1:\(port)", "--sink", "1024"])
        let after = try await a.send(1024, to: second.address, ["after": true])
        #expect(await after.outcome() == .confirmed)
        let reader = try SQLiteConnection(path: journalB, mode: .readOnly)
        _ = try await Self.awaitProgress("the rolled-back rows pruned after the restart", {
            (try reader.scalarInt("SELECT count(*) FROM mesh_outbound WHERE seq IN (\(outList))") ?? 0)
                + (try reader.scalarInt("SELECT count(*) FROM mesh_inbound WHERE id IN (\(inList))") ?? 0)
        }, until: { $0 == 0 })
        reader.close()
        #expect(await second.terminate() == 0)
        await a.shutdown()
        #expect(try SQLiteConnection(path: journalB, mode: .readOnly).scalarText("PRAGMA integrity_check") == "ok")
    }

    /// Killed inside a migration's transaction: the journal stays at its old version, intact, and migrates
    /// on the next attempt.
    @Test func killedDuringAMigration() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let fixture = try Fixture()
        defer { fixture.remove() }
        let path = fixture.dir + "/v1.sqlite"
        do {
            let db = try SQLiteConnection(path: path, mode: .readWriteCreate)
            try db.execute("PRAGMA journal_mode = WAL")
            _ = try Migrator(migrations: [MeshMigrations.all[0]]).migrate(db, nowMs: 1)
            try db.execute("INSERT INTO mesh_node(singleton, node_id, boot_epoch, last_out_seq, created_at, opened_at) VALUES (1, '0123456789abcdef0123456789abcdef', 1, 0, 1, 1)")
        }
        let killed = try await MeshCommandTests.run(["journal", "migrate", path], environment: ["MESH_FAILPOINT": "migration.during@1"])
        #expect(killed.signal == SIGKILL, "status \(killed.status), stderr \(killed.stderr)")
        let db = try SQLiteConnection(path: path, mode: .readOnly)
        #expect(try Migrator().status(db).applied.map(\.id) == [1])  // the interrupted migration left no trace
        #expect(try db.scalarText("PRAGMA integrity_check") == "ok")
        let again = try await MeshCommandTests.run(["journal", "migrate", path])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try Migrator().status(SQLiteConnection(path: path, mode: .readOnly)).applied.map(\.id) == MeshMigrations.all.map(\.id))
    }
}
