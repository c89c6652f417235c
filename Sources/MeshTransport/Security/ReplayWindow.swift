/// Anti-replay protection for one peer epoch: a sliding bitmap over packet numbers (the DTLS / IPsec design,
/// RFC 6479). A packet number below the window or already seen is rejected. Call ``check(_:)`` before
/// accepting a packet and ``record(_:)`` only after it authenticated, so forgeries cannot move the window.
struct ReplayWindow: Sendable {
    static let size: UInt64 = 4096
    private var highest: UInt64 = 0
    private var bits = [UInt64](repeating: 0, count: Int(size / 64))

    /// Whether `n` is new and inside the window.
    func check(_ n: UInt64) -> Bool {
        if n == 0 { return false }
        if n > highest { return true }
        if highest - n >= Self.size { return false }
        let slot = Int(n % Self.size)
        return bits[slot / 64] & (1 << UInt64(slot % 64)) == 0
    }

    /// Marks `n` seen, sliding the window if it is the new highest.
    mutating func record(_ n: UInt64) {
        if n > highest {
            let advance = n - highest
            if advance >= Self.size {
                for i in bits.indices { bits[i] = 0 }
            } else {
                var k = highest + 1
                while k < n {
                    let slot = Int(k % Self.size)
                    bits[slot / 64] &= ~(1 << UInt64(slot % 64))
                    k += 1
                }
            }
            highest = n
        }
        let slot = Int(n % Self.size)
        bits[slot / 64] |= 1 << UInt64(slot % 64)
    }
}
