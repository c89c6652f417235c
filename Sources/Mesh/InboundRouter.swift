import MeshTransport
import NIOConcurrencyHelpers

/// The node's receiver on the transport's event loop (a ``TransportInboundHandler``): each read batch goes
/// straight to the journal's writer, with no task in between, and is confirmed and dispatched from its commit.
///
/// The transport is bound before the node exists, and messages may arrive while the node resumes its journal.
/// Those are held, in order, and journaled once ``activate()`` is called after the resume — so a new message
/// of a command ID never overtakes one that the resume is re-dispatching, and is never dispatched twice.
final class InboundRouter: TransportInboundHandler {
    private struct State {
        var node: MeshNode?
        var active = false
        var closed = false
        var held: [[ReceivedMessage]] = []
    }

    private let state = NIOLockedValueBox(State())

    init() {}

    /// Sets the node (before its resume). Control messages (membership) are handled from now on.
    func attach(_ node: MeshNode) {
        state.withLockedValue { $0.node = node }
    }

    /// Journals what was held and everything after it. Batches are handed to the node under the router's lock,
    /// so held ones go first even while the event loop delivers new ones.
    func activate() {
        state.withLockedValue { state in
            guard !state.closed, let node = state.node else { return }
            state.active = true
            for batch in state.held { node.received(batch) }
            state.held.removeAll()
        }
    }

    /// Drops whatever arrives from now on (the node is shutting down; unconfirmed messages are resent to its
    /// next incarnation).
    func close() {
        state.withLockedValue { state in
            state.closed = true
            state.held.removeAll()
        }
    }

    func received(_ messages: [ReceivedMessage], responder: TransportResponder) {
        state.withLockedValue { state in
            guard !state.closed, let node = state.node else { return }
            if state.active {
                node.received(messages)
                return
            }
            let control = messages.filter { MeshNode.reservedCommandIDs.contains($0.commandID) }
            for message in control { node.receiveControl(message) }
            let data = messages.filter { !MeshNode.reservedCommandIDs.contains($0.commandID) }
            if !data.isEmpty { state.held.append(data) }
        }
    }
}
