/// Decides when a repeating log line may be written: at most once per interval per cause, with the number of
/// occurrences folded into it. A failing cause (a full disk, a flood of forged datagrams) then costs one line per
/// interval instead of one per event.
///
/// A pure value: the owner keeps it under its own lock (or on its own thread) and passes the time in.
package struct LogRateLimiter: Sendable {
    /// The shortest time between two lines of one cause, in nanoseconds.
    package let intervalNanoseconds: UInt64
    private var lastLoggedAt: [String: UInt64] = [:]
    private var suppressed: [String: Int] = [:]

    /// A limiter allowing one line per cause every `intervalNanoseconds` (default one second).
    package init(intervalNanoseconds: UInt64 = 1_000_000_000) {
        self.intervalNanoseconds = intervalNanoseconds
    }

    /// Records one occurrence of `cause` at `now` (monotonic nanoseconds). Returns `nil` when the line is to be
    /// suppressed, or how many occurrences it stands for (this one and those suppressed since the last line).
    package mutating func admit(_ cause: String, now: UInt64) -> Int? {
        if let last = lastLoggedAt[cause], now &- last < intervalNanoseconds {
            suppressed[cause, default: 0] += 1
            return nil
        }
        if lastLoggedAt.count >= 1024, lastLoggedAt[cause] == nil {
            // Causes are a handful of fixed strings; this only bounds memory against a caller that varies them.
            lastLoggedAt.removeAll(keepingCapacity: true)
            suppressed.removeAll(keepingCapacity: true)
        }
        lastLoggedAt[cause] = now
        return 1 + (suppressed.removeValue(forKey: cause) ?? 0)
    }
}
