import Foundation
import Logging
import Mesh
import MeshBench
import MeshCore
import MeshJournal
import MeshTransport
import Testing

/// A real `mesh node` child process is SIGKILLed while messages stream to it, then restarted on the same
/// journal: nothing acknowledged is lost, nothing is journaled twice, every handler chain completes.
@Suite(.serialized) struct CrashResumeTests {
    /// Both directions at once: this process's node A streams 20,000 messages to child B while B's traffic
    /// generator streams 20,000 to A. B is SIGKILLed mid-stream and restarted on the same journal. With `full`
    /// durability B's WAL file runs ahead of its log with zeros (written by a thread of its own, which the kill
    /// may catch mid-write): the restart recovers the log up to them.
    @Test(arguments: ["normal", "full"])
    func nodeKilledMidStreamInBothDirectionsLosesNothingAndJournalsNothingTwice(durability: String) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = FileManager.default.temporaryDirectory.path + "/mesh-crash-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = ClusterKey.generate()
        try key.hex.write(toFile: dir + "/cluster.key", atomically: true, encoding: .utf8)
        let total = 20_000

        var logger = Logger(label: "crash-test")
        logger.logLevel = .critical
        var config = MeshConfiguration(address: "127.0.0.1:0", journalPath: dir + "/a.sqlite", clusterKey: key)
        config.retryTimeout = .seconds(120)
        config.peerTimeout = .seconds(120)
        let a = try await MeshNode.start(configuration: config, logger: logger)
        try a.handleCommand(2048) { _ in nil }

        let journalB = dir + "/b.sqlite"
        func childArguments(port: String) -> [String] {
            // Paced (2,000 a second, half the rate of A's workers below), so the kill lands mid-stream in both
            // directions however the machine's load favours one process: B, a process of its own, keeps its pace while
            // tests running beside this one in this process can starve A's tasks (and the polling below) for seconds.
            ["node", "--bind", "127.0.0.1:\(port)", "--journal", journalB, "--key-file", dir + "/cluster.key", "--sink", "1024",
             "--send-to", a.address, "--send-command", "2048", "--send-count", "\(total)", "--send-rate", "2000",
             "--durability", durability]
        }
        let first = try await MeshCommandTests.startNode( childArguments(port: "\(ChildNodeProcess.restartablePort())"))
        let port = first.address.split(separator: ":").last.map(String.init)!
        let target = first.address
        let sender = Task {
            try await withThrowingTaskGroup(of: [MeshNode.Delivery].self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var mine: [MeshNode.Delivery] = []
                        for i in stride(from: worker, to: total, by: 8) {
                            mine.append(try await a.send(1024, to: target, ["i": .int64(Int64(i))]))
                            try await Task.sleep(for: .milliseconds(2))  // 8 workers: about 4,000 a second
                        }
                        return mine
                    }
                }
                return try await group.reduce(into: [MeshNode.Delivery]()) { $0 += $1 }
            }
        }
        // Kill B once part of both streams went through (acknowledged by B, received from B). Watched from a thread
        // of its own through a reader of A's journal: tests running beside this one in this process can hold both
        // threads of the cooperative pool for seconds, and a watcher on the pool then killed B after its stream
        // had ended (B's 10 s are a process of their own).
        let journalA = dir + "/a.sqlite"
        let (ackedAtKill, receivedAtKill) = try await offThePool { () throws -> (Int64, Int64) in
            let db = try SQLiteConnection(path: journalA, mode: .readOnly)
            let killDeadline = Date().addingTimeInterval(300)
            var counts: (acked: Int64, received: Int64) = (0, 0)
            while Date() < killDeadline {
                counts = (try db.scalarInt("SELECT count(*) FROM mesh_outbound_state WHERE status = 1") ?? 0,
                          try db.scalarInt("SELECT count(*) FROM mesh_inbound WHERE command_id = 2048") ?? 0)
                // Mid-stream both ways: after 2,000 each, or as soon as A got one through once B's stream is a quarter
                // done (on a loaded machine B can outpace this process; seven seconds of its stream are left then).
                if counts.acked >= 2000 && counts.received >= 2000 { break }
                if counts.acked >= 1 && counts.received >= Int64(total) / 4 { break }
                Thread.sleep(forTimeInterval: 0.005)
            }
            first.kill()
            return counts
        }
        #expect(ackedAtKill >= 1 && ackedAtKill < Int64(total), "killed after \(ackedAtKill) acknowledgements")
        #expect(receivedAtKill >= 1 && receivedAtKill < Int64(total), "killed after receiving \(receivedAtKill)")
        // The chains the kill interrupted: journaled, not finished. Each must run again after the restart.
        let openAtKill = try SQLiteConnection(path: journalB, mode: .readOnly)
            .rows("SELECT id FROM mesh_messages WHERE direction = 'in' AND status <> 'handled'").compactMap { $0[0] }
        let restartedAt = WallClock.nowMs()

        let second = try await MeshCommandTests.startNode( childArguments(port: port))
        let deliveries = try await sender.value
        var failures = 0
        for delivery in deliveries where await delivery.outcome() != .confirmed { failures += 1 }
        #expect(failures == 0)
        // Everything B generated (before and after the kill) reaches A, each message once, every chain done.
        // The wait fails after 60 s without progress (a stall), however slow a loaded CI machine is.
        var handledAtA: Int64 = 0
        var lastProgress = ContinuousClock.now
        while ContinuousClock.now - lastProgress < .seconds(60) {
            let now = try await a.journal.read { db in
                try db.scalarInt("SELECT count(*) FROM mesh_inbound_state WHERE command_id = 2048 AND status = 1") ?? 0
            }
            if now > handledAtA { lastProgress = .now }
            handledAtA = now
            if handledAtA >= Int64(total) { break }
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(handledAtA == Int64(total))
        #expect(try await a.journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_inbound") } == Int64(total))
        // Every number B generated reached A once (origin sequences are unique by construction; payloads are not).
        #expect(try await a.journal.read { db in
            try db.scalarInt("SELECT count(DISTINCT json_extract(payload_json, '$.i')) FROM mesh_inbound")
        } == Int64(total))
        #expect(await second.terminate() == 0)
        await a.shutdown()

        let b = try SQLiteConnection(path: journalB, mode: .readOnly)
        // Every message A sent is journaled once at B: the payloads' numbers, not only the (unique) origin sequences.
        #expect(try b.scalarInt("SELECT count(*) FROM mesh_inbound") == Int64(total))
        #expect(try b.scalarInt("SELECT count(DISTINCT json_extract(payload_json, '$.i')) FROM mesh_inbound") == Int64(total))
        #expect(try b.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND status <> 'handled'") == 0)  // every chain completed
        #expect(try b.scalarInt("SELECT count(*) FROM mesh_outbound WHERE command_id = 2048") == Int64(total))
        #expect(try b.scalarText("PRAGMA integrity_check") == "ok")
        // At-least-once: each chain open at the kill ran again from its first handler after the restart.
        for id in openAtKill {
            #expect(try b.scalarInt("""
                SELECT count(*) FROM mesh_invocation_rows WHERE inbound_id = \(id) AND handler_index = 0 AND outcome = 0
                AND started_at >= \(restartedAt)
                """) == 1, "message row \(id), open at the kill, did not run again after the restart")
        }
        print("crash test (\(durability)): B killed after \(ackedAtKill) acknowledged and \(receivedAtKill) sent of \(total) each way; "
            + "\(openAtKill.count) chains open at the kill, each run again after the restart")
    }
}
