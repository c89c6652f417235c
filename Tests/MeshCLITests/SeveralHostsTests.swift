import Foundation
import MeshBench
import Testing

/// Mesh across three hosts: runs `Tools/netns-test.sh` (three network namespaces joined by veth pairs to a bridge,
/// one `mesh node` in each, discovery from one seed, traffic in a ring, one host's link down and up again).
/// Needs root, iproute2, sqlite3 and network namespaces on Linux: where they are missing the test is skipped (and
/// reported as skipped); where they are present, anything the script does not pass — its own "skipped" exit
/// included — fails the test.
@Suite struct SeveralHostsTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Tools/netns-test.sh").standardized.path
    static let possible: Bool = {
        #if os(Linux)
        let ip = ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let sqlite = ["/usr/bin/sqlite3", "/usr/local/bin/sqlite3"].contains { FileManager.default.isExecutableFile(atPath: $0) }
        guard getuid() == 0, let ip, sqlite else { return false }
        // Namespaces may be forbidden even to root (some containers): probe as the script does.
        let name = "mesh-probe-\(getpid())"
        func run(_ arguments: [String]) -> Bool {
            guard let process = try? SpawnedProcess(executable: ip, arguments: arguments) else { return false }
            process.waitUntilExit()
            return process.terminationStatus == 0
        }
        guard run(["netns", "add", name]) else { return false }
        _ = run(["netns", "del", name])
        return true
        #else
        return false
        #endif
    }()

    @Test(.enabled(if: possible, "needs root, iproute2, sqlite3 and network namespaces on Linux"))
    func threeHostsDiscoverExchangeAndSurviveALinkGoingDown() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        // Output goes to a file and the exit is awaited, so no thread of the cooperative pool is blocked for the
        // script's duration (the other tests run meanwhile).
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("mesh-netns-\(UUID().uuidString.prefix(8)).log")
        defer { try? FileManager.default.removeItem(at: log) }
        let process = try SpawnedProcess(executable: "/bin/bash", arguments: [Self.script, MeshCommandTests.binary, "20000"],
                                         stdout: .file(log.path), stderr: .standardOutput)
        let deadline = ContinuousClock.now + .seconds(400)
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        if process.isRunning { process.terminate() }
        await offThePool { process.waitUntilExit() }
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        // Everything the script needs was checked above: exit 77 ("skipped") here is a failure, not a pass.
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.contains("netns test passed"), "\(output)")
    }
}
