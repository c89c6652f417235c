import Foundation
import MeshBench
import Testing

/// `mesh cluster members` by running the binary against two `mesh node` processes.
@Suite struct ClusterCommandTests {
    static func members(via: String, key: String) async throws -> (MeshCommandTests.Run, [[String: Any]]) {
        let run = try await MeshCommandTests.run(["cluster", "members", "--via", via, "--key-file", key, "--json"])
        let list = (try? JSONSerialization.jsonObject(with: Data(run.stdout.utf8))) as? [[String: Any]] ?? []
        return (run, list)
    }

    /// `members(via:)` until `count` reachable members are listed (a member's view fills within a few heartbeats),
    /// at most 60 s; the last list.
    static func awaitMembers(via: String, key: String, count: Int) async throws -> [[String: Any]] {
        var list: [[String: Any]] = []
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            let (run, members) = try await members(via: via, key: key)
            #expect(run.status == 0, "\(run.stderr)")
            list = members
            if members.count == count && members.allSatisfy({ $0["reachable"] as? Bool == true }) { break }
            try await Task.sleep(for: .milliseconds(100))
        }
        return list
    }

    @Test func membersListsTheClusterThroughAnyMemberAndTheGuestIsNeverListed() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try ClientCommandTests.tempDir("cluster")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try await ClientCommandTests.keygen(dir)
        let a = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/a.sqlite", "--key-file", key,
                                                      "--type", "MATCH", "--endpoint", "match.example.com:7000"])
        let port = try #require(a.address.split(separator: ":").last)
        let b = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/b.sqlite", "--key-file", key,
                                                      "--type", "ROOM", "--seed", a.address, "--value", "ccu=3"])
        // Through A (named localhost), once A hears from B: both, with every key of the contract.
        let list = try await Self.awaitMembers(via: "localhost:\(port)", key: key, count: 2)
        #expect(list.count == 2, "\(list)")
        for member in list {
            for key in ["id", "address", "type", "role", "status", "endpoint", "values", "reachable"] {
                #expect(member[key] != nil, "missing \(key) in \(member)")
            }
        }
        let byAddress = Dictionary(uniqueKeysWithValues: list.map { ($0["address"] as? String ?? "", $0) })
        #expect(byAddress[a.address]?["type"] as? String == "MATCH")
        #expect(byAddress[a.address]?["endpoint"] as? String == "match.example.com:7000")
        #expect(byAddress[b.address]?["type"] as? String == "ROOM")
        #expect((byAddress[b.address]?["values"] as? [String: Any])?["ccu"] as? Int == 3)
        #expect(byAddress[b.address]?["status"] as? String == "online")
        // Through B as well; neither lists the guests that asked (several have by now).
        let throughB = try await Self.awaitMembers(via: b.address, key: key, count: 2)
        #expect(Set(throughB.compactMap { $0["address"] as? String }) == [a.address, b.address])
        let (_, again) = try await Self.members(via: a.address, key: key)
        #expect(again.count == 2, "a guest was listed: \(again)")
        // Text form: one line per member.
        let text = try await MeshCommandTests.run(["cluster", "members", "--via", a.address, "--key-file", key])
        #expect(text.status == 0 && text.stdout.contains(a.address) && text.stdout.contains(b.address) && text.stdout.contains("match.example.com:7000"),
                "\(text.stdout)\(text.stderr)")
        #expect(await b.terminate() == 0)
        #expect(await a.terminate() == 0)
    }

    @Test func aBadOrSilentViaIsAOneLineError() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try ClientCommandTests.tempDir("cluster-bad")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try await ClientCommandTests.keygen(dir)
        let bad = try await MeshCommandTests.run(["cluster", "members", "--via", "bad_host:1", "--key-file", key])
        #expect(bad.status != 0 && bad.stderr.hasPrefix("Error: ") && bad.stderr.contains("--via"), "\(bad.stderr)")
        let silent = try await MeshCommandTests.run(["cluster", "members", "--via", "127.0.0.1:9", "--key-file", key, "--timeout", "0.5"])
        #expect(silent.status == 1 && silent.stderr.contains("no answer from 127.0.0.1:9"), "\(silent.status) \(silent.stderr)")
        #expect(silent.stderr.split(separator: "\n").count == 1, "\(silent.stderr)")
    }
}
