import Foundation
import Logging
@testable import Mesh
import MeshCore
import MeshTransport
import Synchronization
import Testing

/// Seeds named by DNS name: parsed, resolved at every membership round, a name that does not resolve logged once
/// per change and never fatal.
@Suite struct SeedNameTests {
    @Test func seedsParseAsNumericAddressesOrHostNames() throws {
        #expect(try Seed.parse("127.0.0.1:8000") == .address("127.0.0.1:8000"))
        #expect(try Seed.parse("[::1]:8000") == .address("[::1]:8000"))
        #expect(try Seed.parse("room.game.svc.cluster.local:8000") == .name(host: "room.game.svc.cluster.local", port: 8000))
        #expect(try Seed.parse("vm:1") == .name(host: "vm", port: 1))
        #expect(try Seed.parse("seed-1.example.:9000") == .name(host: "seed-1.example.", port: 9000))
        for bad in ["bad_name:1", "-x:1", "x-:1", "a..b:1", "host:0", "host:99999", "host", "1.2.3:80", "host:port", ":80",
                    String(repeating: "a", count: 64) + ":1"] {
            #expect(throws: MeshError.self, "\(bad)") { try Seed.parse(bad) }
        }
        var configuration = MeshConfiguration(address: "127.0.0.1:0", journalPath: "x.sqlite", clusterKey: .generate())
        configuration.seeds = ["localhost:8000", "room.game.svc.cluster.local:8000", "10.0.0.4:8000"]
        try configuration.validate()
        configuration.seeds = ["bad_name:8000"]
        let error = #expect(throws: MeshError.self) { try configuration.validate() }
        #expect(error?.message.contains("bad_name") == true, "\(String(describing: error))")
    }

    /// A name of this machine's `/etc/hosts` (other than `localhost`) that maps to 127.0.0.1, if there is one.
    static let hostsName: String? = {
        guard let text = try? String(contentsOfFile: "/etc/hosts", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let fields = line.split(whereSeparator: { $0 == " " || $0 == "\t" })
            guard fields.first == "127.0.0.1" else { continue }
            if let name = fields.dropFirst().first(where: { $0 != "localhost" && !$0.hasPrefix("#") && Seed.isHostName(String($0)) }) {
                return String(name)
            }
        }
        return nil
    }()

    @Test func aNodeJoinsThroughASeedNamedLocalhost() async throws {
        try await joinsThrough(host: "localhost")
    }

    @Test(.enabled(if: hostsName != nil, "no name other than localhost maps to 127.0.0.1 in /etc/hosts"))
    func aNodeJoinsThroughASeedNamedInEtcHosts() async throws {
        try await joinsThrough(host: try #require(Self.hostsName))
    }

    func joinsThrough(host: String) async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { MembershipTests.fast(&$0) }
        let port = try #require(a.address.split(separator: ":").last)
        let b = try await fixture.start("b") { MembershipTests.fast(&$0); $0.seeds = ["\(host):\(port)"] }
        try await eventually { b.member(at: a.address)?.isReachable == true && a.member(at: b.address)?.isReachable == true }
        #expect(b.seeds.current == [a.address])
        await b.shutdown()
        await a.shutdown()
    }

    @Test func aNameThatDoesNotResolveIsLoggedOnceAndTheNodeJoinsThroughTheOthers() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { MembershipTests.fast(&$0) }
        let logs = CapturedLogs()
        var configuration = fixture.configuration("b")
        MembershipTests.fast(&configuration)
        configuration.seeds = ["no-such-host.invalid:4000", a.address]
        let b = try await MeshNode.start(configuration: configuration, logger: Logger(label: "seed-test") { _ in logs })
        try await eventually { b.member(at: a.address)?.isReachable == true }
        // Several rounds later, the failure was logged once (it did not change), and the node kept its other seed.
        let after = b.seeds.resolutions
        try await eventually { b.seeds.resolutions >= after + 3 }
        let warnings = logs.lines.withLock { $0.filter { $0.message.contains("does not resolve") } }
        #expect(warnings.count == 1, "\(warnings)")
        #expect(warnings.first?.metadata["mesh.seed"] == "no-such-host.invalid:4000")
        #expect(b.seeds.current == [a.address])
        await b.shutdown()
        await a.shutdown()
    }
}

/// A log handler that keeps every line (level, message, metadata) for the test to read.
final class CapturedLogs: LogHandler, Sendable {
    struct Line: Sendable {
        let level: Logger.Level
        let message: String
        let metadata: [String: String]
    }

    let lines = Mutex<[Line]>([])

    var logLevel: Logger.Level {
        get { .trace }
        set {}  // keeps everything
    }

    var metadata: Logger.Metadata {
        get { [:] }
        set {}
    }

    subscript(metadataKey _: String) -> Logger.Metadata.Value? {
        get { nil }
        set {}
    }

    func log(event: LogEvent) {
        let flat = (event.metadata ?? [:]).mapValues { "\($0)" }
        lines.withLock { $0.append(Line(level: event.level, message: event.message.description, metadata: flat)) }
    }
}
