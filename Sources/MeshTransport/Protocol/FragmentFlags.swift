/// One flag per fragment of an outbound message (acknowledged, queued to be sent), held inline for a message of up
/// to 64 fragments — nearly every message — so tracking one costs no allocation; a larger message's flags above
/// the first 64 are kept in an array.
///
/// Owned by its ``OutboundEntry``, on the transport's event loop.
struct FragmentFlags {
    /// Fragments 0...63.
    private var low: UInt64 = 0
    /// Fragments 64 and up, 64 to a word; empty (no allocation) for a message of up to 64 fragments.
    private var high: [UInt64]

    /// All `count` flags clear.
    init(count: Int) {
        high = count > 64 ? Array(repeating: 0, count: (count - 1) / 64) : []
    }

    subscript(index: Int) -> Bool {
        get {
            if index < 64 { return low & (1 << UInt64(index)) != 0 }
            return high[(index - 64) >> 6] & (1 << UInt64(index & 63)) != 0
        }
        set {
            let bit: UInt64 = 1 << UInt64(index & 63)
            if index < 64 {
                if newValue { low |= bit } else { low &= ~bit }
            } else if newValue {
                high[(index - 64) >> 6] |= bit
            } else {
                high[(index - 64) >> 6] &= ~bit
            }
        }
    }
}
