import MeshCore

/// One key of the cluster's shared data (Diarkis `SetSharedData` / `GetSharedData`): its value, or none once
/// removed (a tombstone, kept so the removal wins over older writes everywhere), and the version that orders it.
///
/// Every node converges to the same entry per key: of two entries, the one with the higher ``version`` wins, and
/// of two with the same version (concurrent writes on two nodes) the one whose ``writer`` node id is greater —
/// deterministic, whatever order the gossip arrives in.
public struct SharedEntry: Sendable, Hashable {
    /// The key.
    public let key: String
    /// The value, or `nil` for a removed key.
    public let value: MeshValue?
    /// 1 for the first write of the key, one more for each write after it (on whichever node).
    public let version: UInt64
    /// The node id of the node that wrote this version.
    public let writer: String
    /// When the writer wrote it, Unix milliseconds (the writer's clock; informational, never used to order).
    public let updatedAtMs: Int64

    /// Creates an entry (a node's `setShared` makes them; tests and tools may too).
    public init(key: String, value: MeshValue?, version: UInt64, writer: String, updatedAtMs: Int64) {
        self.key = key
        self.value = value
        self.version = version
        self.writer = writer
        self.updatedAtMs = updatedAtMs
    }

    /// Whether the key is removed.
    public var isRemoved: Bool { value == nil }

    /// Whether this entry wins over `other` (same key): higher version, then greater writer id.
    public func supersedes(_ other: SharedEntry) -> Bool {
        (version, writer) > (other.version, other.writer)
    }
}
