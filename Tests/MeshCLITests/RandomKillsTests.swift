import Foundation
import MeshBench
import MeshFaultProxy
import MeshJournal
import MeshTransport
import Testing

/// Random kills of both ends of a stream: child B streams to child C while this test SIGKILLs one or the other at
/// random moments and restarts it on its journal. At the end every message is journaled and handled once at C,
/// acknowledged at B, and both journals pass `PRAGMA integrity_check`.
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
        var receiver = try await MeshCommandTests.startNode(receiverArguments(port: "0"))
        let receiverPort = String(receiver.address.split(separator: ":").last!)
        func senderArguments(port: String) -> [String] {
            ["node", "--bind", "127.0.0.1:\(port)", "--journal", dir + "/b.sqlite", "--key-file", dir + "/cluster.key",
             "--send-to", "127.0.0.1:\(receiverPort)", "--send-command", "1024", "--send-count", "\(total)",
             // Paced, so the kills land mid-stream even when this test's task is starved on a loaded machine.
             "--send-rate", Self.soak ? "3000" : "1000"]
        }
        let streamStart = ContinuousClock.now
        var sender = try await MeshCommandTests.startNode(senderArguments(port: "0"))
        let senderPort = String(sender.address.split(separator: ":").last!)
        defer {
            if sender.process.isRunning { sender.kill() }
            if receiver.process.isRunning { receiver.kill() }
        }

        var killed = (sender: 0, receiver: 0)
        // For each receiver kill: the chains it interrupted (journaled, not finished) and when the restart began.
        var interrupted: [(ids: [String], restartedAt: Int64)] = []
        var killsMidStream = 0
        var killPoints: [Int64] = []
        var killTimes: [Int] = []
        // Random moments: random points of progress (messages handled at C), so each kill lands mid-stream
        // however fast or slow the machine.
        let moments = (0..<kills).map { _ in Int64(Double(total) * (0.05 + 0.85 * Double(rng.next() % 10_000) / 10_000)) }.sorted()
        let progress = try SQLiteConnection(path: dir + "/c.sqlite", mode: .readOnly)
        for moment in moments {
            let handledNow = try await CrashMatrixTests.awaitProgress("reaching \(moment) handled (seed \(seed))", {
                try progress.scalarInt("SELECT count(*) FROM mesh_inbound_state WHERE status = 1") ?? 0
            }, until: { $0 >= moment })
            if handledNow < Int64(total) { killsMidStream += 1 }
            killPoints.append(handledNow)
            killTimes.append(Int((ContinuousClock.now - streamStart) / .milliseconds(1)))
            if rng.next() % 2 == 0 {
                await sender.kill()
                killed.sender += 1
                sender = try await MeshCommandTests.startNode(senderArguments(port: senderPort))
            } else {
                await receiver.kill()
                killed.receiver += 1
                let open = try progress.rows("SELECT id FROM mesh_inbound_state WHERE status <> 1").compactMap { $0[0] }
                interrupted.append((open, WallClock.nowMs()))
                receiver = try await MeshCommandTests.startNode(receiverArguments(port: receiverPort))
            }
        }
        // Then let the stream finish: every message handled at C and acknowledged at B (fails after 60 s without progress).
        let c = try SQLiteConnection(path: dir + "/c.sqlite", mode: .readOnly)
        let b = try SQLiteConnection(path: dir + "/b.sqlite", mode: .readOnly)
        _ = try await CrashMatrixTests.awaitProgress("handled at C (seed \(seed))", {
            try c.scalarInt("SELECT count(*) FROM mesh_inbound_state WHERE status = 1") ?? 0
        }, until: { $0 >= Int64(total) })
        _ = try await CrashMatrixTests.awaitProgress("acknowledged at B (seed \(seed))", {
            try b.scalarInt("SELECT count(*) FROM mesh_outbound_state WHERE status = 1") ?? 0
        }, until: { $0 >= Int64(total) })
        #expect(await sender.terminate() == 0)
        #expect(await receiver.terminate() == 0)
        #expect(killsMidStream > 0, "seed \(seed): every kill came after the stream had finished")

        let finalC = try SQLiteConnection(path: dir + "/c.sqlite", mode: .readOnly)
        let finalB = try SQLiteConnection(path: dir + "/b.sqlite", mode: .readOnly)
        #expect(try finalC.scalarInt("SELECT count(*) FROM mesh_inbound") == Int64(total), "seed \(seed)")
        // Every number the generator sent, once (the origin sequences are unique by construction; the payloads are not).
        #expect(try finalC.scalarInt("SELECT count(DISTINCT json_extract(payload_json, '$.i')) FROM mesh_inbound") == Int64(total),
                "seed \(seed): lost or journaled twice")
        #expect(try finalC.scalarInt("SELECT count(*) FROM mesh_inbound_state WHERE status <> 1") == 0, "seed \(seed)")
        #expect(try finalB.scalarInt("SELECT count(*) FROM mesh_outbound WHERE command_id = 1024") == Int64(total), "seed \(seed)")
        #expect(try finalB.scalarInt("SELECT count(*) FROM mesh_outbound_state WHERE status <> 1") == 0, "seed \(seed)")
        #expect(try finalC.scalarText("PRAGMA integrity_check") == "ok")
        #expect(try finalB.scalarText("PRAGMA integrity_check") == "ok")
        // At-least-once: every chain a receiver kill interrupted ran again from its first handler after that restart.
        for (ids, restartedAt) in interrupted {
            for id in ids {
                #expect(try finalC.scalarInt("""
                    SELECT count(*) FROM mesh_invocation WHERE inbound_id = \(id) AND handler_index = 0 AND outcome = 0 AND started_at >= \(restartedAt)
                    """)! >= 1, "seed \(seed): row \(id), open at a kill, did not run again after the restart")
            }
        }
        let reruns = interrupted.reduce(0) { $0 + $1.ids.count }
        print("random kills (seed \(seed)): \(killed.sender) sender and \(killed.receiver) receiver kills (\(killsMidStream) mid-stream, at \(killPoints) handled, \(killTimes) ms after the start) during \(total) messages; "
            + "\(reruns) handler chains ran more than once")
    }
}
}
