#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Bytewise UTF-8 comparison and validation, specialized (no generic dispatch) for the codec's hot paths.
enum UTF8Order {
    /// Whether `a` sorts before `b` by their UTF-8 bytes (the canonical key order).
    @inline(__always)
    static func less(_ a: String, _ b: String) -> Bool {
        if let result = a.utf8.withContiguousStorageIfAvailable({ pa in
            b.utf8.withContiguousStorageIfAvailable({ pb in less(UnsafeRawBufferPointer(pa), UnsafeRawBufferPointer(pb)) })
        }), let result {
            return result
        }
        return a.utf8.lexicographicallyPrecedes(b.utf8)
    }

    /// Whether `a` sorts before `b` bytewise (shorter prefix first).
    @inline(__always)
    static func less(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        let n = min(a.count, b.count)
        if n > 0, let pa = a.baseAddress, let pb = b.baseAddress {
            let c = memcmp(pa, pb, n)
            if c != 0 { return c < 0 }
        }
        return a.count < b.count
    }

    /// Whether `raw` is valid UTF-8, without making a String of it when it is ASCII.
    @inline(__always)
    static func isValid(_ raw: UnsafeRawBufferPointer) -> Bool {
        let bytes = raw.assumingMemoryBound(to: UInt8.self)
        return isASCII(bytes) || String(validating: bytes, as: UTF8.self) != nil
    }

    /// Whether every byte is below 0x80: the fast path of ``isValid(_:)`` and ``string(_:)``.
    @inline(__always)
    private static func isASCII(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        !bytes.contains { $0 >= 0x80 }
    }

    /// A String from bytes that must be valid UTF-8; `nil` otherwise. ASCII takes a fast path.
    @inline(__always)
    static func string(_ raw: UnsafeRawBufferPointer) -> String? {
        let bytes = raw.assumingMemoryBound(to: UInt8.self)
        if isASCII(bytes) { return String(decoding: bytes, as: UTF8.self) }
        return String(validating: bytes, as: UTF8.self)
    }
}

