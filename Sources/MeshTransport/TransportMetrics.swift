import CoreMetrics

/// The transport's metrics (swift-metrics), created once with fixed labels. Applications choose the backend
/// (`MetricsSystem.bootstrap`, or a task-local `withMetricsFactory` around ``MeshTransport/bind(configuration:logger:group:inboundHandler:)``);
/// without one these are no-ops.
struct TransportMetrics: Sendable {
    /// Where the per-peer series are created later (on the event loop, outside the binding task).
    let factory: any MetricsFactory
    let datagramsIn: Counter
    let datagramsOut: Counter
    let bytesIn: Counter
    let bytesOut: Counter
    let retransmits: Counter
    let fastRetransmits: Counter
    let duplicates: Counter
    let replays: Counter
    let authFailures: Counter
    let malformed: Counter
    let peersRefused: Counter
    let peersForgotten: Counter
    let segmentedWrites: Counter
    let inFlightBytes: Gauge
    let reassemblyBytes: Gauge
    let peers: Gauge

    /// The series, from `factory` (by default the one in effect where the transport is bound).
    init(factory: any MetricsFactory = MetricsSystem.factory) {
        self.factory = factory
        datagramsIn = Counter(label: "mesh_transport_datagrams_in_total", factory: factory)
        datagramsOut = Counter(label: "mesh_transport_datagrams_out_total", factory: factory)
        bytesIn = Counter(label: "mesh_transport_bytes_in_total", factory: factory)
        bytesOut = Counter(label: "mesh_transport_bytes_out_total", factory: factory)
        retransmits = Counter(label: "mesh_transport_retransmits_total", factory: factory)
        fastRetransmits = Counter(label: "mesh_transport_fast_retransmits_total", factory: factory)
        duplicates = Counter(label: "mesh_transport_duplicates_dropped_total", factory: factory)
        replays = Counter(label: "mesh_transport_replays_dropped_total", factory: factory)
        authFailures = Counter(label: "mesh_transport_auth_failures_total", factory: factory)
        malformed = Counter(label: "mesh_transport_malformed_total", factory: factory)
        peersRefused = Counter(label: "mesh_transport_peers_refused_total", factory: factory)
        peersForgotten = Counter(label: "mesh_transport_peers_forgotten_total", factory: factory)
        segmentedWrites = Counter(label: "mesh_transport_segmented_writes_total", factory: factory)
        inFlightBytes = Gauge(label: "mesh_transport_in_flight_bytes", factory: factory)
        reassemblyBytes = Gauge(label: "mesh_transport_reassembly_bytes", factory: factory)
        peers = Gauge(label: "mesh_transport_peers", factory: factory)
    }

    /// Smoothed RTT of one peer; created once per peer address and cached by the handler (destroyed when the
    /// peer is forgotten).
    func rtt(peer: String) -> Recorder {
        Recorder(label: "mesh_transport_rtt_seconds", dimensions: [("peer", peer)], aggregate: false, factory: factory)
    }
}

extension MeshTransport {
    /// One line of help for every `mesh_transport_*` series, by label (what a Prometheus backend prints as `# HELP`).
    public static let metricDescriptions: [String: String] = [
        "mesh_transport_datagrams_in_total": "Authentic datagrams received.",
        "mesh_transport_datagrams_out_total": "Datagrams sent.",
        "mesh_transport_bytes_in_total": "Bytes of datagrams received, authentic or not.",
        "mesh_transport_bytes_out_total": "Bytes of datagrams sent.",
        "mesh_transport_retransmits_total": "Fragments sent again after a loss was detected or a timeout fired.",
        "mesh_transport_fast_retransmits_total": "Packets declared lost by later acknowledgements (fast retransmit).",
        "mesh_transport_duplicates_dropped_total": "Duplicate messages or fragments dropped (already received).",
        "mesh_transport_replays_dropped_total": "Datagrams dropped as replays (a packet number already seen).",
        "mesh_transport_auth_failures_total": "Datagrams dropped because their authentication tag or key id did not match.",
        "mesh_transport_malformed_total": "Datagrams or frames dropped as malformed or oversized.",
        "mesh_transport_peers_refused_total": "Hellos from new peers dropped because maxPeers live peers were held.",
        "mesh_transport_peers_forgotten_total": "Sessions closed because their peer was quiet for forgetPeersAfter.",
        "mesh_transport_segmented_writes_total": "Writes that carried several datagrams to one peer (UDP segmentation offload).",
        "mesh_transport_in_flight_bytes": "Bytes sent and not yet acknowledged, all peers.",
        "mesh_transport_reassembly_bytes": "Bytes of partly received messages held for reassembly.",
        "mesh_transport_peers": "Peer sessions held now.",
        "mesh_transport_rtt_seconds": "Smoothed round-trip time to a peer.",
    ]
}
