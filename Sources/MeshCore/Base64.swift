/// Standard base64 (RFC 4648 §4, with padding), without Foundation. Used for bytes in JSON renderings.
public enum Base64 {
    private static let alphabet: [UInt8] = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)

    /// `bytes` encoded as base64 text.
    public static func encode(_ bytes: [UInt8]) -> String {
        var out: [UInt8] = []
        encode(bytes, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// Appends the base64 encoding of `bytes` to `out`.
    public static func encode(_ bytes: [UInt8], into out: inout [UInt8]) {
        bytes.withUnsafeBufferPointer { encode($0, into: &out) }
    }

    /// Every 12-bit value as its two base64 characters, the first in the low byte (stored little-endian, it is the
    /// first in memory): three input bytes become two lookups and two 2-byte stores instead of four of each.
    private static let pairs: [UInt16] = (0..<4096).map { UInt16(alphabet[$0 >> 6]) | UInt16(alphabet[$0 & 63]) << 8 }

    /// Appends the base64 encoding of the bytes at `source` to `out`.
    public static func encode(_ source: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        let n = source.count
        let encoded = (n + 2) / 3 * 4
        let start = out.count
        // Written through raw pointers into reserved space: appending byte by byte (with its capacity and bounds
        // checks) made this the hottest function of a journaled 1 KiB-bytes message.
        out.append(contentsOf: repeatElement(0, count: encoded))
        out.withUnsafeMutableBufferPointer { destination in
            guard let base = destination.baseAddress else { return }
            let raw = UnsafeMutableRawPointer(base + start)
            pairs.withUnsafeBufferPointer { pair in
                var o = 0
                var i = 0
                while i + 3 <= n {
                    let v = Int(source[i]) << 16 | Int(source[i + 1]) << 8 | Int(source[i + 2])
                    raw.storeBytes(of: pair[v >> 12].littleEndian, toByteOffset: o, as: UInt16.self)
                    raw.storeBytes(of: pair[v & 0xFFF].littleEndian, toByteOffset: o + 2, as: UInt16.self)
                    i += 3
                    o += 4
                }
                let last = base + start + o
                if n - i == 1 {
                    let v = Int(source[i]) << 4
                    raw.storeBytes(of: pair[v].littleEndian, toByteOffset: o, as: UInt16.self)
                    last[2] = UInt8(ascii: "=")
                    last[3] = UInt8(ascii: "=")
                } else if n - i == 2 {
                    let v = Int(source[i]) << 10 | Int(source[i + 1]) << 2
                    raw.storeBytes(of: pair[v >> 6].littleEndian, toByteOffset: o, as: UInt16.self)
                    last[2] = alphabet[v & 63]
                    last[3] = UInt8(ascii: "=")
                }
            }
        }
    }

    /// Decodes padded or unpadded base64; `nil` if `text` holds anything else.
    public static func decode(_ text: String) -> [UInt8]? {
        var values: [UInt8] = []
        values.reserveCapacity(text.utf8.count)
        var sawPadding = false
        for c in text.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): v = c - UInt8(ascii: "A")
            case UInt8(ascii: "a")...UInt8(ascii: "z"): v = c - UInt8(ascii: "a") + 26
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0") + 52
            case UInt8(ascii: "+"): v = 62
            case UInt8(ascii: "/"): v = 63
            case UInt8(ascii: "="): sawPadding = true; continue
            default: return nil
            }
            if sawPadding { return nil }
            values.append(v)
        }
        if values.count % 4 == 1 { return nil }
        var out: [UInt8] = []
        out.reserveCapacity(values.count * 3 / 4)
        var i = 0
        while i + 4 <= values.count {
            let v = UInt32(values[i]) << 18 | UInt32(values[i + 1]) << 12 | UInt32(values[i + 2]) << 6 | UInt32(values[i + 3])
            out.append(UInt8(truncatingIfNeeded: v >> 16))
            out.append(UInt8(truncatingIfNeeded: v >> 8))
            out.append(UInt8(truncatingIfNeeded: v))
            i += 4
        }
        let rest = values.count - i
        if rest == 2 {
            let v = UInt32(values[i]) << 18 | UInt32(values[i + 1]) << 12
            out.append(UInt8(truncatingIfNeeded: v >> 16))
        } else if rest == 3 {
            let v = UInt32(values[i]) << 18 | UInt32(values[i + 1]) << 12 | UInt32(values[i + 2]) << 6
            out.append(UInt8(truncatingIfNeeded: v >> 16))
            out.append(UInt8(truncatingIfNeeded: v >> 8))
        }
        return out
    }
}
