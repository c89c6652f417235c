import CoreMetrics

/// The transport's metrics (swift-metrics), created once with fixed labels. Applications choose the backend
/// (`MetricsSystem.bootstrap`); without one these are no-ops.
struct TransportMetrics: Sendable {
    let datagramsIn = Counter(label: "mesh_transport_datagrams_in_total")
    let datagramsOut = Counter(label: "mesh_transport_datagrams_out_total")
    let bytesIn = Counter(label: "mesh_transport_bytes_in_total")
    let bytesOut = Counter(label: "mesh_transport_bytes_out_total")
    let retransmits = Counter(label: "mesh_transport_retransmits_total")
    let fastRetransmits = Counter(label: "mesh_transport_fast_retransmits_total")
    let duplicates = Counter(label: "mesh_transport_duplicates_dropped_total")
    let replays = Counter(label: "mesh_transport_replays_dropped_total")
    let authFailures = Counter(label: "mesh_transport_auth_failures_total")
    let malformed = Counter(label: "mesh_transport_malformed_total")
    let inFlightBytes = Gauge(label: "mesh_transport_in_flight_bytes")
    let reassemblyBytes = Gauge(label: "mesh_transport_reassembly_bytes")
    let peers = Gauge(label: "mesh_transport_peers")

    /// Smoothed RTT of one peer; created once per peer address and cached by the handler.
    static func rtt(peer: String) -> Recorder {
        Recorder(label: "mesh_transport_rtt_seconds", dimensions: [("peer", peer)], aggregate: false)
    }
}
