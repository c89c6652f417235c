import NIOCore

/// Round-trip time estimation and retransmission timeout, after RFC 6298, with a floor suited to a LAN.
///
/// Before the first sample the RTO is ``Configuration/initialRTO`` (Diarkis's `retryInterval`, 1000 ms). The
/// first sample R sets SRTT = R and RTTVAR = R/2; later samples update RTTVAR ← ¾·RTTVAR + ¼·|SRTT − R| and
/// SRTT ← ⅞·SRTT + ⅛·R. RTO = SRTT + max(granularity, 4·RTTVAR), clamped to [minRTO, maxRTO]. Each consecutive
/// timeout doubles the RTO (capped at maxRTO); an acknowledgement resets the backoff. Retransmissions use new
/// packet numbers, so every sample is unambiguous (no Karn's rule needed); samples exclude the receiver's
/// reported ack delay. Kept in integer nanoseconds: this runs for every acknowledgement.
struct RTTEstimator: Sendable {
    struct Configuration: Sendable {
        var initialRTO: Duration = .milliseconds(1000)
        var minRTO: Duration = .milliseconds(10)
        var maxRTO: Duration = .milliseconds(1000)
        var granularity: Duration = .microseconds(500)
    }

    let configuration: Configuration
    private let initialNanos: Int64
    private let minNanos: Int64
    private let maxNanos: Int64
    private let granularityNanos: Int64
    private(set) var smoothedNanos: Int64?
    private(set) var variationNanos: Int64 = 0
    private(set) var latestNanos: Int64?
    private(set) var minimumNanos: Int64?
    /// Consecutive timeouts without an acknowledgement in between.
    private(set) var backoff: Int = 0

    init(configuration: Configuration = .init()) {
        self.configuration = configuration
        initialNanos = configuration.initialRTO.nanosecondsValue
        minNanos = configuration.minRTO.nanosecondsValue
        maxNanos = configuration.maxRTO.nanosecondsValue
        granularityNanos = configuration.granularity.nanosecondsValue
    }

    var smoothed: Duration? { smoothedNanos.map { .nanoseconds($0) } }
    var variation: Duration { .nanoseconds(variationNanos) }
    var latest: Duration? { latestNanos.map { .nanoseconds($0) } }

    /// Adds a sample (send to ack), minus the receiver's ack delay when that leaves at least the minimum RTT
    /// seen (as QUIC does, so a bogus delay cannot shrink the estimate below reality).
    mutating func addSample(nanos rtt: Int64, ackDelayNanos: Int64 = 0) {
        var sample = max(rtt, 0)
        minimumNanos = min(minimumNanos ?? sample, sample)
        if sample - ackDelayNanos >= (minimumNanos ?? 0) { sample -= ackDelayNanos }
        latestNanos = sample
        backoff = 0
        guard let srtt = smoothedNanos else {
            smoothedNanos = sample
            variationNanos = sample / 2
            return
        }
        variationNanos = (variationNanos * 3 + abs(srtt - sample)) / 4
        smoothedNanos = (srtt * 7 + sample) / 8
    }

    /// Adds a sample given as durations (tests).
    mutating func addSample(_ rtt: Duration, ackDelay: Duration = .zero) {
        addSample(nanos: rtt.nanosecondsValue, ackDelayNanos: ackDelay.nanosecondsValue)
    }

    /// The timeout without backoff, in nanoseconds.
    var baseRTONanos: Int64 {
        guard let srtt = smoothedNanos else { return initialNanos }
        return min(max(srtt + max(granularityNanos, variationNanos * 4), minNanos), maxNanos)
    }

    /// The timeout to use now, in nanoseconds: the base doubled per consecutive timeout, capped at maxRTO.
    var rtoNanos: Int64 {
        var value = baseRTONanos
        for _ in 0..<min(backoff, 30) {
            value *= 2
            if value >= maxNanos { return maxNanos }
        }
        return value
    }

    var baseRTO: Duration { .nanoseconds(baseRTONanos) }
    var rto: Duration { .nanoseconds(rtoNanos) }
    var rtoAmount: TimeAmount { .nanoseconds(rtoNanos) }

    /// Records a timeout (the retransmission timer fired).
    mutating func timedOut() { backoff += 1 }

    /// Resets the backoff after progress (an acknowledgement of new data).
    mutating func resetBackoff() { backoff = 0 }
}
