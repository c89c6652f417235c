import Foundation
import MeshBench
import MeshCore
import MeshFaultProxy
import MeshJournal
import MeshTransport
import NIOCore
import Testing

/// Three `mesh node` processes exchange mixed traffic (`--send-mode mixed`: send, usend, sendMany relay trees and
/// requests, 1 B to 1 MiB) through three fault proxies (loss, duplication, reordering, jitter, corruption), while
/// nodes die by failpoints at seeded random messages (SIGKILL, mid-traffic by construction) and this test restarts
/// them on their journals, and every node prunes in the background. It ends with an audit of the three journals: nothing pending or unfinished, nothing failed, every
/// acknowledged message of the audit window journaled by its receiver, integrity checks ok, pruning bounded the
/// journals; it reports the peak RSS of the nodes and the journal sizes.
///
/// Short by default (about 20 s); `MESH_SOAK=1` runs ten minutes. `MESH_SEED` repeats a run.
///
/// Each pair of nodes talks through one proxy in both directions (X sends to the proxy's listening address, Y to
/// its upstream address), so each node reaches each peer at exactly one address — relay branches included.
extension StreamingChildProcessTests {
@Suite(.serialized) struct SoakTests {
    static let full = ProcessInfo.processInfo.environment["MESH_SOAK"] == "1"

    struct Node {
        let name: String
        let config: String
        let journal: String
        var process: ChildNodeProcess
        var arguments: [String]
    }

    @Test func threeNodesMixedTrafficThroughFaultsWithKillsAndPruning() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let seconds = Self.full ? 600.0 : 20.0
        let rate = Self.full ? 150.0 : 60.0
        let count = Int(seconds * rate)
        // Retention: long enough that the audit window (the last `retention`, not pruned at either end) still holds
        // the end of the traffic after a slow settle, short enough that the run prunes its beginning.
        let retentionMs = Self.full ? 60_000 : 15_000
        let seed = UInt64(ProcessInfo.processInfo.environment["MESH_SEED"] ?? "") ?? UInt64.random(in: 1...1_000_000)
        var rng = SplitMix64(seed: seed)
        let dir = FileManager.default.temporaryDirectory.path + "/mesh-soak-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try ClusterKey.generate().hex.write(toFile: dir + "/cluster.key", atomically: true, encoding: .utf8)

        // Ports first: each node starts once without traffic, then runs on the port it got.
        func writeConfig(_ name: String, port: Int) throws -> String {
            let path = "\(dir)/\(name).json"
            try """
                {"address": "127.0.0.1", "port": \(port), "journal": "\(name).sqlite", "clusterKeyFile": "cluster.key",
                 "retryTimeout": 60000, "peerTimeout": 60000, "retention": \(retentionMs), "pruneInterval": 2000}
                """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        var ports: [String: Int] = [:]
        for name in ["a", "b", "c"] {
            let probe = try await MeshCommandTests.startNode(["node", "--config", try writeConfig(name, port: 0)])
            ports[name] = Int(probe.address.split(separator: ":").last!)!
            #expect(await probe.terminate() == 0)
        }
        func address(_ name: String) throws -> SocketAddress { try SocketAddress(ipAddress: "127.0.0.1", port: ports[name]!) }
        let faults = FaultProxy.Faults(loss: 0.01, duplicate: 0.01, reorder: 0.02, delay: .zero ... .milliseconds(2), corrupt: 0.001)
        let any = try SocketAddress(ipAddress: "127.0.0.1", port: 0)
        // ab: a → b; bc: b → c; ca: c → a (and each the other way through its upstream address).
        let ab = try await FaultProxy.start(listen: any, forward: try address("b"), faults: faults, seed: seed &+ 1)
        let bc = try await FaultProxy.start(listen: any, forward: try address("c"), faults: faults, seed: seed &+ 2)
        let ca = try await FaultProxy.start(listen: any, forward: try address("a"), faults: faults, seed: seed &+ 3)
        func text(_ a: SocketAddress) -> String { "127.0.0.1:\(a.port!)" }
        // How each node reaches the others: [first, second]; relay trees go to the first, which relays to the second.
        let routes: [String: (send: [String], relay: [String])] = [
            "a": ([text(ab.listenAddress), text(ca.upstreamAddress)], [text(ca.upstreamAddress), text(bc.upstreamAddress)]),
            "b": ([text(bc.listenAddress), text(ab.upstreamAddress)], [text(ab.upstreamAddress), text(ca.upstreamAddress)]),
            "c": ([text(ca.listenAddress), text(bc.upstreamAddress)], [text(bc.upstreamAddress), text(ab.upstreamAddress)]),
        ]
        // The kills come from failpoints at seeded random messages: a node dies by itself at its K-th journaled
        // outbound message, K at most a third of what it still has to generate, so every kill lands mid-traffic
        // whatever the load does to this test's scheduling. Nodes are re-armed at restart while kills remain.
        var planned = Self.full ? 20 : 3
        func generated(_ journal: String) -> Int64 {
            (try? SQLiteConnection(path: journal, mode: .readOnly).scalarInt("""
                SELECT max(json_extract(payload_json, '$.i')) FROM mesh_outbound WHERE kind <> 3
                """)).flatMap { $0 }.map { $0 + 1 } ?? 0
        }
        func arm(_ journal: String) -> [String: String] {
            let remaining = Int64(count) - generated(journal)
            guard planned > 0, remaining > 60 else { return [:] }
            planned -= 1
            return ["MESH_FAILPOINT": "outbound.after-insert@\(10 + Int64(rng.next() % UInt64(remaining / 3)))"]
        }
        var armed: [String: Bool] = [:]
        var nodes: [Node] = []
        for name in ["a", "b", "c"] {
            let config = try writeConfig(name, port: ports[name]!)
            var arguments = ["node", "--config", config, "--sink", "1024", "--sink", "1025", "--sink", "1026", "--echo", "2000",
                             "--send-mode", "mixed", "--send-count", "\(count)", "--send-rate", "\(rate)"]
            for target in routes[name]!.send { arguments += ["--send-to", target] }
            for relay in routes[name]!.relay { arguments += ["--relay-to", relay] }
            let environment = arm("\(dir)/\(name).sqlite")
            armed[name] = !environment.isEmpty
            nodes.append(Node(name: name, config: config, journal: "\(dir)/\(name).sqlite",
                              process: try await MeshCommandTests.startNode(arguments, environment: environment), arguments: arguments))
        }
        defer { for node in nodes where node.process.process.isRunning { node.process.kill() } }

        // Run until no node is armed any more: each armed node dies at its failpoint and is restarted at once (armed
        // again while kills remain); RSS sampled.
        var peakRSS: [String: Int] = [:]
        var kills: [String] = []
        let minimumKills = Self.full ? 20 : 3
        let deadline = ContinuousClock.now + .seconds(seconds * 10)
        while armed.values.contains(true) && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(250))
            for node in nodes { peakRSS[node.name] = max(peakRSS[node.name] ?? 0, Self.rssKiB(node.process.process.processIdentifier)) }
            for index in nodes.indices where armed[nodes[index].name] == true && !nodes[index].process.process.isRunning {
                #expect(nodes[index].process.process.terminationStatus == SIGKILL, "\(nodes[index].name) ended otherwise than by its failpoint")
                kills.append(nodes[index].name)
                let environment = arm(nodes[index].journal)
                armed[nodes[index].name] = !environment.isEmpty
                nodes[index].process = try await MeshCommandTests.startNode(nodes[index].arguments, environment: environment)
            }
        }

        // Then every generator finishes and the cluster settles: nothing pending, nothing unfinished. The node says
        // when its generator handed over its last message: the highest number journaled is not enough, since eight
        // senders run at once and one waiting for a response still has numbers to send after the highest (the
        // cluster could look settled in between; seen once: rows pending after the settle).
        for node in nodes {
            let line = await node.process.awaitLine(containing: "generated: ", seconds: seconds * 10)
            #expect(line == "generated: \(count) messages journaled", "\(node.name) (seed \(seed)): \(line ?? "no end of traffic")")
        }
        // Settled = all three at once: a node checked alone could still get a late message (a retransmitted
        // request, a relayed copy) while the others are checked.
        let journals = try nodes.map { try SQLiteConnection(path: $0.journal, mode: .readOnly) }
        _ = try await CrashMatrixTests.awaitProgress("the cluster settled (seed \(seed))", {
            var unfinished: Int64 = 0
            for db in journals {
                unfinished += try db.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND status = 'pending'") ?? 0
                unfinished += try db.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND status IN ('received', 'failed', 'unhandled')") ?? 0
            }
            return -unfinished
        }, until: { $0 == 0 })
        let settledAt = Int64(Date().timeIntervalSince1970 * 1000)
        for node in nodes { peakRSS[node.name] = max(peakRSS[node.name] ?? 0, Self.rssKiB(node.process.process.processIdentifier)) }
        // All three stop at once, and the audit window starts a retention before the last one stopped, not before
        // the settle: a node prunes until it stops, and a receiver's prune a second or two after the settle removed
        // rows its sender (stopped before it) still held as acknowledged (seen once in a loaded full run: the
        // receiver's last ~0.7 s of the window, reported as acknowledged messages not journaled).
        let stops = await withTaskGroup(of: (String, Int32).self) { group in
            for node in nodes { group.addTask { (node.name, await node.process.terminate()) } }
            return await group.reduce(into: [(String, Int32)]()) { $0.append($1) }
        }
        for (name, status) in stops { #expect(status == 0, "\(name) did not stop gracefully") }
        let auditFrom = Int64(Date().timeIntervalSince1970 * 1000) - Int64(retentionMs) + 1000
        let statistics = [ab.statistics, bc.statistics, ca.statistics]
        await ab.close()
        await bc.close()
        await ca.close()

        // The audit.
        var summary: [String] = []
        var identities: [String: String] = [:]
        for node in nodes {
            let db = try SQLiteConnection(path: node.journal, mode: .readOnly)
            identities[node.name] = try db.scalarText("SELECT node_id FROM mesh_node")
        }
        for node in nodes {
            let db = try SQLiteConnection(path: node.journal, mode: .readOnly)
            #expect(try db.scalarText("PRAGMA integrity_check") == "ok", "\(node.name)")
            #expect(try db.rows("PRAGMA foreign_key_check").isEmpty, "\(node.name)")
            // A pending row names itself (kind, command, peer, attempts, and when it was written against the settle).
            let pending = try db.rows("""
                SELECT kind, command_id, peer, attempts, created_at_ms - \(settledAt) FROM mesh_messages
                WHERE direction = 'out' AND status = 'pending' LIMIT 5
                """)
            #expect(pending.isEmpty, "\(node.name) (seed \(seed)): pending after the cluster settled: \(pending)")
            let failed = try db.rows("SELECT error, count(*) FROM mesh_messages WHERE direction = 'out' AND status = 'failed' GROUP BY 1")
            #expect(failed.isEmpty, "\(node.name) (seed \(seed)): failed \(failed)")
            #expect(try db.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND status <> 'handled'") == 0, "\(node.name): unfinished or dead")
            // Every outbound sequence number ever used (pruning keeps the highest in mesh_node).
            let generated = try db.scalarInt("SELECT max(last_out_seq, (SELECT coalesce(max(seq), 0) FROM mesh_outbound)) FROM mesh_node") ?? 0
            let kept = try db.scalarInt("SELECT count(*) FROM mesh_outbound") ?? 0
            #expect(kept < generated, "\(node.name): retention pruned nothing (\(kept) of \(generated) kept)")
            let bytes = Self.fileBytes(node.journal)
            summary.append("\(node.name): \(generated) journaled out, \(kept) kept, journal \(bytes / 1024 / 1024) MiB, peak RSS \((peakRSS[node.name] ?? 0) / 1024) MiB")
        }
        // Every acknowledged reliable message of the window (not yet pruned at either end) is in its receiver's journal.
        let peersOf: [String: [(address: String, name: String)]] = [
            "a": [(text(ab.listenAddress), "b"), (text(ca.upstreamAddress), "c")],
            "b": [(text(bc.listenAddress), "c"), (text(ab.upstreamAddress), "a")],
            "c": [(text(ca.listenAddress), "a"), (text(bc.upstreamAddress), "b")],
        ]
        var checked = 0
        for node in nodes {
            let sender = try SQLiteConnection(path: node.journal, mode: .readOnly)
            for (peer, receiverName) in peersOf[node.name]! {
                let acked = try sender.rows("""
                    SELECT o.seq FROM mesh_outbound o JOIN mesh_outbound_state s ON s.seq = o.seq
                    WHERE o.peer = '\(peer)' AND o.kind <> 1 AND s.status = 1 AND o.created_at >= \(auditFrom)
                    """).compactMap { $0[0].flatMap { Int64($0) } }
                let receiver = try SQLiteConnection(path: "\(dir)/\(receiverName).sqlite", mode: .readOnly)
                let journaled = Set(try receiver.rows("""
                    SELECT i.origin_seq FROM mesh_inbound i JOIN mesh_peer p ON p.id = i.origin WHERE p.node_id = '\(identities[node.name]!)'
                    """).compactMap { $0[0].flatMap { Int64($0) } })
                let missing = acked.filter { !journaled.contains($0) }
                #expect(missing.isEmpty, "\(node.name) → \(receiverName) (seed \(seed)): \(missing.count) acknowledged messages not journaled, e.g. \(missing.prefix(5))")
                checked += acked.count
            }
        }
        #expect(checked > 0, "the audit window held no message")
        #expect(kills.count >= minimumKills)
        let faultsSeen = statistics.reduce(into: (dropped: 0, duplicated: 0, corrupted: 0)) {
            $0.dropped += $1.dropped; $0.duplicated += $1.duplicated; $0.corrupted += $1.corrupted
        }
        print("soak (seed \(seed), \(Int(seconds)) s, \(count) messages per node at \(Int(rate))/s): kills \(kills); proxies dropped \(faultsSeen.dropped), duplicated \(faultsSeen.duplicated), corrupted \(faultsSeen.corrupted); \(checked) acknowledged messages audited end to end; "
              + summary.joined(separator: "; "))
    }

    /// Resident set size of a process, KiB (0 if it is gone).
    static func rssKiB(_ pid: Int32) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
    }

    static func fileBytes(_ path: String) -> Int {
        ["", "-wal"].reduce(0) { $0 + ((try? FileManager.default.attributesOfItem(atPath: path + $1)[.size] as? Int) ?? 0) }
    }
}
}
