import Crypto

/// The secret every node of a cluster shares: 32 bytes, written as 64 hex digits (`mesh keygen` prints one).
/// Every datagram is authenticated under it; nothing unauthenticated is ever accepted or answered.
public struct ClusterKey: Sendable, Equatable, CustomStringConvertible {
    /// The key bytes.
    public let bytes: [UInt8]

    /// A key from exactly 32 bytes.
    /// - Throws: ``TransportError`` with code `invalidKey` for any other length.
    public init(bytes: [UInt8]) throws(TransportError) {
        guard bytes.count == 32 else {
            throw TransportError(.invalidKey, "a cluster key is 32 bytes (64 hex digits), got \(bytes.count) bytes")
        }
        self.bytes = bytes
    }

    /// A key from 64 hex digits (surrounding whitespace and a trailing newline are ignored).
    /// - Throws: ``TransportError`` with code `invalidKey`, saying what is wrong.
    public init(hex: String) throws(TransportError) {
        let text = hex.trimmingWhitespace()
        guard text.utf8.count == 64 else {
            throw TransportError(.invalidKey, "a cluster key is 64 hex digits, got \(text.utf8.count) characters")
        }
        var bytes: [UInt8] = []
        var iterator = text.utf8.makeIterator()
        while let a = iterator.next(), let b = iterator.next() {
            guard let hi = Self.nibble(a), let lo = Self.nibble(b) else {
                throw TransportError(.invalidKey, "a cluster key holds only hex digits 0-9 a-f")
            }
            bytes.append(hi << 4 | lo)
        }
        try self.init(bytes: bytes)
    }

    /// A new random key.
    public static func generate() -> ClusterKey {
        var rng = SystemRandomNumberGenerator()
        // Force-try is safe: exactly 32 bytes.
        return try! ClusterKey(bytes: (0..<32).map { _ in UInt8.random(in: 0...255, using: &rng) })
    }

    /// The key as 64 lowercase hex digits.
    public var hex: String {
        let digits = Array("0123456789abcdef".utf8)
        return String(decoding: bytes.flatMap { [digits[Int($0 >> 4)], digits[Int($0 & 15)]] }, as: UTF8.self)
    }

    /// Never prints the key itself: `ClusterKey(fingerprint …)`.
    public var description: String { "ClusterKey(fingerprint \(fingerprint))" }

    /// The first 8 hex digits of SHA-256 of the key: safe to log, enough to tell keys apart.
    public var fingerprint: String {
        let digest = SHA256.hash(data: bytes)
        return String(Array(digest).prefix(4).map { String($0, radix: 16) }.map { $0.count == 1 ? "0" + $0 : $0 }.joined())
    }

    private static func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

extension String {
    /// Without leading and trailing spaces, tabs, CRs and LFs (by scalar: "\r\n" is one Character, so a Character
    /// set would not strip a lone "\n").
    fileprivate func trimmingWhitespace() -> String {
        let blank: Set<Unicode.Scalar> = [" ", "\t", "\r", "\n"]
        var scalars = Substring(self).unicodeScalars
        while let first = scalars.first, blank.contains(first) { scalars.removeFirst() }
        while let last = scalars.last, blank.contains(last) { scalars.removeLast() }
        return String(scalars)
    }
}

/// The keys a node accepts, for rotation without downtime: every key in the ring is tried on receive (selected
/// by the key id in the header), the primary one signs what is sent. Rotate by (1) adding the new key on every
/// node, (2) making it primary on every node, (3) removing the old key.
public struct Keyring: Sendable, Equatable {
    /// The keys by id.
    public private(set) var keys: [UInt8: ClusterKey]
    /// The id of the key that seals outgoing datagrams.
    public private(set) var primaryID: UInt8

    /// A keyring with one key, id 0.
    public init(_ key: ClusterKey) {
        keys = [0: key]
        primaryID = 0
    }

    /// A keyring with several keys.
    /// - Throws: ``TransportError`` (`invalidKey`) if `primary` is not among `keys` or `keys` is empty.
    public init(keys: [UInt8: ClusterKey], primary: UInt8) throws(TransportError) {
        guard keys[primary] != nil else { throw TransportError(.invalidKey, "the primary key id \(primary) is not in the keyring") }
        self.keys = keys
        self.primaryID = primary
    }

    /// The primary key.
    public var primary: ClusterKey { keys[primaryID]! }
}
