import NIOCore

/// A node's identity on the wire: 128 bits, shown as 32 lowercase hex digits (the journal's node id).
public struct NodeID: Hashable, Sendable, CustomStringConvertible {
    /// The high 64 bits.
    public let high: UInt64
    /// The low 64 bits.
    public let low: UInt64

    /// A node id from its two halves.
    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// A node id from 32 hex digits; `nil` for anything else.
    public init?(hex: String) {
        let utf8 = Array(hex.utf8)
        guard utf8.count == 32 else { return nil }
        func parse(_ slice: ArraySlice<UInt8>) -> UInt64? {
            var value: UInt64 = 0
            for c in slice {
                let digit: UInt8
                switch c {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = c - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = c - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = c - UInt8(ascii: "A") + 10
                default: return nil
                }
                value = value << 4 | UInt64(digit)
            }
            return value
        }
        guard let high = parse(utf8[0..<16]), let low = parse(utf8[16..<32]) else { return nil }
        self.init(high: high, low: low)
    }

    /// A random node id.
    public static func random() -> NodeID {
        var rng = SystemRandomNumberGenerator()
        return NodeID(high: rng.next(), low: rng.next())
    }

    /// 32 lowercase hex digits.
    public var description: String {
        func hex(_ v: UInt64) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: 16 - s.count) + s
        }
        return hex(high) + hex(low)
    }

    func write(to buffer: inout ByteBuffer) {
        buffer.writeInteger(high)
        buffer.writeInteger(low)
    }

    static func read(from buffer: inout ByteBuffer) -> NodeID? {
        guard let high = buffer.readInteger(as: UInt64.self), let low = buffer.readInteger(as: UInt64.self) else { return nil }
        return NodeID(high: high, low: low)
    }
}
