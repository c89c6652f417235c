import NIOConcurrencyHelpers

/// A node's handlers, by command ID in registration order, and the lane of each command ID that runs them.
///
/// Called from any thread under one lock: handlers are registered from the application; the node's thread looks
/// up a command ID's chain for each received message (its kind, or the chain itself to run it inline); lanes are
/// created on first use and run their work on tasks of their own (``DispatchLane``), started where the work is
/// queued. What a lane runs, the node supplies (``attach(startsInline:_:)``): running a chain needs the journal, the
/// transport and the node's settings.
final class Dispatcher: Sendable {
    /// What runs a lane's work for a command ID (the node's `dispatch`).
    typealias Run = @Sendable (DispatchWork, UInt16) async -> Void

    private struct State {
        var handlers: [UInt16: [RegisteredHandler]] = [:]
        var lanes: [UInt16: DispatchLane] = [:]
        var run: Run?
        var startsInline = true
    }

    private let state = NIOLockedValueBox(State())

    /// Sets what lanes run, and whether their runners start on the thread that queues their work
    /// (``MeshConfiguration/startsAsyncHandlersInline``), before any lane is created.
    func attach(startsInline: Bool = true, _ run: @escaping Run) {
        state.withLockedValue {
            $0.run = run
            $0.startsInline = startsInline
        }
    }

    /// Appends `handler` to `commandID`'s chain. Returns the command ID's lane if this is its first handler: messages
    /// journaled `unhandled` until now are then dispatched by a catch-up pass on it.
    func register(_ handler: RegisteredHandler, for commandID: UInt16) -> DispatchLane? {
        state.withLockedValue { state in
            let first = state.handlers[commandID]?.isEmpty ?? true
            state.handlers[commandID, default: []].append(handler)
            return first ? lane(commandID, &state) : nil
        }
    }

    /// `commandID`'s handlers, in registration order.
    func handlers(for commandID: UInt16) -> [RegisteredHandler] {
        state.withLockedValue { $0.handlers[commandID] ?? [] }
    }

    /// What handles a command ID's messages now.
    enum ChainKind {
        /// No handler: its messages are journaled `unhandled`.
        case none
        /// At least one async handler: its messages go to its lane.
        case lane
        /// Only synchronous handlers: its messages may run inline (``inlineChain(for:)``).
        case synchronous
    }

    /// The kind of `commandID`'s chain.
    func chainKind(_ commandID: UInt16) -> ChainKind {
        state.withLockedValue { state in
            guard let registered = state.handlers[commandID], !registered.isEmpty else { return .none }
            return registered.allSatisfy { $0.synchronous != nil } ? .synchronous : .lane
        }
    }

    /// `commandID`'s handlers if all are synchronous, with its lane (the caller runs them inline only while the
    /// lane is idle, or reserves the lane).
    func inlineChain(for commandID: UInt16) -> (handlers: [MeshNode.SyncHandler], lane: DispatchLane)? {
        state.withLockedValue { state in
            guard let registered = state.handlers[commandID], !registered.isEmpty else { return nil }
            var chain: [MeshNode.SyncHandler] = []
            chain.reserveCapacity(registered.count)
            for handler in registered {
                guard let sync = handler.synchronous else { return nil }
                chain.append(sync)
            }
            return (chain, lane(commandID, &state))
        }
    }

    /// `commandID`'s lane, created on first use.
    func lane(_ commandID: UInt16) -> DispatchLane {
        state.withLockedValue { lane(commandID, &$0) }
    }

    /// Whether nothing of `commandID` is queued or running on its lane.
    func isLaneIdle(_ commandID: UInt16) -> Bool {
        state.withLockedValue { $0.lanes[commandID]?.isIdle ?? true }
    }

    /// Every lane created so far (for shutdown: finish, drain, cancel).
    var lanes: [DispatchLane] { state.withLockedValue { Array($0.lanes.values) } }

    private func lane(_ commandID: UInt16, _ state: inout State) -> DispatchLane {
        if let lane = state.lanes[commandID] { return lane }
        let run = state.run ?? { _, _ in }
        let lane = DispatchLane(commandID: commandID, startsInline: state.startsInline) { work in await run(work, commandID) }
        state.lanes[commandID] = lane
        return lane
    }
}
