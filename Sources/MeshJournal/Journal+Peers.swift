/// A cluster member as persisted in `mesh_peer`, so a restarted node can rejoin without seeds.
public struct PeerRecord: Sendable, Hashable {
    /// The member's node id (32 hex digits).
    public var nodeID: String
    /// Its mesh address, `host:port`.
    public var address: String
    /// Its declared type.
    public var nodeType: String
    /// Its declared role.
    public var nodeRole: String
    /// Its declared status (1 online, 2 offline, 3 taken).
    public var status: Int
    /// Its incarnation (orders its announcements).
    public var incarnation: UInt64
    /// Its published values, MeshCodec-encoded.
    public var values: [UInt8]
    /// When it was last heard from (Unix ms); set by ``Journal/savePeers(_:)`` when `nil`.
    public var lastSeenMs: Int64?

    /// Creates a record.
    public init(nodeID: String, address: String, nodeType: String, nodeRole: String, status: Int, incarnation: UInt64,
                values: [UInt8], lastSeenMs: Int64? = nil) {
        self.nodeID = nodeID
        self.address = address
        self.nodeType = nodeType
        self.nodeRole = nodeRole
        self.status = status
        self.incarnation = incarnation
        self.values = values
        self.lastSeenMs = lastSeenMs
    }
}

extension Journal {
    /// Inserts or updates members in `mesh_peer` (one job, all or none). Rows created earlier for the origin
    /// of inbound messages keep their id, so message history stays linked.
    public func savePeers(_ peers: [PeerRecord]) async throws {
        guard !peers.isEmpty else { return }
        for peer in peers where !Self.isValidNodeID(peer.nodeID) {
            throw JournalError(.invalidArgument, "peer node id \"\(peer.nodeID)\" is not 32 lowercase hex digits")
        }
        let now = WallClock.nowMs()
        try await writer.submit(savepoint: peers.count > 1) { context in
            let statement = try context.db.cached("""
                INSERT INTO mesh_peer(node_id, address, node_type, node_role, status, incarnation, node_values, first_seen, last_seen)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(node_id) DO UPDATE SET address = excluded.address, node_type = excluded.node_type,
                    node_role = excluded.node_role, status = excluded.status, incarnation = excluded.incarnation,
                    node_values = excluded.node_values, last_seen = excluded.last_seen
                """)
            for peer in peers {
                try statement.bind(1, peer.nodeID)
                try statement.bind(2, peer.address)
                try statement.bind(3, peer.nodeType)
                try statement.bind(4, peer.nodeRole)
                try statement.bind(5, peer.status)
                try statement.bind(6, Int64(bitPattern: peer.incarnation))
                try statement.bind(7, blob: peer.values)
                try statement.bind(8, now)
                try statement.bind(9, peer.lastSeenMs ?? now)
                try statement.step()
                statement.reset()
            }
        }
    }

    /// Members with a known address heard from within `maxAgeMs`, most recently seen first.
    public func knownPeers(maxAgeMs: Int64) async throws -> [PeerRecord] {
        let since = WallClock.nowMs() - maxAgeMs
        return try await read { db in
            let statement = try db.cached("""
                SELECT node_id, address, coalesce(node_type, ''), coalesce(node_role, ''), status, incarnation,
                       coalesce(node_values, x''), last_seen
                FROM mesh_peer WHERE address IS NOT NULL AND last_seen >= ? ORDER BY last_seen DESC
                """)
            try statement.bind(1, since)
            var rows: [PeerRecord] = []
            while try statement.step() {
                rows.append(PeerRecord(
                    nodeID: statement.text(0), address: statement.text(1), nodeType: statement.text(2), nodeRole: statement.text(3),
                    status: statement.int(4), incarnation: UInt64(bitPattern: statement.int64(5)), values: statement.blob(6),
                    lastSeenMs: statement.int64(7)))
            }
            return rows
        }
    }
}
