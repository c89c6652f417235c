import MeshCore
import MeshJournal

/// The smaller calls of the Diarkis mesh API: lookups over the membership, a duplicate-command check, the first
/// sync with the cluster, a status that follows a condition, and diarkisexec's one-call send.
extension MeshNode {
    /// The node types of the reachable members, this node's included, sorted and without duplicates (Diarkis
    /// `GetNodeTypes`).
    public func nodeTypes() -> [String] {
        Array(Set(members().filter(\.isReachable).map(\.nodeType))).sorted()
    }

    /// The role of the reachable members of `nodeType` (Diarkis `GetNodeRoleByType`), or `nil` when there is
    /// none. Members of one type share a role in a Diarkis cluster; if they do not, the most common role (then
    /// the first in order) is returned.
    public func nodeRole(ofType nodeType: String) -> String? {
        var counts: [String: Int] = [:]
        for member in members() where member.isReachable && member.nodeType == nodeType { counts[member.nodeRole, default: 0] += 1 }
        return counts.max { $0.value != $1.value ? $0.value < $1.value : $0.key > $1.key }?.key
    }

    /// Whether a handler is registered for `commandID` already (Diarkis `IsCommandDuplicate`): a game server that
    /// must not share an ID checks before registering. Reserved IDs (``reservedCommandIDs``) count as taken.
    public func isCommandDuplicate(_ commandID: UInt16) -> Bool {
        Self.reservedCommandIDs.contains(commandID) || !dispatcher.handlers(for: commandID).isEmpty
    }

    /// Waits until this node has heard from the cluster (Diarkis `OnInitialSync`): a gossip record from another
    /// member arrived, so ``members()`` holds more than this node. Returns `true` then, at once if it already
    /// happened, and `false` after `timeout` (a node without seeds and without remembered members waits the
    /// whole timeout: it is a cluster of one until another node names it as a seed).
    public func initialSync(timeout: Duration = .seconds(10)) async -> Bool {
        await Self.race(timeout: timeout) { [synced] in await synced.wait() }
    }

    /// Keeps this node's status following `condition` (Diarkis `MarkServerAsTakenIf`): every `interval` the
    /// condition is checked on a task of its own; true makes the node `taken` (full: no new work), false makes it
    /// `online` again, and a change is gossiped at once. An `offline` node (see ``setStatus(_:)``) is left offline.
    /// Runs until shutdown; a second call replaces nothing — each call adds a check, so call it once.
    public func markTakenWhile(every interval: Duration = .seconds(1), _ condition: @escaping @Sendable () -> Bool) {
        let task = Task { [weak self] in
            while let self, !self.isStopped {
                let wanted: MemberStatus = condition() ? .taken : .online
                if self.status != .offline && self.status != wanted { self.setStatus(wanted) }
                guard (try? await Task.sleep(for: interval)) != nil else { return }
            }
        }
        addBackgroundTask(task)
    }

    /// diarkisexec's `SendMeshCommand(cmd, addresses, data, reliable)`: one address is a ``send(_:to:_:)`` (or
    /// ``usend(_:to:_:)`` when `reliable` is false), several go through the relay tree of
    /// ``sendMany(_:to:_:limit:)`` (``usendMany(_:to:_:limit:)``). Returns one delivery per address.
    @discardableResult
    public func sendMeshCommand(_ commandID: UInt16, to addresses: [String], _ data: MeshData, reliable: Bool = true,
                                limit: Int = 2) async throws -> [Delivery] {
        switch (addresses.count, reliable) {
        case (0, _): return []
        case (1, true): return [try await send(commandID, to: addresses[0], data)]
        case (1, false): return [try await usend(commandID, to: addresses[0], data)]
        case (_, true): return try await sendMany(commandID, to: addresses, data, limit: limit)
        case (_, false): return try await usendMany(commandID, to: addresses, data, limit: limit)
        }
    }
}
