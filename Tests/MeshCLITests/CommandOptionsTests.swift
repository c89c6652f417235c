import Foundation
import Mesh
import MeshBench
import MeshCore
import MeshJournal
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Options the README documents that no other test ran: `send --rate`, `journal tail --follow`, `replay
/// --direction/--until/--limit/--speed original`, and `chaos-proxy` between a sender and a node.
@Suite struct CommandOptionsTests {
    /// A `mesh` child whose standard output is collected by a thread of its own (never the cooperative pool).
    final class StreamingProcess: Sendable {
        let process: SpawnedProcess
        private let output = Mutex<[UInt8]>([])
        private let errors = Mutex<[UInt8]>([])

        init(_ arguments: [String]) throws {
            process = try SpawnedProcess(executable: MeshCommandTests.binary, arguments: arguments, stdout: .pipe, stderr: .pipe)
            if let fd = process.standardOutput { collect(fd, errors: false) }
            if let fd = process.standardError { collect(fd, errors: true) }
        }

        private func collect(_ fd: Int32, errors isErrors: Bool) {
            Thread.detachNewThread { [self] in
                SpawnedProcess.readChunks(fd) { chunk in
                    if isErrors { errors.withLock { $0 += chunk } } else { output.withLock { $0 += chunk } }
                }
            }
        }

        var lines: [String] { output.withLock { String(decoding: $0, as: UTF8.self) }.split(separator: "\n").map(String.init) }
        var standardError: String { errors.withLock { String(decoding: $0, as: UTF8.self) } }

        /// Waits (suspending) until `condition` holds on the output lines, for at most `seconds`.
        func await(_ seconds: Double = 30, until condition: ([String]) -> Bool) async throws -> Bool {
            let deadline = ContinuousClock.now + .seconds(seconds)
            while ContinuousClock.now < deadline {
                if condition(lines) { return true }
                try await Task.sleep(for: .milliseconds(20))
            }
            return condition(lines)
        }

        /// SIGTERM, then the exit status (waited for off the pool).
        func stop() async -> Int32 {
            let process = self.process
            if process.isRunning { process.terminate() }
            return await offThePool {
                process.waitUntilExit()
                return process.terminationStatus
            }
        }
    }

    /// `mesh node --seed` takes host names: B names A as `localhost:PORT` and joins it; a second seed, a name that
    /// does not resolve, is only a warning. B's `--endpoint` and `--value` arrive at A with B's record.
    @Test func nodeSeedsAcceptHostNamesAndNodesPublishEndpointAndValues() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let fixture = try CrashMatrixTests.Fixture()
        defer { fixture.remove() }
        let a = try await fixture.startLocal()
        let port = try #require(a.address.split(separator: ":").last)
        let log = fixture.dir + "/b.log"
        let b = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", fixture.dir + "/b.sqlite",
                                                      "--key-file", fixture.keyFile, "--seed", "localhost:\(port)",
                                                      "--seed", "no-such-host.invalid:\(port)", "--endpoint", "game.example.com:7000",
                                                      "--value", "ccu=5", "--value", #"region="eu""#],
                                                     environment: ["MESH_LOG_LEVEL": "info"], stderrPath: log)
        let deadline = ContinuousClock.now + .seconds(60)
        while ContinuousClock.now < deadline, a.member(at: b.address)?.isReachable != true {
            try await Task.sleep(for: .milliseconds(20))
        }
        let member = try #require(a.member(at: b.address), "B never joined A through the seed named localhost")
        #expect(member.endpoint == "game.example.com:7000")
        #expect(member.values == ["ccu": 5, "region": "eu"])
        #expect(a.endpoint(at: b.address) == "game.example.com:7000")
        #expect(a.member(atEndpoint: "game.example.com:7000")?.address == b.address)
        let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(text.contains("seed name does not resolve") && text.contains("no-such-host.invalid"), "\(text)")
        #expect(await b.terminate() == 0)
        await a.shutdown()
        // Bad values are refused before anything starts.
        for bad in [["--endpoint", "not an endpoint"], ["--value", "novalue"], ["--value", "k={"]] {
            let run = try await MeshCommandTests.run(["node", "--bind", "127.0.0.1:0", "--journal", fixture.dir + "/c.sqlite",
                                                      "--key-file", fixture.keyFile] + bad)
            #expect(run.status != 0 && run.stderr.hasPrefix("Error: "), "\(bad): \(run.stderr)")
        }
    }

    @Test func sendRateTailFollowAndReplayFilters() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try ClientCommandTests.tempDir("options")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try await ClientCommandTests.keygen(dir)
        let b = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/b.sqlite", "--key-file", key,
                                                      "--sink", "1", "--sink", "2"])
        // A follower of B's journal, started with the traffic: it prints the latest (none, or those journaled while it
        // started: process start-up is slow on a loaded machine) and then each message as it is journaled.
        let tail = try StreamingProcess(["journal", "tail", dir + "/b.sqlite", "-n", "100", "--follow", "--json"])

        // --rate 40: the 20th message is due 19/40 s after the first, so the command takes at least that long
        // however fast the machine (pacing only ever slows).
        let sendStarted = ContinuousClock.now
        let paced = try await MeshCommandTests.run(["send", "--to", b.address, "--command", "1", "--count", "20", "--rate", "40",
                                                    "--key-file", key, "--journal", dir + "/a.sqlite", "--json"])
        let sendTook = ContinuousClock.now - sendStarted
        #expect(paced.status == 0, "\(paced.stderr)")
        #expect(sendTook >= .milliseconds(475), "20 messages at 40 per second took \(sendTook)")
        let span = try SQLiteConnection(path: dir + "/a.sqlite", mode: .readOnly)
            .scalarInt("SELECT max(created_at_ms) - min(created_at_ms) FROM mesh_messages WHERE direction = 'out'") ?? 0
        let cutoff = WallClock.nowMs()
        try await Task.sleep(for: .milliseconds(20))
        let more = try await MeshCommandTests.run(["send", "--to", b.address, "--command", "2", "--count", "10", "--key-file", key,
                                                   "--journal", dir + "/a.sqlite", "--quiet"])
        #expect(more.status == 0, "\(more.stderr)")

        // The follower printed all 30, as JSON lines, in order.
        #expect(try await tail.await { $0.count >= 30 }, "tail --follow printed \(tail.lines.count) of 30: \(tail.standardError)")
        let followed = tail.lines.map(ClientCommandTests.json)
        #expect(followed.count == 30 && followed.allSatisfy { $0["direction"] as? String == "in" })
        #expect(followed.map { $0["command_id"] as? String ?? "\($0["command_id"] ?? "")" }.filter { $0 == "2" }.count == 10)
        #expect(await tail.stop() == 0 || tail.process.terminationReason == .uncaughtSignal)

        // Replay filters, counted by dry runs: direction, command, until, limit.
        func dryRun(_ extra: [String], journal: String) async throws -> Int {
            let run = try await MeshCommandTests.run(["replay", "--journal", journal, "--to", b.address, "--dry-run", "--json",
                                                      "--key-file", key] + extra)
            #expect(run.status == 0, "\(extra): \(run.stderr)")
            return ClientCommandTests.json(run.stdout)["messages"] as? Int ?? -1
        }
        #expect(try await dryRun([], journal: dir + "/b.sqlite") == 30)
        #expect(try await dryRun(["--direction", "out"], journal: dir + "/b.sqlite") == 0)
        #expect(try await dryRun(["--direction", "out"], journal: dir + "/a.sqlite") == 30)
        #expect(try await dryRun(["--command", "2"], journal: dir + "/b.sqlite") == 10)
        #expect(try await dryRun(["--until", "\(cutoff)"], journal: dir + "/b.sqlite") == 20)
        #expect(try await dryRun(["--since", "\(cutoff)"], journal: dir + "/b.sqlite") == 10)
        #expect(try await dryRun(["--limit", "3"], journal: dir + "/b.sqlite") == 3)

        // --speed original keeps the recorded gaps: the 20 paced messages take at least as long again.
        let c = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/c.sqlite", "--key-file", key,
                                                      "--sink", "1"])
        let started = ContinuousClock.now
        let replay = try await MeshCommandTests.run(["replay", "--journal", dir + "/b.sqlite", "--to", c.address, "--command", "1",
                                                     "--speed", "original", "--key-file", key])
        #expect(replay.status == 0, "\(replay.stderr)")
        // (The replay's first message goes at once, the last span ms of recorded gaps later.)
        #expect(ContinuousClock.now - started >= .milliseconds(Int64(span)), "replayed faster than recorded")
        #expect(await c.terminate() == 0)
        #expect(await b.terminate() == 0)
        #expect(try SQLiteConnection(path: dir + "/c.sqlite", mode: .readOnly)
            .scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND replay_of IS NOT NULL") == 20)
    }

    @Test func chaosProxyBetweenASenderAndANodeInjectsFaultsAndLosesNothing() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try ClientCommandTests.tempDir("chaos")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try await ClientCommandTests.keygen(dir)
        let b = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/b.sqlite", "--key-file", key,
                                                      "--sink", "1"])
        let proxy = try StreamingProcess(["chaos-proxy", "--listen", "127.0.0.1:0", "--forward", b.address, "--loss", "0.1",
                                          "--duplicate", "0.1", "--reorder", "0.1", "--delay", "0..2", "--corrupt", "0.02", "--seed", "42"])
        #expect(try await proxy.await { $0.first?.hasPrefix("proxying ") == true }, "\(proxy.standardError)")
        let listening = try #require(proxy.lines.first?.split(separator: " ").dropFirst().first.map(String.init))
        let sent = try await MeshCommandTests.run(["send", "--to", listening, "--command", "1", "--count", "200", "--key-file", key,
                                                   "--timeout", "60", "--json"])
        #expect(sent.status == 0, "\(sent.stderr)")
        #expect(ClientCommandTests.json(sent.stdout)["acked"] as? Int == 200)
        _ = await proxy.stop()
        let statistics = proxy.standardError
        let dropped = statistics.firstMatch(of: /dropped (\d+)/).flatMap { Int($0.1) } ?? 0
        let duplicated = statistics.firstMatch(of: /duplicated (\d+)/).flatMap { Int($0.1) } ?? 0
        #expect(dropped > 0 && duplicated > 0, "no fault injected: \(statistics)")
        #expect(await b.terminate() == 0)
        let journal = try SQLiteConnection(path: dir + "/b.sqlite", mode: .readOnly)
        #expect(try journal.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'in'") == 200)
        #expect(try journal.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND status = 'handled'") == 200)
    }
}
