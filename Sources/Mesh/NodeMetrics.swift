import Metrics
import MeshTransport

/// The node's swift-metrics instruments (the application bootstraps a backend, e.g. `mesh node --metrics-port`
/// serves them for Prometheus). The transport adds its own `mesh_transport_*` series.
struct NodeMetrics: Sendable {
    /// Messages handed to the transport after their journal commit (first sends and resends).
    let transmitted = Counter(label: "mesh_messages_transmitted_total")
    /// New inbound messages journaled.
    let received = Counter(label: "mesh_messages_received_total")
    /// Inbound messages already in the journal (acknowledged again, not dispatched).
    let duplicates = Counter(label: "mesh_messages_duplicate_total")
    /// Outbound messages the transport gave up on (journaled `failed`).
    let failed = Counter(label: "mesh_messages_failed_total")
    /// Handler chains that threw (each attempt).
    let handlerErrors = Counter(label: "mesh_handler_errors_total")
    /// Messages dead-lettered after `maxHandlerAttempts`.
    let deadLetters = Counter(label: "mesh_dead_letters_total")
    /// Unreliable (`usend`) messages dropped on arrival because the journal was this far behind
    /// (``MeshNode/maxInboundBacklog``); reliable ones are never dropped (their senders' windows bound them).
    let droppedUnreliable = Counter(label: "mesh_messages_dropped_unreliable_total")
    /// Reachable members, this node included.
    let members = Gauge(label: "mesh_members_reachable")
}

extension MeshNode {
    /// One line of help for every metric series a node emits (its own and its transport's), by label: what a
    /// Prometheus backend prints as `# HELP`. `mesh node --metrics-port` uses it; an embedding application can too.
    public static let metricDescriptions: [String: String] = MeshTransport.metricDescriptions.merging([
        "mesh_messages_transmitted_total": "Messages handed to the transport after their journal commit (first sends and resends).",
        "mesh_messages_received_total": "New inbound messages journaled.",
        "mesh_messages_duplicate_total": "Inbound messages already in the journal: acknowledged again, not dispatched again.",
        "mesh_messages_failed_total": "Outbound messages the transport gave up on (journaled failed).",
        "mesh_handler_errors_total": "Handler chains that threw (each attempt).",
        "mesh_dead_letters_total": "Messages dead-lettered after maxHandlerAttempts failed attempts.",
        "mesh_messages_dropped_unreliable_total": "Unreliable messages dropped on arrival while the journal was far behind.",
        "mesh_members_reachable": "Reachable members of the cluster, this node included.",
    ]) { $1 }
}
