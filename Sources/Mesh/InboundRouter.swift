import MeshTransport
import NIOConcurrencyHelpers
import NIOCore

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

    /// Journals what was held and everything after it. Runs on the node's event loop (`eventLoop`), where every
    /// batch is delivered, so held batches go first; batches are handed to the node outside the router's lock,
    /// since a lone message is committed — and its inline handlers run — inside that call.
    func activate(on eventLoop: any EventLoop) async {
        try? await eventLoop.submit {
            let (node, held) = self.state.withLockedValue { state -> (MeshNode?, [[ReceivedMessage]]) in
                guard !state.closed, let node = state.node else { return (nil, []) }
                state.active = true
                defer { state.held.removeAll() }
                return (node, state.held)
            }
            for batch in held { node?.received(batch) }
        }.get()
    }

    /// Drops whatever arrives from now on (the node is shutting down; unconfirmed messages are resent to its
    /// next incarnation).
    func close() {
        state.withLockedValue { state in
            state.closed = true
            state.held.removeAll()
        }
    }

    /// Every message delivered here is journaled or held, never dropped while the node runs: the transport has
    /// delivered it and counts it as the node's until it is confirmed or rejected, so a dropped reliable message
    /// would stall its sender's command ID for good (its retransmissions are duplicates to the transport). That
    /// happened to messages that arrived between the bind and ``attach(_:)`` of a restarting node (found by the
    /// random-kills test under load).
    func received(_ messages: [ReceivedMessage], responder: TransportResponder) {
        // On the event loop, like ``activate(on:)``: the node is called outside the lock (see there).
        let (active, node) = state.withLockedValue { state -> (Bool, MeshNode?) in
            guard !state.closed else { return (false, nil) }
            if state.active, let node = state.node { return (true, node) }
            if state.node == nil {
                state.held.append(messages)
                return (false, nil)
            }
            let data = messages.filter { !MeshNode.isControl($0.commandID) }
            if !data.isEmpty { state.held.append(data) }
            return (false, state.node)
        }
        guard let node else { return }
        if active {
            node.received(messages)
        } else {
            // Membership needs no journal order: handled now, as soon as the node exists.
            for message in messages where MeshNode.isControl(message.commandID) { node.receiveControl(message) }
        }
    }
}
