import Foundation
import MeshBench
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `mesh node --metrics-port` serves Prometheus text on /metrics.
@Suite struct MetricsEndpointTests {
    /// A plain HTTP/1.0 GET over a TCP socket to 127.0.0.1; returns the whole response.
    static func get(port: Int, path: String) throws -> String {
        let fd = try connection(port: port, request: "GET \(path) HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        return String(decoding: response, as: UTF8.self)
    }

    /// A TCP connection to `127.0.0.1:port` that sends nothing (or `request`); its descriptor.
    static func connection(port: Int, request: String? = nil) throws -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, "127.0.0.1", &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            close(fd)
            throw POSIXError(.ECONNREFUSED)
        }
        if let request { _ = Array(request.utf8).withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } }
        return fd
    }

    /// The metrics port a `mesh node --metrics-port` child printed on its first line.
    static func metricsPort(_ node: ChildNodeProcess) throws -> Int {
        let line = node.firstLine
        return try #require(line.range(of: " metrics ").flatMap { Int(line[$0.upperBound...].split(separator: ":").last?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? "") }, "no metrics address in: \(line)")
    }

    /// Whether the server closed `fd` (end of file or reset), without blocking.
    static func closedByServer(_ fd: Int32) -> Bool {
        var byte: UInt8 = 0
        let n = recv(fd, &byte, 1, Int32(MSG_DONTWAIT | MSG_PEEK))
        if n == 0 { return true }
        if n < 0 { return errno != EAGAIN && errno != EWOULDBLOCK }
        // Data waiting (a response): read it away and look again later.
        var buffer = [UInt8](repeating: 0, count: 4096)
        _ = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        return false
    }

    /// Open descriptors of process `pid`.
    static func descriptorCount(_ pid: Int32) -> Int {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")) ?? []).count
    }

    /// Connections held open by clients that never finish a request cannot exhaust the node: beyond the limit
    /// they are closed at once, the rest when their time is up; a malformed request gets a 400 and is closed;
    /// /metrics answers again once they are gone, and the node's UDP traffic never stopped.
    @Test func heldConnectionsAreBoundedAndTimedOut() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try ClientCommandTests.tempDir("metrics")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let node = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/m.sqlite", "--insecure",
                                                   "--sink", "1", "--metrics-port", "0", "--metrics-max-connections", "8",
                                                   "--metrics-timeout", "1"])
        defer { _ = node.terminate() }
        let port = try Self.metricsPort(node)
        let pid = node.process.processIdentifier
        let baseline = Self.descriptorCount(pid)
        var held: [Int32] = []
        defer { for fd in held { close(fd) } }
        for _ in 0..<200 { held.append(try Self.connection(port: port)) }
        var peak = 0
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline, !held.allSatisfy(Self.closedByServer) {
            peak = max(peak, Self.descriptorCount(pid))
            try await Task.sleep(for: .milliseconds(20))
        }
        #expect(held.allSatisfy(Self.closedByServer), "held connections still open after 30 s")
        // Bounded, not growing with the 200 connections: the 8 it serves, plus those accepted in one burst and not
        // closed yet when sampled (more of them on a loaded machine: 18 extra were seen once).
        #expect(peak <= baseline + 8 + 32, "the node held \(peak - baseline) extra descriptors")
        // The endpoint answers again, and the node kept taking messages all along.
        let response = try Self.get(port: port, path: "/metrics")
        #expect(response.contains(" 200 "), "\(response.prefix(200))")
        let sent = try await MeshCommandTests.run(["send", "--to", node.address, "--command", "1", "--count", "3", "--insecure"])
        #expect(sent.status == 0, "\(sent.stderr)")
        let answer = try Self.get(port: port, path: "/metrics")
        #expect(answer.contains(" 200 "))
        // A malformed request is answered 400, and its connection closed (the read ends).
        let malformed = try Self.connection(port: port, request: "NOT HTTP AT ALL\r\n\r\n")
        defer { close(malformed) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(malformed, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var reply: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 256)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(malformed, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            reply += buffer.prefix(n)
        }
        #expect(String(decoding: reply, as: UTF8.self).hasPrefix("HTTP/1.1 400"), "\(String(decoding: reply, as: UTF8.self))")
    }

    /// The value of an unlabelled series in Prometheus text, or `nil`.
    static func value(_ series: String, in text: String) -> Double? {
        text.split(separator: "\n").first { $0.hasPrefix(series + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
    }

    /// Short-lived `mesh send` clients come and go: the node's `mesh_transport_peers` returns to the live count
    /// (here none) instead of growing with every client that ever sent.
    @Test func peersReturnToTheLiveCountAfterShortLivedClients() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try ClientCommandTests.tempDir("churn")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try await ClientCommandTests.keygen(dir)
        try """
            {"address": "127.0.0.1", "port": 0, "journal": "n.sqlite", "clusterKeyFile": "cluster.key", "forgetPeersAfter": 300}
            """.write(toFile: dir + "/n.json", atomically: true, encoding: .utf8)
        let node = try await MeshCommandTests.startNode(["node", "--config", dir + "/n.json", "--sink", "1", "--metrics-port", "0"])
        defer { _ = node.terminate() }
        let port = try Self.metricsPort(node)
        for _ in 0..<12 {
            let sent = try await MeshCommandTests.run(["send", "--to", node.address, "--command", "1", "--key-file", key, "--quiet"])
            #expect(sent.status == 0, "\(sent.stderr)")
        }
        var peers: Double?
        let deadline = ContinuousClock.now + .seconds(60)
        repeat {
            try await Task.sleep(for: .milliseconds(100))
            peers = Self.value("mesh_transport_peers", in: try Self.get(port: port, path: "/metrics"))
        } while peers != 0 && ContinuousClock.now < deadline
        #expect(peers == 0)
        let text = try Self.get(port: port, path: "/metrics")
        #expect(Self.value("mesh_transport_peers_forgotten_total", in: text) == 12, "\(text)")
        #expect(Self.value("mesh_messages_received_total", in: text) == 12)
    }

    @Test func nodeServesPrometheusMetrics() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try ClientCommandTests.tempDir("metrics")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let node = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/m.sqlite", "--insecure",
                                                              "--sink", "1", "--metrics-port", "0"])
        defer { _ = node.terminate() }
        let port = try Self.metricsPort(node)
        // Some traffic, so the transport series exist.
        let sent = try await MeshCommandTests.run(["send", "--to", node.address, "--command", "1", "--count", "3", "--insecure"])
        #expect(sent.status == 0, "\(sent.stderr)")
        let response = try Self.get(port: port, path: "/metrics")
        #expect(response.hasPrefix("HTTP/1.0 200") || response.hasPrefix("HTTP/1.1 200"), "\(response.prefix(200))")
        let body = String(response[(response.range(of: "\r\n\r\n")?.upperBound ?? response.endIndex)...])
        // Valid Prometheus text, every series with its HELP and TYPE lines (what `promtool check metrics` wants).
        let families = try PrometheusText.parse(body)
        let undocumented = families.filter { $0.value.help == nil || $0.value.type == nil }.map(\.key).sorted()
        #expect(undocumented.isEmpty, "series without HELP or TYPE: \(undocumented)")
        // And the values are what happened: three messages in, a transport that has talked, one member (itself).
        #expect(families["mesh_messages_received_total"]?.samples.first?.value == 3, "\(body)")
        #expect(families["mesh_messages_duplicate_total"]?.samples.first?.value ?? 0 == 0)
        #expect((families["mesh_transport_datagrams_in_total"]?.samples.first?.value ?? 0) >= 3)
        #expect((families["mesh_transport_datagrams_out_total"]?.samples.first?.value ?? 0) >= 1)
        #expect(families["mesh_members_reachable"]?.samples.first?.value == 1)
        #expect(families["mesh_transport_auth_failures_total"]?.samples.first?.value ?? 0 == 0)
        // (The short-lived sender may leave before an RTT sample exists; any series there is, is per peer.)
        #expect(families["mesh_transport_rtt_seconds"]?.samples.allSatisfy { $0.labels["peer"] != nil && $0.value > 0 } ?? true)
        let missing = try Self.get(port: port, path: "/nothing")
        #expect(missing.contains(" 404 "))
    }
}

/// A strict reader of the Prometheus text exposition format (0.0.4), enough to check what `/metrics` serves:
/// `# HELP` and `# TYPE` lines, and samples `name{label="value",…} number`. Anything else is an error.
enum PrometheusText {
    struct Sample {
        var labels: [String: String]
        var value: Double
    }

    struct Family {
        var help: String?
        var type: String?
        var samples: [Sample] = []
    }

    struct Malformed: Error, CustomStringConvertible {
        let line: String
        var description: String { "not Prometheus text: \(line)" }
    }

    static func parse(_ text: String) throws -> [String: Family] {
        var families: [String: Family] = [:]
        let name = /[a-zA-Z_:][a-zA-Z0-9_:]*/
        for line in text.split(separator: "\n") {
            if line.hasPrefix("# HELP ") {
                let rest = line.dropFirst(7)
                guard let space = rest.firstIndex(of: " "), rest[..<space].wholeMatch(of: name) != nil else { throw Malformed(line: String(line)) }
                families[String(rest[..<space]), default: Family()].help = String(rest[rest.index(after: space)...])
            } else if line.hasPrefix("# TYPE ") {
                let parts = line.dropFirst(7).split(separator: " ")
                guard parts.count == 2, parts[0].wholeMatch(of: name) != nil,
                      ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[1]) else { throw Malformed(line: String(line)) }
                families[String(parts[0]), default: Family()].type = String(parts[1])
            } else if line.hasPrefix("#") {
                continue
            } else {
                guard let match = line.wholeMatch(of: /([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? ([^ ]+)( [0-9]+)?/),
                      let value = Double(match.3) ?? (match.3 == "+Inf" ? .infinity : match.3 == "-Inf" ? -.infinity : nil)
                else { throw Malformed(line: String(line)) }
                var labels: [String: String] = [:]
                if let block = match.2 {
                    for pair in block.dropFirst().dropLast().split(separator: ",") where !pair.isEmpty {
                        guard let equals = pair.firstIndex(of: "="), pair[pair.index(after: equals)...].hasPrefix("\""),
                              pair.hasSuffix("\"") else { throw Malformed(line: String(line)) }
                        labels[String(pair[..<equals])] = String(pair[pair.index(equals, offsetBy: 2)..<pair.index(before: pair.endIndex)])
                    }
                }
                var family = String(match.1)
                for suffix in ["_bucket", "_sum", "_count"] where families[family] == nil && family.hasSuffix(suffix) {
                    family = String(family.dropLast(suffix.count))
                }
                families[family, default: Family()].samples.append(Sample(labels: labels, value: value))
            }
        }
        return families
    }
}
