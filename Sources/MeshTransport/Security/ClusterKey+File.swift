#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension ClusterKey {
    /// The fixed, public key of `--insecure` (32 zero bytes): anyone can forge datagrams under it. For local
    /// experiments only; ``init(contentsOfFile:)`` refuses it.
    public static let insecure: ClusterKey = {
        // Force-try is safe: exactly 32 bytes.
        try! ClusterKey(bytes: [UInt8](repeating: 0, count: 32))
    }()

    /// Whether this is the public ``insecure`` key.
    public var isInsecure: Bool { bytes.allSatisfy { $0 == 0 } }

    /// Reads a key file: 64 hex digits (surrounding whitespace ignored).
    ///
    /// Refuses, like ssh with an unprotected key: a file that other users may write (group- or world-writable:
    /// whoever can replace the key can join or cut off the node), and the public ``insecure`` key, whose use must
    /// be explicit (`--insecure`). A file others may read is accepted — a Kubernetes secret is mounted 0644 by
    /// default — but 0600 (or 0400) is the right mode for it.
    /// - Throws: ``TransportError`` `invalidKey` naming the file and what is wrong.
    public init(contentsOfFile path: String) throws(TransportError) {
        func unreadable() -> TransportError {
            TransportError(.invalidKey, "cannot read the key file \(path): \(String(cString: strerror(errno)))")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw unreadable() }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw unreadable() }
        let mode = info.st_mode & 0o7777
        guard mode & 0o022 == 0 else {
            let octal = String(mode, radix: 8)
            throw TransportError(.invalidKey, """
                the key file \(path) may be written by other users (mode \(octal)): anyone who can replace it controls the \
                node's cluster membership; run `chmod 600 \(path)`
                """)
        }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count >= 0 else { throw unreadable() }
        let key: ClusterKey
        do {
            key = try ClusterKey(hex: String(decoding: buffer.prefix(count), as: UTF8.self))
        } catch {
            throw TransportError(.invalidKey, "the key file \(path): \(error.message)")
        }
        guard !key.isInsecure else {
            throw TransportError(.invalidKey, """
                the key file \(path) holds the public insecure key (all zeros), which authenticates nothing: run \
                `mesh keygen > \(path)` for a real one (or pass --insecure for a local experiment)
                """)
        }
        self = key
    }
}
