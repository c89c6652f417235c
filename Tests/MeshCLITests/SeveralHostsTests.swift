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
    func threeHostsDiscoverExchangeAndSurviveALinkGoingDown() throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [Self.script, MeshCommandTests.binary, "10000"]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = out
        try process.run()
        let killer = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + 400, execute: killer)
        let output = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        killer.cancel()
        if process.terminationStatus == 77 {
            print("several-hosts test skipped: \(output)")
            return
        }
        #expect(process.terminationStatus == 0, "\(output)")
        #expect(output.contains("netns test passed"), "\(output)")
    }
}
