import NIOCore

// Bridges Swift's `Duration` (the public API's unit) and NIO's `NIODeadline`/`TimeAmount` (the event loop's).

extension Duration {
    /// Whole nanoseconds (saturating).
    var nanosecondsValue: Int64 {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        return product &+ attoseconds / 1_000_000_000
    }

    var timeAmount: TimeAmount { .nanoseconds(nanosecondsValue) }
}

extension TimeAmount {
    var duration: Duration { .nanoseconds(nanoseconds) }
}

func + (lhs: NIODeadline, rhs: Duration) -> NIODeadline { lhs + rhs.timeAmount }
func - (lhs: NIODeadline, rhs: Duration) -> NIODeadline { lhs - rhs.timeAmount }
func >= (lhs: TimeAmount, rhs: Duration) -> Bool { lhs.nanoseconds >= rhs.nanosecondsValue }
func < (lhs: TimeAmount, rhs: Duration) -> Bool { lhs.nanoseconds < rhs.nanosecondsValue }
