import Foundation
import Logging
import Mesh
import MeshBench
import MeshCore
import MeshJournal
import MeshTransport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `mesh send`, `mesh replay` and the journal maintenance commands, run as the built binary.
@Suite(.serialized) struct ClientCommandTests {
    static func tempDir(_ name: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.path + "/mesh-cli-\(name)-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A key file exactly as `mesh keygen > FILE` writes it (with its newline).
    static func keygen(_ dir: String) async throws -> String {
        let result = try await MeshCommandTests.run(["keygen"])
        try result.stdout.write(toFile: dir + "/cluster.key", atomically: true, encoding: .utf8)
        return dir + "/cluster.key"
    }

    static func json(_ text: String) -> [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
    }

    @Test func sendThenReplayToAFreshNodeReproducesTheCounts() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try Self.tempDir("send")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try await Self.keygen(dir)
        let b = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/b.sqlite", "--key-file", key,
                                                           "--sink", "1024", "--echo", "2001"])
        let sent = try await MeshCommandTests.run(["send", "--to", b.address, "--command", "1024", "--data", #"{"myName": "Jon", "n": 1}"#,
                                             "--count", "20", "--key-file", key, "--journal", dir + "/a.sqlite", "--json"])
        #expect(sent.status == 0, "\(sent.stderr)")
        #expect(Self.json(sent.stdout)["sent"] as? Int == 20 && Self.json(sent.stdout)["failed"] as? Int == 0)
        let requests = try await MeshCommandTests.run(["send", "--to", b.address, "--command", "2001", "--data", #"{"q": 7}"#, "--request",
                                                 "--count", "3", "--key-file", key, "--journal", dir + "/a.sqlite"])
        #expect(requests.status == 0, "\(requests.stderr)")
        #expect(requests.stdout.components(separatedBy: #"{"q":7}"#).count - 1 == 3, "\(requests.stdout)")

        // Inspection of the sender's journal.
        let tail = try await MeshCommandTests.run(["journal", "tail", dir + "/a.sqlite", "-n", "5", "--json"])
        #expect(tail.status == 0 && tail.stdout.split(separator: "\n").count == 5, "\(tail.stdout)\(tail.stderr)")
        let firstID = Self.json(String(tail.stdout.split(separator: "\n")[0]))["message_id"] as? String ?? ""
        let show = try await MeshCommandTests.run(["journal", "show", dir + "/a.sqlite", firstID, "--json"])
        #expect(show.status == 0 && (Self.json(show.stdout)["messages"] as? [Any])?.isEmpty == false, "\(show.stderr)")
        let unknown = try await MeshCommandTests.run(["journal", "show", dir + "/a.sqlite", "nobody:1"])
        #expect(unknown.status != 0 && unknown.stderr.contains("no message"))

        // Re-drive what B received to a fresh node C: a dry run first (sends nothing), then for real.
        let c = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/c.sqlite", "--key-file", key,
                                                           "--sink", "1024", "--echo", "2001"])
        let dry = try await MeshCommandTests.run(["replay", "--journal", dir + "/b.sqlite", "--to", c.address, "--dry-run", "--json", "--key-file", key])
        #expect(dry.status == 0, "\(dry.stderr)")
        #expect(Self.json(dry.stdout)["messages"] as? Int == 23)
        let replay = try await MeshCommandTests.run(["replay", "--journal", dir + "/b.sqlite", "--to", c.address, "--speed", "max", "--key-file", key])
        #expect(replay.status == 0, "\(replay.stderr)")
        #expect(await b.terminate() == 0)
        #expect(await c.terminate() == 0)
        let bJournal = try SQLiteConnection(path: dir + "/b.sqlite", mode: .readOnly)
        let cJournal = try SQLiteConnection(path: dir + "/c.sqlite", mode: .readOnly)
        let perCommand = "SELECT command_id, count(*) FROM mesh_messages WHERE direction = 'in' AND kind <> 'response' GROUP BY 1 ORDER BY 1"
        #expect(try bJournal.rows(perCommand) == [["1024", "20"], ["2001", "3"]])
        #expect(try cJournal.rows(perCommand) == (try bJournal.rows(perCommand)))
        #expect(try cJournal.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND kind <> 'response' AND replay_of IS NULL") == 0)
        #expect(try cJournal.scalarInt("SELECT count(*) FROM mesh_messages m JOIN mesh_invocations v ON v.message_id = m.message_id WHERE m.direction = 'in'") == 23)
    }

    @Test func aSenderKilledMidStreamResumesFromItsJournalAndLosesNothing() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try Self.tempDir("resume")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try await Self.keygen(dir)
        let b = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/b.sqlite", "--key-file", key,
                                                           "--sink", "1024"])
        let sender = try SpawnedProcess(executable: MeshCommandTests.binary,
                                        arguments: ["send", "--to", b.address, "--command", "1024", "--count", "100000", "--key-file", key,
                                                    "--journal", dir + "/s.sqlite"])
        // Kill it once it has journaled some messages.
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline {
            if let db = try? SQLiteConnection(path: dir + "/s.sqlite", mode: .readOnly),
               let n = try? db.scalarInt("SELECT count(*) FROM mesh_outbound"), n >= 300 { break }
            try await Task.sleep(for: .milliseconds(20))  // suspends; never blocks a thread of the pool
        }
        kill(sender.processIdentifier, SIGKILL)
        await offThePool { sender.waitUntilExit() }
        let resumed = try await MeshCommandTests.run(["send", "--to", b.address, "--command", "1024", "--count", "0", "--key-file", key,
                                                "--journal", dir + "/s.sqlite", "--json", "--timeout", "30"])
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(await b.terminate() == 0)
        let s = try SQLiteConnection(path: dir + "/s.sqlite", mode: .readOnly)
        let journaled = try #require(try s.scalarInt("SELECT count(*) FROM mesh_outbound"))
        #expect(journaled >= 300)
        #expect(try s.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND status <> 'acked'") == 0)
        let r = try SQLiteConnection(path: dir + "/b.sqlite", mode: .readOnly)
        #expect(try r.scalarInt("SELECT count(*) FROM mesh_inbound") == journaled)  // every journaled message, once
    }

    @Test func deadLettersAreListedRequeuedAndFinishedMessagesPruned() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try Self.tempDir("dead")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var logger = Logger(label: "cli-test")
        logger.logLevel = .critical
        let key = ClusterKey.generate()
        var cb = MeshConfiguration(address: "127.0.0.1:0", journalPath: dir + "/b.sqlite", clusterKey: key)
        cb.maxHandlerAttempts = 1
        let a = try await MeshNode.start(configuration: .init(address: "127.0.0.1:0", journalPath: dir + "/a.sqlite", clusterKey: key), logger: logger)
        let b = try await MeshNode.start(configuration: cb, logger: logger)
        try b.handleCommand(5) { _ in throw MeshError(.handlerError, "always fails") }
        for i in 0..<3 { #expect(await (try a.send(5, to: b.address, ["i": .int64(Int64(i))])).outcome() == .confirmed) }
        for _ in 0..<500 where (try await b.deadLetters().count) < 3 { try await Task.sleep(for: .milliseconds(10)) }
        await a.shutdown()
        await b.shutdown()

        let dead = try await MeshCommandTests.run(["journal", "dead", dir + "/b.sqlite", "--json"])
        #expect(dead.status == 0 && dead.stdout.split(separator: "\n").count == 3, "\(dead.stdout)\(dead.stderr)")
        let requeue = try await MeshCommandTests.run(["journal", "requeue", dir + "/b.sqlite", "--all", "--command", "5"])
        #expect(requeue.status == 0 && requeue.stdout.contains("re-queued 3"), "\(requeue.stderr)")
        let none = try await MeshCommandTests.run(["journal", "requeue", dir + "/b.sqlite", "1"])
        #expect(none.status != 0 && none.stderr.contains("not dead"))
        let db = try SQLiteConnection(path: dir + "/b.sqlite", mode: .readOnly)
        #expect(try db.scalarInt("SELECT count(*) FROM mesh_messages WHERE status = 'received'") == 3)

        let dry = try await MeshCommandTests.run(["journal", "prune", dir + "/a.sqlite", "--older-than", "0s", "--dry-run"])
        #expect(dry.stdout.contains("would prune 3 outbound"), "\(dry.stdout)\(dry.stderr)")
        let prune = try await MeshCommandTests.run(["journal", "prune", dir + "/a.sqlite", "--older-than", "0s"])
        #expect(prune.status == 0 && prune.stdout.contains("pruned 3 outbound"), "\(prune.stdout)\(prune.stderr)")
        let status = try await MeshCommandTests.run(["journal", "migrate", dir + "/a.sqlite", "--status"])
        #expect(status.stdout.contains("applied  0001_journal_v1.sql") && status.stdout.contains("applied  0002_narrow_state.sql"))
        let verify = try await MeshCommandTests.run(["journal", "verify", dir + "/a.sqlite"])
        #expect(verify.status == 0, "\(verify.stderr)")
    }

    /// `mesh node --config` with `--journal` and `--key-file` runs on a file that names neither (flags override it,
    /// and stand in for what it leaves out): the node journals where the flag says and authenticates with the
    /// flag's key, which a client holding that key proves by getting its message acknowledged.
    @Test func nodeFlagsStandInForTheConfigurationFilesJournalAndKey() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try Self.tempDir("config-flags")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try await Self.keygen(dir)
        try #"{"address": "127.0.0.1", "port": 0, "nodeType": "ROOM"}"#.write(toFile: dir + "/n.json", atomically: true, encoding: .utf8)
        let node = try await MeshCommandTests.startNode(["node", "--config", dir + "/n.json", "--journal", dir + "/flag.sqlite",
                                                         "--key-file", key, "--sink", "1"])
        defer { _ = node.terminate() }
        let sent = try await MeshCommandTests.run(["send", "--to", node.address, "--command", "1", "--key-file", key, "--quiet"])
        #expect(sent.status == 0, "\(sent.stderr)")
        #expect(FileManager.default.fileExists(atPath: dir + "/flag.sqlite"))
    }

    @Test(arguments: [
        ["send", "--to", "127.0.0.1:9", "--command", "1", "--insecure", "--data", "{not json"],
        ["send", "--to", "127.0.0.1:9", "--command", "1", "--insecure", "--data", "[1]"],
        ["send", "--to", "nowhere", "--command", "1", "--insecure"],
        ["send", "--to", "127.0.0.1:9", "--command", "1"],
        ["send", "--to", "127.0.0.1:9", "--command", "70000", "--insecure"],
        ["replay", "--journal", "/tmp/never.sqlite", "--to", "127.0.0.1:9", "--insecure", "--speed", "fast"],
        ["replay", "--journal", "/tmp/never.sqlite", "--to", "127.0.0.1:9", "--insecure", "--since", "yesterday"],
        ["replay", "--journal", "/tmp/never.sqlite", "--to", "127.0.0.1:9", "--insecure"],
        ["journal", "prune", "/tmp/never.sqlite", "--older-than", "7 days"],
        ["journal", "requeue", "/tmp/never.sqlite"],
        ["journal", "tail", "/tmp/never.sqlite"],
        ["node", "--config", "/tmp/never.json"],
        ["node", "--config", "/tmp/never.json", "--journal", "/tmp/never.sqlite", "--key-file", "/tmp/never.key", "--insecure"],
    ])
    func badClientArgumentsGiveAOneLineError(_ arguments: [String]) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let result = try await MeshCommandTests.run(arguments)
        #expect(result.status != 0)
        #expect(result.stderr.hasPrefix("Error: "), "stderr: \(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/never.sqlite"))
    }
}
