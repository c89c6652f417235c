import Foundation
import MeshBench
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Shared data among three real `mesh node` processes, written by concurrent `mesh cluster shared set` guests (one
/// of them through the fault proxy): every node ends with the same map and versions; a compare-and-set conflict
/// exits 3 naming the current version; a limit is refused; a SIGKILLed node, restarted alone, has the map back
/// from its journal before it hears from anyone.
@Suite(.serialized) struct SharedDataProcessTests {
    static func shared(_ arguments: [String]) async throws -> MeshCommandTests.Run {
        try await MeshCommandTests.run(["cluster", "shared"] + arguments, timeout: 120)
    }

    /// `get --json` through `via`, as `key → value@version/writer`.
    static func map(via: String, key: String) async throws -> [String: String] {
        let run = try await shared(["get", "--via", via, "--key-file", key, "--json"])
        #expect(run.status == 0, "\(run.stderr)")
        let list = (try? JSONSerialization.jsonObject(with: Data(run.stdout.utf8))) as? [[String: Any]] ?? []
        var map: [String: String] = [:]
        for entry in list {
            for field in ["key", "value", "version", "writer"] { #expect(entry[field] != nil, "missing \(field) in \(entry)") }
            let value = entry["value"].flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.fragmentsAllowed]) }
            map[entry["key"] as? String ?? ""] = "\(String(decoding: value ?? Data(), as: UTF8.self))@\(entry["version"] ?? 0)/\(entry["writer"] ?? "")"
        }
        return map
    }

    @Test func threeNodesConvergeUnderConcurrentWritersAndAKilledNodeKeepsTheMap() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try ClientCommandTests.tempDir("shared")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try await ClientCommandTests.keygen(dir)
        func config(_ name: String) throws -> String {
            let path = dir + "/\(name).json"
            try """
                {"address": "127.0.0.1", "port": 0, "journal": "\(name).sqlite", "clusterKeyFile": "\(key)", "heartbeatInterval": 100,
                 "sharedDataMaxValueBytes": 256}
                """.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
        let a = try await MeshCommandTests.startNode(["node", "--config", try config("a")])
        let b = try await MeshCommandTests.startNode(["node", "--config", try config("b"), "--seed", a.address])
        let c = try await MeshCommandTests.startNode(["node", "--config", try config("c"), "--seed", a.address])
        let proxy = try CommandOptionsTests.StreamingProcess(["chaos-proxy", "--listen", "127.0.0.1:0", "--forward", a.address,
                                                              "--loss", "0.1", "--duplicate", "0.1", "--reorder", "0.1", "--seed", "7"])
        #expect(try await proxy.await { $0.first?.hasPrefix("proxying ") == true }, "\(proxy.standardError)")
        let throughProxy = try #require(proxy.lines.first?.split(separator: " ").dropFirst().first.map(String.init))

        // Three writers at once, each through another door, to the same three keys.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (writer, via) in [throughProxy, b.address, c.address].enumerated() {
                group.addTask {
                    for round in 0..<4 {
                        for k in 0..<3 {
                            let run = try await Self.shared(["set", "k\(k)", "\"writer\(writer)-round\(round)\"", "--via", via, "--key-file", key,
                                                             "--timeout", "60"])
                            #expect(run.status == 0, "writer \(writer) k\(k): \(run.stderr)")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        // Every node ends with the same map and versions.
        var maps: [[String: String]] = []
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            maps = []
            for node in [a, b, c] { maps.append(try await Self.map(via: node.address, key: key)) }
            if maps[0].count == 3 && maps[0] == maps[1] && maps[1] == maps[2] { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        #expect(maps.count == 3 && maps[0].count == 3 && maps[0] == maps[1] && maps[1] == maps[2], "\(maps)")
        let converged = maps.first ?? [:]

        // Compare-and-set against a stale version: exit 3, one line naming the current one.
        let current = try #require(converged["k0"]?.split(separator: "@").last?.split(separator: "/").first.map(String.init))
        let conflict = try await Self.shared(["set", "k0", "\"late\"", "--if-version", "0", "--via", b.address, "--key-file", key])
        #expect(conflict.status == 3, "\(conflict.status) \(conflict.stderr)")
        #expect(conflict.stderr.contains("at version \(current)") && conflict.stderr.split(separator: "\n").count == 1, "\(conflict.stderr)")
        // A value over the limit of the nodes' configuration (256 bytes): refused, nothing written.
        let big = try await Self.shared(["set", "big", "\"\(String(repeating: "x", count: 400))\"", "--via", b.address, "--key-file", key])
        #expect(big.status == 1 && big.stderr.contains("limit is 256"), "\(big.status) \(big.stderr)")

        // C is killed, A and B stop; C restarted alone has the map from its journal, before any gossip.
        await c.kill()
        #expect(await b.terminate() == 0)
        #expect(await a.terminate() == 0)
        _ = await proxy.stop()
        let again = try await MeshCommandTests.startNode(["node", "--config", dir + "/c.json"])
        #expect(try await Self.map(via: again.address, key: key) == converged)
        #expect(await again.terminate() == 0)
    }
}
