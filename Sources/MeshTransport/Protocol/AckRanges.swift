/// The set of packet numbers received from a peer, kept as disjoint ascending closed ranges, for building
/// QUIC-style ACK frames (largest, first range, then gap/length pairs). Bounded: only the highest
/// ``maxRanges`` ranges are kept; older ones have long been acknowledged.
struct AckRanges: Sendable, Equatable {
    /// Ascending, disjoint, non-adjacent.
    private(set) var ranges: [ClosedRange<UInt64>] = []
    let maxRanges: Int

    init(maxRanges: Int = 64) { self.maxRanges = maxRanges }

    var largest: UInt64? { ranges.last?.upperBound }
    var isEmpty: Bool { ranges.isEmpty }

    func contains(_ n: UInt64) -> Bool {
        var low = 0
        var high = ranges.count
        while low < high {
            let mid = (low + high) / 2
            if ranges[mid].upperBound < n { low = mid + 1 } else { high = mid }
        }
        return low < ranges.count && ranges[low].contains(n)
    }

    /// Adds `n`; returns false if it was already present.
    @discardableResult
    mutating func insert(_ n: UInt64) -> Bool {
        // Fast path: extends the last range.
        if let last = ranges.last {
            if last.contains(n) { return false }
            if n == last.upperBound + 1 {
                ranges[ranges.count - 1] = last.lowerBound...n
                return true
            }
            if n > last.upperBound + 1 {
                ranges.append(n...n)
                trim()
                return true
            }
        } else {
            ranges.append(n...n)
            return true
        }
        if contains(n) { return false }
        var index = ranges.firstIndex { $0.lowerBound > n } ?? ranges.count
        ranges.insert(n...n, at: index)
        // Merge with neighbours.
        if index + 1 < ranges.count, ranges[index + 1].lowerBound == n + 1 {
            ranges[index] = n...ranges[index + 1].upperBound
            ranges.remove(at: index + 1)
        }
        if index > 0, ranges[index - 1].upperBound + 1 == n {
            ranges[index - 1] = ranges[index - 1].lowerBound...ranges[index].upperBound
            ranges.remove(at: index)
            index -= 1
        }
        trim()
        return true
    }

    private mutating func trim() {
        if ranges.count > maxRanges { ranges.removeFirst(ranges.count - maxRanges) }
    }

    /// The ranges, highest first, as an ACK frame carries them (at most `limit`).
    func descending(limit: Int) -> [ClosedRange<UInt64>] {
        Array(ranges.suffix(limit).reversed())
    }
}
