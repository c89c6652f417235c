import Foundation
import MeshBench
import MeshCore
import MeshFaultProxy
import MeshJournal
import MeshTransport
import Testing

/// Random kills of both ends of a stream: child B streams to child C, and each dies by a failpoint at a seeded
/// random message (SIGKILL, mid-stream by construction) and is restarted on its journal by this test. At the end
/// every message is journaled and handled once at C, acknowledged at B, every chain a kill interrupted ran again,
/// and both journals pass `PRAGMA integrity_check`.
///
/// Short by default (3 kills, 8,000 messages at 1,000 per second); `MESH_SOAK=1` runs the full version (30 kills, 50,000 messages).
extension StreamingChildProcessTests {
@Suite(.serialized) struct RandomKillsTests {
    static let soak = ProcessInfo.processInfo.environment["MESH_SOAK"] == "1"

    @Test func randomKillsOfSenderAndReceiverLoseNothingAndDuplicateNothing() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let kills = Self.soak ? 30 : 3
        let total = Self.soak ? 50_000 : 8_000
        let seed = UInt64(ProcessInfo.processInfo.environment["MESH_SEED"] ?? "") ?? UInt64.random(in: 1...1_000_000)
        var rng = SplitMix64(seed: seed)
        let dir = FileManager.default.temporaryDirectory.path + "/mesh-kills-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ClusterKey.generate().hex.write(toFile: dir + "/cluster.key", atomically: true, encoding: .utf8)

        func receiverArguments(port: String) -> [String] {
            ["node", "--bind", "127.0.0.1:\(port)", "--journal", dir + "/c.sqlite", "--key-file", dir + "/cluster.key", "--sink", "1024"]
        }
        func senderArguments(port: String, receiverPort: String) -> [String] {
            ["node", "--bind", "127.0.0.1:\(port)", "--journal", dir + "/b.sqlite", "--key-file", dir + "/cluster.key",
             "--send-to", "127.0.0.1:\(receiverPort)", "--send-command", "1024", "--send-count", "\(total)",
             "--send-rate", Self.soak ? "3000" : "1000"]
        }
        func count(_ path: String, _ sql: String) -> Int64 {
            (try? SQLiteConnection(path: path, mode: .readOnly).scalarInt(sql)) ?? 0
        }
        // The kills come from failpoints at seeded random messages (each process dies by itself at its N-th newly
        // journaled message: the sender after journaling it, the receiver after committing it, before acknowledging
        // it), so every kill lands mid-stream whatever the machine's load does to this test's scheduling. N is at
        // most half of what that process still has to journal, so an armed process always dies.
        var planned = kills
        func environment(remaining: Int64, point: String) -> [String: String] {
            guard planned > 0, remaining > 20 else { return [:] }
            planned -= 1
            let at = 1 + Int64(rng.next() % UInt64(remaining / 2))
            return ["MESH_FAILPOINT": "\(point)@\(at)"]
        }
        func cHas() -> Int64 { count(dir + "/c.sqlite", "SELECT count(*) FROM mesh_inbound") }
        func bHas() -> Int64 { count(dir + "/b.sqlite", "SELECT count(*) FROM mesh_outbound") }
        var receiverArmed = environment(remaining: Int64(total), point: "inbound.after-insert")
        var receiver = try await MeshCommandTests.startNode(receiverArguments(port: "\(ChildNodeProcess.restartablePort())"), environment: receiverArmed)
        let receiverPort = String(receiver.address.split(separator: ":").last!)
        var senderArmed = environment(remaining: Int64(total), point: "outbound.after-insert")
        var sender = try await MeshCommandTests.startNode(senderArguments(port: "\(ChildNodeProcess.restartablePort())", receiverPort: receiverPort), environment: senderArmed)
        let senderPort = String(sender.address.split(separator: ":").last!)
        defer {
            if sender.process.isRunning { sender.kill() }
            if receiver.process.isRunning { receiver.kill() }
        }

        var killed = (sender: 0, receiver: 0)
        var killPoints: [Int64] = []
        // For each receiver kill: the chains it interrupted (journaled, not finished) and when the restart began.
        var interrupted: [(ids: [String], restartedAt: Int64)] = []
        // Until no process is armed any more: wait for an armed one to die, restart it (armed while kills remain).
        let deadline = ContinuousClock.now + .seconds(Self.soak ? 1800 : 300)
        while !receiverArmed.isEmpty || !senderArmed.isEmpty {
            guard ContinuousClock.now < deadline else {
                Issue.record("seed \(seed): an armed process did not die (\(receiverArmed) \(senderArmed))")
                break
            }
            if !receiverArmed.isEmpty, !receiver.process.isRunning {
                #expect(receiver.process.terminationReason == .uncaughtSignal && receiver.process.terminationStatus == SIGKILL,
                        "seed \(seed): the receiver ended otherwise than by its failpoint")
                killed.receiver += 1
                killPoints.append(count(dir + "/c.sqlite", "SELECT count(*) FROM mesh_inbound_state WHERE status = 1"))
                let open = (try? SQLiteConnection(path: dir + "/c.sqlite", mode: .readOnly)
                    .rows("SELECT id FROM mesh_messages WHERE direction = 'in' AND status <> 'handled'").compactMap { $0[0] }) ?? []
                interrupted.append((open, WallClock.nowMs()))
                receiverArmed = environment(remaining: Int64(total) - cHas(), point: "inbound.after-insert")
                receiver = try await MeshCommandTests.startNode(receiverArguments(port: receiverPort), environment: receiverArmed)
            } else if !senderArmed.isEmpty, !sender.process.isRunning {
                #expect(sender.process.terminationReason == .uncaughtSignal && sender.process.terminationStatus == SIGKILL,
                        "seed \(seed): the sender ended otherwise than by its failpoint")
                killed.sender += 1
                killPoints.append(count(dir + "/c.sqlite", "SELECT count(*) FROM mesh_inbound_state WHERE status = 1"))
                senderArmed = environment(remaining: Int64(total) - bHas(), point: "outbound.after-insert")
                sender = try await MeshCommandTests.startNode(senderArguments(port: senderPort, receiverPort: receiverPort),
                                                              environment: senderArmed)
            } else {
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        #expect(killed.sender + killed.receiver == kills, "seed \(seed): \(killed)")
        // Then let the stream finish: every message handled at C and acknowledged at B (fails after 60 s without progress).
        let progressC = try SQLiteConnection(path: dir + "/c.sqlite", mode: .readOnly)
        let progressB = try SQLiteConnection(path: dir + "/b.sqlite", mode: .readOnly)
        _ = try await CrashMatrixTests.awaitProgress("handled at C (seed \(seed))", {
            try progressC.scalarInt("SELECT count(*) FROM mesh_inbound_state WHERE status = 1") ?? 0
        }, until: { $0 >= Int64(total) })
        _ = try await CrashMatrixTests.awaitProgress("acknowledged at B (seed \(seed))", {
            try progressB.scalarInt("SELECT count(*) FROM mesh_outbound_state WHERE status = 1") ?? 0
        }, until: { $0 >= Int64(total) })
        #expect(await sender.terminate() == 0)
        #expect(await receiver.terminate() == 0)

        let finalC = try SQLiteConnection(path: dir + "/c.sqlite", mode: .readOnly)
        let finalB = try SQLiteConnection(path: dir + "/b.sqlite", mode: .readOnly)
        #expect(try finalC.scalarInt("SELECT count(*) FROM mesh_inbound") == Int64(total), "seed \(seed)")
        // Every number the generator sent, once (the origin sequences are unique by construction; the payloads are not).
        #expect(try finalC.scalarInt("SELECT count(DISTINCT json_extract(payload_json, '$.i')) FROM mesh_inbound") == Int64(total),
                "seed \(seed): lost or journaled twice")
        #expect(try finalC.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND status <> 'handled'") == 0, "seed \(seed)")
        #expect(try finalB.scalarInt("SELECT count(*) FROM mesh_outbound WHERE command_id = 1024") == Int64(total), "seed \(seed)")
        #expect(try finalB.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND status <> 'acked'") == 0, "seed \(seed)")
        #expect(try finalC.scalarText("PRAGMA integrity_check") == "ok")
        #expect(try finalB.scalarText("PRAGMA integrity_check") == "ok")
        // At-least-once: every chain a receiver kill interrupted ran again from its first handler after that restart.
        for (ids, restartedAt) in interrupted {
            for id in ids {
                #expect(try finalC.scalarInt("""
                    SELECT count(*) FROM mesh_invocation_rows WHERE inbound_id = \(id) AND handler_index = 0 AND outcome = 0 AND started_at >= \(restartedAt)
                    """)! >= 1, "seed \(seed): row \(id), open at a kill, did not run again after the restart")
            }
        }
        let reruns = interrupted.reduce(0) { $0 + $1.ids.count }
        print("random kills (seed \(seed)): \(killed.sender) sender and \(killed.receiver) receiver kills by failpoint, at \(killPoints) "
            + "handled, during \(total) messages; \(reruns) handler chains open at a kill ran again")
    }
}
}
