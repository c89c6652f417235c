/// Round-trip time estimation and retransmission timeout, after RFC 6298, with a floor suited to a LAN.
///
/// Before the first sample the RTO is ``Configuration/initialRTO`` (Diarkis's `retryInterval`, 1000 ms). The
/// first sample R sets SRTT = R and RTTVAR = R/2; later samples update RTTVAR ← ¾·RTTVAR + ¼·|SRTT − R| and
/// SRTT ← ⅞·SRTT + ⅛·R. RTO = SRTT + max(granularity, 4·RTTVAR), clamped to [minRTO, maxRTO]. Each consecutive
/// timeout doubles the RTO (capped at maxRTO); an acknowledgement resets the backoff. Retransmissions use new
/// packet numbers, so every sample is unambiguous (no Karn's rule needed); samples exclude the receiver's
/// reported ack delay.
struct RTTEstimator: Sendable {
    struct Configuration: Sendable {
        var initialRTO: Duration = .milliseconds(1000)
        var minRTO: Duration = .milliseconds(5)
        var maxRTO: Duration = .milliseconds(2000)
        var granularity: Duration = .microseconds(500)
    }

    let configuration: Configuration
    private(set) var smoothed: Duration?
    private(set) var variation: Duration = .zero
    private(set) var latest: Duration?
    private(set) var minimum: Duration?
    /// Consecutive timeouts without an acknowledgement in between.
    private(set) var backoff: Int = 0

    init(configuration: Configuration = .init()) {
        self.configuration = configuration
    }

    /// Adds a sample: `rtt` measured from send to ack, minus `ackDelay` when that leaves at least the minimum
    /// RTT seen (as QUIC does, so a bogus delay cannot shrink the estimate below reality).
    mutating func addSample(_ rtt: Duration, ackDelay: Duration = .zero) {
        var sample = rtt
        minimum = min(minimum ?? rtt, rtt)
        if sample - ackDelay >= (minimum ?? .zero) { sample -= ackDelay }
        latest = sample
        backoff = 0
        guard let srtt = smoothed else {
            smoothed = sample
            variation = sample / 2
            return
        }
        let deviation = srtt > sample ? srtt - sample : sample - srtt
        variation = variation * 3 / 4 + deviation / 4
        smoothed = srtt * 7 / 8 + sample / 8
    }

    /// The timeout without backoff.
    var baseRTO: Duration {
        guard let srtt = smoothed else { return configuration.initialRTO }
        let rto = srtt + max(configuration.granularity, variation * 4)
        return min(max(rto, configuration.minRTO), configuration.maxRTO)
    }

    /// The timeout to use now: the base doubled per consecutive timeout, capped at maxRTO.
    var rto: Duration {
        var value = baseRTO
        for _ in 0..<min(backoff, 16) {
            value *= 2
            if value >= configuration.maxRTO { return configuration.maxRTO }
        }
        return value
    }

    /// Records a timeout (the retransmission timer fired).
    mutating func timedOut() { backoff += 1 }

    /// Resets the backoff after progress (an acknowledgement of new data).
    mutating func resetBackoff() { backoff = 0 }
}
