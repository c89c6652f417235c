import Foundation
import MeshBench
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `mesh node --metrics-port` serves Prometheus text on /metrics.
@Suite struct MetricsEndpointTests {
    /// A plain HTTP/1.0 GET over a TCP socket; returns the whole response.
    static func get(host: String, port: Int, path: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
        let request = Array("GET \(path) HTTP/1.0\r\nHost: \(host)\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { break }
            response += buffer[0..<n]
        }
        return String(decoding: response, as: UTF8.self)
    }

    @Test func nodeServesPrometheusMetrics() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = FileManager.default.temporaryDirectory.path + "/mesh-cli-metrics-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let node = try MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/m.sqlite", "--insecure",
                                                              "--sink", "1", "--metrics-port", "0"])
        defer { _ = node.terminate() }
        let line = node.firstLine
        let metrics = try #require(line.range(of: " metrics ").map { String(line[$0.upperBound...]).trimmingCharacters(in: .whitespacesAndNewlines) },
                                   "no metrics address in: \(line)")
        let port = try #require(Int(metrics.split(separator: ":").last ?? ""))
        // Some traffic, so the transport series exist.
        let sent = try await MeshCommandTests.run(["send", "--to", node.address, "--command", "1", "--count", "3", "--insecure"])
        #expect(sent.status == 0, "\(sent.stderr)")
        let response = try Self.get(host: "127.0.0.1", port: port, path: "/metrics")
        #expect(response.hasPrefix("HTTP/1.0 200") || response.hasPrefix("HTTP/1.1 200"), "\(response.prefix(200))")
        #expect(response.contains("mesh_messages_received_total"), "\(response)")
        #expect(response.contains("mesh_transport_datagrams_in_total"))
        let missing = try Self.get(host: "127.0.0.1", port: port, path: "/nothing")
        #expect(missing.contains(" 404 "))
    }
}
