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

    /// Appends the base64 encoding of the bytes at `source` to `out`.
    public static func encode(_ source: UnsafeBufferPointer<UInt8>, into out: inout [UInt8]) {
        let n = source.count
        let encoded = (n + 2) / 3 * 4
        let start = out.count
        // Written through raw pointers into reserved space: appending byte by byte (with its capacity and bounds
        // checks) made this the hottest function of a journaled 1 KiB-bytes message.
        out.append(contentsOf: repeatElement(0, count: encoded))
        out.withUnsafeMutableBufferPointer { destination in
            alphabet.withUnsafeBufferPointer { table in
                var o = start
                var i = 0
                while i + 3 <= n {
                    let v = UInt32(source[i]) << 16 | UInt32(source[i + 1]) << 8 | UInt32(source[i + 2])
                    destination[o] = table[Int(v >> 18 & 63)]
                    destination[o + 1] = table[Int(v >> 12 & 63)]
                    destination[o + 2] = table[Int(v >> 6 & 63)]
                    destination[o + 3] = table[Int(v & 63)]
                    i += 3
                    o += 4
                }
                if n - i == 1 {
                    let v = UInt32(source[i]) << 16
                    destination[o] = table[Int(v >> 18 & 63)]
                    destination[o + 1] = table[Int(v >> 12 & 63)]
                    destination[o + 2] = UInt8(ascii: "=")
                    destination[o + 3] = UInt8(ascii: "=")
                } else if n - i == 2 {
                    let v = UInt32(source[i]) << 16 | UInt32(source[i + 1]) << 8
                    destination[o] = table[Int(v >> 18 & 63)]
                    destination[o + 1] = table[Int(v >> 12 & 63)]
                    destination[o + 2] = table[Int(v >> 6 & 63)]
                    destination[o + 3] = UInt8(ascii: "=")
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
