import NIOCore

/// A seed as configured: a numeric address, or a host name resolved by ``SeedResolver`` at start and at every
/// membership round (a Kubernetes headless service, a VM group behind one name: every address it yields is a
/// seed).
enum Seed: Sendable, Hashable {
    case address(String)
    case name(host: String, port: Int)

    /// Parses `host:port` where host is numeric (IPv4, `[IPv6]`), `localhost`, or a DNS name.
    /// - Throws: ``MeshError`` (`invalidAddress`) naming what is wrong.
    static func parse(_ text: String) throws(MeshError) -> Seed {
        if let address = try? MeshAddress.parse(text) { return .address(MeshAddress.text(address)) }
        guard !text.hasPrefix("["), let colon = text.lastIndex(of: ":") else {
            _ = try MeshAddress.parse(text)  // the numeric parser's error says what is wrong
            throw MeshError(.invalidAddress, "\"\(text)\" is not host:port")
        }
        let host = String(text[..<colon])
        guard let port = Int(text[text.index(after: colon)...]), (1...65535).contains(port) else {
            throw MeshError(.invalidAddress, "\"\(text)\": the port must be 1...65535")
        }
        guard isHostName(host) else {
            throw MeshError(.invalidAddress, "\"\(text)\": \"\(host)\" is neither a numeric address nor a valid host name")
        }
        return .name(host: host, port: port)
    }

    /// A DNS host name (RFC 1123): dot-separated labels of letters, digits and inner hyphens, 1-63 bytes each,
    /// 253 in all; one trailing dot allowed; not all digits (that would be a malformed numeric address).
    static func isHostName(_ host: String) -> Bool {
        var name = Substring(host)
        if name.hasSuffix(".") { name = name.dropLast() }
        guard !name.isEmpty, name.utf8.count <= 253 else { return false }
        let labels = name.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels {
            let bytes = Array(label.utf8)
            guard (1...63).contains(bytes.count), bytes.first != UInt8(ascii: "-"), bytes.last != UInt8(ascii: "-") else { return false }
            for byte in bytes {
                let ok = (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                    || byte == UInt8(ascii: "-")
                guard ok else { return false }
            }
        }
        return !name.utf8.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || $0 == UInt8(ascii: ".") }
    }
}
