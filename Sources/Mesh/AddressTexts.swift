import MeshTransport
import NIOCore
import Synchronization

/// The parsed and printed forms of the few peer addresses and node ids a node talks to, kept so that sending and
/// receiving do not parse `host:port` text and print it back (an `inet_pton` and an `inet_ntop`, with their
/// strings) for every message.
///
/// Every per-message use of a peer's address goes through it: sends, responses, relay forwards, resends after a
/// restart, and received batches. Shared by the callers of `send` (any task) and the node's thread, hence the lock;
/// each use takes it once per message. Bounded: a map that reaches ``capacity`` entries starts over, so a node
/// addressed by ever-new peers keeps a few kilobytes, not one entry per peer ever seen.
final class AddressTexts: Sendable {
    /// Entries per map before it starts over.
    static let capacity = 1024

    private struct State {
        /// `host:port` as a caller wrote it → the address, and its text as the journal's `peer` column holds it.
        var parsed: [String: (SocketAddress, String)] = [:]
        /// A datagram's source address → its `peer` text.
        var printed: [SocketAddress: String] = [:]
        /// A sender's node id → its text (`mesh_peer.node_id`).
        var nodes: [NodeID: String] = [:]
    }

    private let state = Mutex(State())

    /// The address `text` names and its normalized text (``MeshAddress/text(_:)``).
    /// - Throws: ``MeshError`` (`invalidAddress`) as ``MeshAddress/parse(_:)``; errors are not kept.
    func parse(_ text: String) throws(MeshError) -> (SocketAddress, String) {
        if let known = state.withLock({ $0.parsed[text] }) { return known }
        let address = try MeshAddress.parse(text)
        let entry = (address, MeshAddress.text(address))
        state.withLock { state in
            if state.parsed.count >= Self.capacity { state.parsed.removeAll(keepingCapacity: true) }
            state.parsed[text] = entry
        }
        return entry
    }

    /// The `peer` text of a datagram's source address and the text of its sender's node id.
    func texts(address: SocketAddress, node: NodeID) -> (peer: String, node: String) {
        state.withLock { state in
            let peer = state.printed[address] ?? MeshAddress.text(address)
            let nodeText = state.nodes[node] ?? node.description
            if state.printed.count >= Self.capacity { state.printed.removeAll(keepingCapacity: true) }
            if state.nodes.count >= Self.capacity { state.nodes.removeAll(keepingCapacity: true) }
            state.printed[address] = peer
            state.nodes[node] = nodeText
            return (peer, nodeText)
        }
    }

    /// How many entries each map holds (for tests of the bound).
    var counts: (parsed: Int, printed: Int, nodes: Int) {
        state.withLock { ($0.parsed.count, $0.printed.count, $0.nodes.count) }
    }
}
