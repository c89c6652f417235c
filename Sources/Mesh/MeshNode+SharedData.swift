import MeshCore
import MeshJournal
import MeshTransport
import NIOConcurrencyHelpers

/// Shared data (Diarkis `SetSharedData` / `GetSharedData` / `RemoveSharedData` / `OnSharedDataUpdate` /
/// `OnSharedDataRemove`): a cluster-wide map of keys to any ``MeshValue``, spread by the membership gossip (no
/// extra server), journaled on every node (a restarted node has the map before it hears from anyone; history in
/// the view `mesh_shared_data`). Eventually consistent: every node converges to the same entry per key, the one
/// with the highest (version, writer) (``SharedEntry/supersedes(_:)``); concurrent writers race and one wins.
extension MeshNode {
    /// The entry of `key`, or `nil` if it was never written or is removed (Diarkis `GetSharedData`).
    public func shared(_ key: String) -> SharedEntry? {
        sharedData.withLockedValue { $0.entries[key] }.flatMap { $0.isRemoved ? nil : $0 }
    }

    /// Every live key's entry.
    public func sharedEntries() -> [String: SharedEntry] {
        sharedData.withLockedValue { $0.entries.filter { !$0.value.isRemoved } }
    }

    /// Writes `value` to `key` (Diarkis `SetSharedData`): journaled here, then gossiped. With `ifVersion`, only if
    /// the key's current version here is that (compare-and-set; 0 for a key never written). Returns the new entry.
    /// - Throws: ``MeshError`` `versionConflict` (naming the current version), `limitExceeded` (a limit of
    ///   ``MeshConfiguration/sharedDataLimits`` or a bad key), journal errors.
    @discardableResult
    public func setShared(_ key: String, _ value: MeshValue, ifVersion: UInt64? = nil) async throws -> SharedEntry {
        try await writeShared(key, value, ifVersion: ifVersion)
    }

    /// Removes `key` (Diarkis `RemoveSharedData`): a tombstone version, so the removal wins over older writes
    /// everywhere. `ifVersion` as in ``setShared(_:_:ifVersion:)``.
    @discardableResult
    public func removeShared(_ key: String, ifVersion: UInt64? = nil) async throws -> SharedEntry {
        try await writeShared(key, nil, ifVersion: ifVersion)
    }

    /// Changes to the shared data, local and gossiped, as they are applied here (Diarkis `OnSharedDataUpdate`, and
    /// `OnSharedDataRemove` for entries whose ``SharedEntry/isRemoved``). Ends at shutdown.
    public func sharedDataChanges() -> AsyncStream<SharedEntry> { sharedBroadcaster.stream() }

    fileprivate func writeShared(_ key: String, _ value: MeshValue?, ifVersion: UInt64?) async throws -> SharedEntry {
        try checkRunning()
        let writer = identity.nodeID
        return try await sharedWrites.run {
            let prepared = sharedData.withLockedValue { $0.prepareWrite(key, value, writer: writer, nowMs: WallClock.nowMs(), ifVersion: ifVersion) }
            let entry: SharedEntry
            switch prepared {
            case .success(let made): entry = made
            case .failure(let refusal): throw Self.error(refusal, key: key)
            }
            // Journal first: the version is durable here before any node hears of it.
            try await journal.appendShared([entry])
            if sharedData.withLockedValue({ $0.merge(entry) }) { sharedBroadcaster.yield([entry]) }
            gossipNow()
            return entry
        }
    }

    /// Merges entries another node gossiped; journals and announces those that changed the map.
    func mergeShared(_ entries: [SharedEntry]) {
        guard !entries.isEmpty else { return }
        let changed = sharedData.withLockedValue { table in entries.filter { table.merge($0) } }
        guard !changed.isEmpty else { return }
        journal.postShared(changed)
        sharedBroadcaster.yield(changed)
    }

    /// Loads the map the journal holds (at start, before any gossip).
    func loadShared() async throws {
        let entries = try await journal.loadShared()
        sharedData.withLockedValue { table in
            for entry in entries { table.merge(entry) }
        }
    }

    static func error(_ refusal: SharedDataTable.Refusal, key: String) -> MeshError {
        switch refusal {
        case .versionConflict(let current):
            MeshError(.versionConflict, "shared key \"\(key)\" is at version \(current)")
        case .tooManyKeys(let limit):
            MeshError(.limitExceeded, "shared data holds \(limit) keys already (sharedDataLimits.maxKeys)")
        case .valueTooLarge(let bytes, let limit):
            MeshError(.limitExceeded, "the value of shared key \"\(key)\" is \(bytes) bytes encoded; the limit is \(limit) (sharedDataLimits.maxValueBytes)")
        case .totalTooLarge(let bytes, let limit):
            MeshError(.limitExceeded, "shared data would hold \(bytes) bytes; the limit is \(limit) (sharedDataLimits.maxTotalBytes)")
        case .badKey(let why):
            MeshError(.limitExceeded, "shared key: \(why)")
        }
    }
}

// MARK: - The shared-data service (`mesh cluster shared`)

extension MeshNode {
    /// The reserved command ID of the shared-data service: requests `{"op": "get", "key"?}`,
    /// `{"op": "set", "key", "value", "ifVersion"?}` and `{"op": "delete", "key", "ifVersion"?}`, journaled like every
    /// request, answered by every member. `mesh cluster shared` uses it through a guest.
    public static let sharedDataCommand: UInt16 = 65001

    /// Registers Mesh's own handler of ``sharedDataCommand`` (reserved: applications cannot).
    func registerSharedDataService() {
        _ = dispatcher.register(.async({ [weak self] data, _ in
            guard let self else { return nil }
            return await self.serveSharedData(data)
        }), for: Self.sharedDataCommand)
    }

    /// One request of the shared-data service. The answer is `{"entries": [entry]}` for a get, `{"entry": entry}`
    /// for a write, `{"conflict": version}` when `ifVersion` did not match, `{"error": text}` otherwise; an entry
    /// is `{"key", "value"?, "version", "writer", "updatedAtMs"}` (no `value`: removed).
    func serveSharedData(_ request: MeshData) async -> MeshData {
        func entry(_ e: SharedEntry) -> MeshValue {
            var map: MeshData = ["key": .string(e.key), "version": .uint64(e.version), "writer": .string(e.writer), "updatedAtMs": .int64(e.updatedAtMs)]
            if let value = e.value { map["value"] = value }
            return .map(map)
        }
        let key = request.string("key")
        let ifVersion = request.uint64("ifVersion")
        switch request.string("op") {
        case "get":
            let entries = key.map { shared($0).map { [$0] } ?? [] } ?? sharedEntries().values.sorted { $0.key < $1.key }
            return ["entries": .array(entries.map(entry))]
        case "set", "delete":
            guard let key else { return ["error": "a \"key\" is required"] }
            let value = request.string("op") == "set" ? request["value"] : nil
            if request.string("op") == "set" && value == nil { return ["error": "a \"value\" is required"] }
            do {
                return ["entry": entry(try await writeShared(key, value, ifVersion: ifVersion))]
            } catch let error as MeshError where error.code == .versionConflict {
                return ["conflict": .uint64(sharedData.withLockedValue { $0.entries[key]?.version ?? 0 })]
            } catch {
                return ["error": .string("\(error)")]
            }
        default:
            return ["error": "unknown op \(MeshJSON.string(from: request["op"] ?? .null)): get, set or delete"]
        }
    }
}
