import Foundation
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

    struct Run {
        let status: Int32
        let stdout: String
        let stderr: String
    }

    static func run(_ arguments: [String], timeout: Double = 60) throws -> Run {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let killer = DispatchWorkItem { process.terminate() }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: killer)
        let stdout = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let stderr = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        killer.cancel()
        return Run(status: process.terminationStatus, stdout: stdout, stderr: stderr)
    }

    @Test func demoRunsTheSeedScenarioAndItsJournalsAnswerAudits() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "mesh binary not found at \(Self.binary)")
        let dir = FileManager.default.temporaryDirectory.path + "/mesh-cli-demo-" + UUID().uuidString.prefix(8).lowercased()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let result = try Self.run(["demo", "--dir", dir])
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(result.stdout.contains("B handler: myName = Jon"))
        #expect(result.stdout.contains("B handler: Appointment: Date: 01/01/2022 Title: New Year Party"))
        #expect(result.stdout.contains("B handler: Appointment: Date: 25/12/2022 Title: Christmas Party"))
        #expect(result.stdout.contains("| acked |"))
        #expect(result.stdout.contains("| handled | Jon"))
        #expect(FileManager.default.fileExists(atPath: dir + "/a.sqlite") && FileManager.default.fileExists(atPath: dir + "/b.sqlite"))
    }

    @Test(arguments: [
        ["bench", "journal", "--rows", "0"],
        ["bench", "journal", "--durability", "sometimes"],
        ["no-such-command"],
    ])
    func badArgumentsGiveAOneLineErrorAndNonZeroExit(_ arguments: [String]) throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary))
        let result = try Self.run(arguments)
        #expect(result.status != 0)
        #expect(result.stderr.hasPrefix("Error: "), "stderr: \(result.stderr)")
        #expect(!result.stderr.contains("Fatal error"))
    }
}
