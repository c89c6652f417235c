import NIOCore

/// Parsing of `host:port` mesh addresses.
public enum MeshAddress {
    /// A socket address from `host:port` (numeric IPv4, `[IPv6]`, or `localhost`).
    /// - Throws: ``MeshError`` (`invalidAddress`) naming what is wrong.
    public static func parse(_ text: String) throws(MeshError) -> SocketAddress {
        var host: Substring
        let portText: Substring
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = text[text.index(after: text.startIndex)..<close]
            guard text[text.index(after: close)...].hasPrefix(":") else {
                throw MeshError(.invalidAddress, "\"\(text)\" is not host:port")
            }
            portText = text[text.index(close, offsetBy: 2)...]
        } else {
            guard let colon = text.lastIndex(of: ":") else { throw MeshError(.invalidAddress, "\"\(text)\" is not host:port") }
            host = text[..<colon]
            portText = text[text.index(after: colon)...]
        }
        if host == "localhost" { host = "127.0.0.1" }
        guard let port = Int(portText), (0...65535).contains(port) else {
            throw MeshError(.invalidAddress, "\"\(text)\": the port must be 0...65535")
        }
        do {
            return try SocketAddress(ipAddress: String(host), port: port)
        } catch {
            throw MeshError(.invalidAddress, "\"\(text)\": \"\(host)\" is not a numeric IPv4 or IPv6 address")
        }
    }

    /// `host:port` text for a socket address (what the journal's `peer` column holds).
    public static func text(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return address.protocol == .inet6 ? "[\(ip)]:\(port)" : "\(ip):\(port)"
    }
}
