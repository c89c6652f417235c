import Foundation
import Testing

/// Mesh across three hosts: runs `Tools/netns-test.sh` (three network namespaces joined by veth pairs to a bridge,
/// one `mesh node` in each, discovery from one seed, traffic in a ring, one host's link down and up again).
/// Needs root and iproute2 on Linux; elsewhere the script says why and the test only reports it.
@Suite struct SeveralHostsTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Tools/netns-test.sh").standardized.path
    static let possible: Bool = {
        #if os(Linux)
        return getuid() == 0
            && (FileManager.default.isExecutableFile(atPath: "/usr/sbin/ip") || FileManager.default.isExecutableFile(atPath: "/sbin/ip"))
        #else
        return false
        #endif
    }()

    @Test(.enabled(if: possible, "needs root and iproute2 on Linux (network namespaces)"))
    func threeHostsDiscoverExchangeAndSurviveALinkGoingDown() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        // Output goes to a file and the exit is awaited, so no thread of the cooperative pool is blocked for the
        // script's duration (the other tests run meanwhile).
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("mesh-netns-\(UUID().uuidString.prefix(8)).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: log) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [Self.script, MeshCommandTests.binary, "10000"]
        let handle = try FileHandle(forWritingTo: log)
        process.standardOutput = handle
        process.standardError = handle
        try process.run()
        let deadline = ContinuousClock.now + .seconds(400)
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(100)) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        try handle.close()
        let output = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        if process.terminationStatus == 77 {
            print("several-hosts test skipped: \(output)")
            return
        }
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.contains("netns test passed"), "\(output)")
    }
}
