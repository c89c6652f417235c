import Foundation
import MeshBench
import MeshTransport
import Testing

/// Runs the built `mesh` binary, as a user would.
@Suite struct MeshCommandTests {
    /// The `mesh` executable next to the test runner in the build products folder.
    static let binary: String = {
        let products = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [products, products.deletingLastPathComponent()] {
            let path = candidate.appendingPathComponent("mesh").path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return products.appendingPathComponent("mesh").path
    }()

    /// A `mesh node` child process of the built binary (see ``ChildNodeProcess``).
    static func startNode(_ arguments: [String], environment: [String: String] = [:], stderrPath: String? = nil) async throws -> ChildNodeProcess {
        try await ChildNodeProcess.launch(executable: binary, arguments: arguments, environment: environment, stderrPath: stderrPath)
    }

    struct Run {
        let status: Int32
        let stdout: String
        let stderr: String
        /// The signal that ended the process, 0 if it exited by itself.
        var signal: Int32 = 0
    }

    /// The temporary directory of the commands ``run(_:timeout:environment:stdin:)`` runs: `mesh send` and `mesh
    /// replay` without `--journal` keep their sending journal in a fresh directory there (on purpose: a user can
    /// audit or resume it), which a test run would otherwise leave behind by the dozen. One per test process,
    /// removed when it exits.
    static let scratchTemporaryDirectory: String = {
        let dir = FileManager.default.temporaryDirectory.path + "/mesh-cli-tests-" + UUID().uuidString.prefix(8).lowercased()
        try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: MeshCommandTests.scratchTemporaryDirectory) }
        return dir
    }()

    /// Runs `mesh ARGUMENTS` to completion (killed after `timeout` seconds), with ``scratchTemporaryDirectory`` as its
    /// `TMPDIR` unless `environment` names one. The blocking wait happens on a thread of its own, not on the
    /// cooperative pool (on 2 cores, two blocked pool threads stall every test).
    /// - Parameter stdin: bytes the process reads from its standard input (then end of file).
    static func run(_ arguments: [String], timeout: Double = 60, environment: [String: String] = [:], stdin: Data? = nil) async throws -> Run {
        let environment = environment.merging(["TMPDIR": scratchTemporaryDirectory]) { given, _ in given }
        let process = try SpawnedProcess(executable: binary, arguments: arguments, environment: environment,
                                         stdin: stdin.map { .bytes([UInt8]($0)) } ?? .null, stdout: .pipe, stderr: .pipe)
        return await offThePool {
            let killer = DispatchWorkItem { process.terminate() }
            DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
            let (stdout, stderr) = process.finish()
            killer.cancel()
            return Run(status: process.terminationStatus, stdout: stdout, stderr: stderr,
                       signal: process.terminationReason == .uncaughtSignal ? process.terminationStatus : 0)
        }
    }

    @Test func demoRunsTheSeedScenarioAndItsJournalsAnswerAudits() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "mesh binary not found at \(Self.binary)")
        let dir = FileManager.default.temporaryDirectory.path + "/mesh-cli-demo-" + UUID().uuidString.prefix(8).lowercased()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try await Self.run(["demo", "--dir", dir])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("B handler: myName = Jon"))
        #expect(result.stdout.contains("B handler: Appointment: Date: 01/01/2022 Title: New Year Party"))
        #expect(result.stdout.contains("B handler: Appointment: Date: 25/12/2022 Title: Christmas Party"))
        #expect(result.stdout.contains("| acked |"))
        #expect(result.stdout.contains("| handled | Jon"))
        #expect(result.stdout.contains(#"A: request 2001 answered: {"from":"B","greeting":"Hello Jon"}"#), "\(result.stdout)")
        #expect(result.stdout.contains("C killed with SIGKILL after"))
        #expect(result.stdout.contains("A: 2000 of 2000 confirmed; C journaled 2000 messages, 2000 distinct, 2000 handled"))
        #expect(FileManager.default.fileExists(atPath: dir + "/a.sqlite") && FileManager.default.fileExists(atPath: dir + "/b.sqlite"))
    }

    @Test func journalStatsAndVerifyReadADemoJournal() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary))
        let dir = FileManager.default.temporaryDirectory.path + "/mesh-cli-journal-" + UUID().uuidString.prefix(8).lowercased()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try await Self.run(["demo", "--dir", dir]).status == 0)
        let before = FileManager.default.contents(atPath: dir + "/b.sqlite")
        let stats = try await Self.run(["journal", "stats", dir + "/b.sqlite", "--json"])
        #expect(stats.status == 0, "\(stats.stderr)")
        let object = try JSONSerialization.jsonObject(with: Data(stats.stdout.utf8)) as? [String: Any]
        #expect((object?["counts"] as? [String: Int])?["in.handled"] == 2)  // the seed message and the request
        let verify = try await Self.run(["journal", "verify", dir + "/b.sqlite"])
        #expect(verify.status == 0 && verify.stdout.hasPrefix("ok"), "\(verify.stderr)")
        #expect(FileManager.default.contents(atPath: dir + "/b.sqlite") == before)  // read-only
    }

    @Test func foreignAndGarbageFilesAreRefusedInOneLineAndLeftUnchanged() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary))
        let dir = FileManager.default.temporaryDirectory.path + "/mesh-cli-bad-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let garbage = Data((0..<5000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
        #expect(FileManager.default.createFile(atPath: dir + "/garbage.sqlite", contents: garbage))
        for arguments in [["journal", "verify", dir + "/garbage.sqlite"], ["journal", "stats", dir + "/garbage.sqlite"],
                          ["node", "--bind", "127.0.0.1:0", "--journal", dir + "/garbage.sqlite", "--insecure"]] {
            let result = try await Self.run(arguments)
            #expect(result.status != 0)
            #expect(result.stderr.hasPrefix("Error: ") && result.stderr.contains("not an SQLite database"), "\(result.stderr)")
            #expect(result.stderr.split(separator: "\n").count == 1, "more than one line: \(result.stderr)")
        }
        #expect(FileManager.default.contents(atPath: dir + "/garbage.sqlite") == garbage)
        let missing = try await Self.run(["journal", "stats", dir + "/absent.sqlite"])
        #expect(missing.status != 0 && missing.stderr.contains("no such file"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/absent.sqlite"))
        let badKey = dir + "/bad.key"
        try "not-a-key".write(toFile: badKey, atomically: true, encoding: .utf8)
        let keyResult = try await Self.run(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/n.sqlite", "--key-file", badKey])
        #expect(keyResult.status != 0 && keyResult.stderr.contains("64 hex digits"), "\(keyResult.stderr)")
    }

    @Test(arguments: [
        ["node", "--bind", "127.0.0.1:0", "--journal", "/tmp/never.sqlite"],
        ["node", "--bind", "nonsense", "--journal", "/tmp/never.sqlite", "--insecure"],
        ["chaos-proxy", "--listen", "127.0.0.1:0", "--forward", "127.0.0.1:9", "--loss", "2"],
        ["chaos-proxy", "--listen", "127.0.0.1:0", "--forward", "127.0.0.1:9", "--delay", "5..1"],
        ["chaos-proxy", "--listen", "somewhere", "--forward", "127.0.0.1:9"],
        ["bench", "journal", "--rows", "0"],
        ["bench", "journal", "--durability", "sometimes"],
        ["bench", "--mode", "acked", "--caller", "elsewhere"],
        ["bench", "--mode", "acked", "--idle-spin", "20000"],
        ["bench", "--mode", "oneway", "--gap", "100"],
        ["bench", "--mode", "acked", "--gap", "-1"],
        ["no-such-command"],
    ])
    func badArgumentsGiveAOneLineErrorAndNonZeroExit(_ arguments: [String]) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary))
        let result = try await Self.run(arguments)
        #expect(result.status != 0)
        #expect(result.stderr.hasPrefix("Error: "), "stderr: \(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"))
        #expect(!FileManager.default.fileExists(atPath: "/tmp/never.sqlite"))
    }

    @Test(arguments: [["oneway"], ["acked"], ["request"], ["request", "--handler", "sync"], ["acked", "--handler", "sync"],
                      ["acked", "--caller", "node"], ["request", "--handler", "sync", "--caller", "node"], ["oneway", "--caller", "node"],
                      ["acked", "--idle-spin", "0"], ["acked", "--gap", "2000"], ["oneway", "--no-segmentation-offload"],
                      ["acked", "--durability", "full"], ["acked", "--durability", "full", "--idle-spin", "300"]])
    func benchRunsTwoProcessesAndPrintsTheJSONContract(mode: [String]) async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary))
        let result = try await Self.run(["bench", "--mode"] + mode + ["--messages", "200", "--json"], timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        for key in ["messages", "seconds", "msgs_per_s", "p50_us", "p99_us", "retransmits", "sender_journal_bytes", "receiver_journal_bytes",
                    "handler", "caller", "sender_commits", "receiver_commits", "commits_per_message", "sender_wal_frames", "receiver_wal_frames",
                    "wal_frames_per_message", "receiver_journal_bytes_per_message", "datagrams_per_message",
                    "sender_checkpoints_background", "sender_checkpoints_inline", "receiver_checkpoints_background",
                    "receiver_checkpoints_inline", "gap_us", "sender_idle_polls", "sender_idle_polls_caught",
                    "receiver_idle_polls", "receiver_idle_polls_caught", "segmentation_offload", "sender_segmented_writes",
                    "sender_segmented_datagrams", "receiver_segmented_writes", "receiver_segmented_datagrams"] {
            #expect(object[key] != nil, "missing \(key)")
        }
        #if os(Linux)
        // The machine's CPU time during the run, from /proc/stat: shares in percent.
        for key in ["host_steal_pct", "machine_idle_pct"] {
            let share = try #require(object[key] as? Double, "missing \(key)")
            #expect((0...100).contains(share), "\(key) \(share)")
        }
        #endif
        #expect(object["messages"] as? Int == 200)
        #expect((object["p50_us"] as? Int ?? 0) > 0 && (object["p99_us"] as? Int ?? 0) >= (object["p50_us"] as? Int ?? 0))
        let sync = mode.contains("sync")
        #expect(object["handler"] as? String == (sync ? "sync" : "async"))
        #expect(object["caller"] as? String == (mode.contains("node") ? "node" : "task"))
        // The idle spin in effect: as given, else the default for the durability (none under `full`).
        let full = mode.contains("full")
        let idleSpin = mode.firstIndex(of: "--idle-spin").map { Int(mode[$0 + 1])! } ?? (full ? 0 : 300)
        #expect(object["idle_spin_us"] as? Int == idleSpin)
        #expect(object["durability"] as? String == (full ? "full" : "normal"))
        let gap = mode.contains("--gap")
        #expect(object["gap_us"] as? Int == (gap ? 2000 : 0))
        // 200 calls at least 2 ms apart (a sleep of that long before each): the gaps are in the run's time.
        if gap { #expect((object["seconds"] as? Double ?? 0) >= 0.4, "\(object)") }
        // Both nodes poll after exchanges with an idle spin, and never without one.
        let polls = (object["sender_idle_polls"] as? Int ?? -1, object["receiver_idle_polls"] as? Int ?? -1)
        if idleSpin == 0 {
            #expect(polls.0 == 0 && polls.1 == 0, "\(object)")
        } else {
            #expect(polls.0 > 0 && polls.1 > 0, "\(object)")
        }
        // One at a time, every message costs at least one commit at each end. A synchronous handler's message costs
        // exactly one at the receiver (its row, invocation and status together; the warm-up and the node's own
        // rows add a few); an async one's invocation and status may take a second one.
        let (sender, receiver) = (object["sender_commits"] as? Int ?? 0, object["receiver_commits"] as? Int ?? 0)
        if mode[0] == "oneway" {
            // Streaming: group commit merges messages, so fewer commits than messages, but never none.
            #expect(sender > 0 && receiver > 0 && (object["wal_frames_per_message"] as? Double ?? 0) > 0, "\(object)")
        } else {
            #expect(sender >= 200 && receiver >= 200, "\(object)")
            #expect((object["wal_frames_per_message"] as? Double ?? 0) >= 2, "\(object)")
            // At least the message one way and its confirmation or response the other.
            #expect((object["datagrams_per_message"] as? Double ?? 0) >= 2, "\(object)")
        }
        if sync && mode[0] == "acked" { #expect(receiver <= 210, "\(object)") }
        // A segmented write carries two datagrams at least; with segmentation off there are none.
        for side in ["sender", "receiver"] {
            let (writes, datagrams) = (object["\(side)_segmented_writes"] as? Int ?? -1, object["\(side)_segmented_datagrams"] as? Int ?? -1)
            #expect(writes >= 0 && datagrams >= 2 * writes, "\(object)")
            if mode.contains("--no-segmentation-offload") { #expect(writes == 0, "\(object)") }
        }
        #expect(object["segmentation_offload"] as? Bool
                == (!mode.contains("--no-segmentation-offload") && TransportConfiguration.defaultSegmentationOffload))
    }

    @Test func aPortInUseIsAOneLineError() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary))
        let dir = FileManager.default.temporaryDirectory.path + "/mesh-cli-port-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let first = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/a.sqlite", "--insecure"])
        defer { _ = first.terminate() }
        let second = try await Self.run(["node", "--bind", first.address, "--journal", dir + "/b.sqlite", "--insecure"], timeout: 30)
        #expect(second.status != 0)
        #expect(second.stderr.hasPrefix("Error: ") && second.stderr.split(separator: "\n").count == 1, "\(second.stderr)")
        #expect(second.stderr.lowercased().contains("address already in use") || second.stderr.contains("bind"), "\(second.stderr)")
    }

    @Test func keygenPrintsAUsableKey() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary))
        let result = try await Self.run(["keygen"])
        #expect(result.status == 0)
        let key = result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key.count == 64 && key.allSatisfy(\.isHexDigit))
    }
}
