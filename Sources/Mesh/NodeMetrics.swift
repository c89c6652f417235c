import Metrics

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
