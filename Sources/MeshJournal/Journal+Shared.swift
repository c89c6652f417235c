import MeshCore

/// The shared data's history (`mesh_shared`, audited through the view `mesh_shared_data`): every version a node
/// accepted. Node-only (`package`).
extension Journal {
    /// Journals accepted versions and returns once they are committed (a local write: journal first, then gossip).
    package func appendShared(_ records: [SharedEntry]) async throws {
        guard !records.isEmpty else { return }
        try await writer.submit(savepoint: records.count > 1) { context in try Self.insertShared(records, context: context) }
    }

    /// Journals versions gossiped by other nodes without waiting (a crash before the commit loses nothing the
    /// cluster does not gossip again).
    package func postShared(_ records: [SharedEntry]) {
        guard !records.isEmpty else { return }
        writer.post(inTransaction: true, "shared data") { context in try Self.insertShared(records, context: context) }
    }

    private static func insertShared(_ records: [SharedEntry], context: WorkerContext) throws {
        let statement = try context.db.cached("""
            INSERT OR IGNORE INTO mesh_shared(key, version, writer, updated_at, deleted, value, value_json) VALUES (?, ?, ?, ?, ?, ?, ?)
            """)
        for record in records {
            try statement.bind(1, record.key)
            try statement.bind(2, Int64(bitPattern: record.version))
            try statement.bind(3, record.writer)
            try statement.bind(4, record.updatedAtMs)
            try statement.bind(5, record.value == nil ? 1 : 0)
            try statement.bind(6, blob: try record.value.map { value throws(MeshCodecError) in try MeshCodec.encode(["v": value]) })
            try statement.bind(7, record.value.map { MeshJSON.string(from: $0) })
            try statement.step()
            statement.reset()
        }
    }

    /// `t` is a later version of `s`'s key (higher version, or the same version by a greater writer): the order of
    /// `SharedEntry.supersedes`, in SQL, for the current map and for pruning superseded history.
    static let sharedSupersedes = "t.key = s.key AND (t.version > s.version OR (t.version = s.version AND t.writer > s.writer))"

    /// The current map: per key, the version with the highest (version, writer), removed keys included.
    package func loadShared() async throws -> [SharedEntry] {
        try await read { db in
            let statement = try db.prepare("""
                SELECT key, version, writer, updated_at, deleted, value FROM mesh_shared s
                WHERE NOT EXISTS (SELECT 1 FROM mesh_shared t WHERE \(Self.sharedSupersedes))
                """)
            var records: [SharedEntry] = []
            while try statement.step() {
                let deleted = statement.int(4) != 0
                let value = deleted ? nil : (try? MeshCodec.decode(statement.blob(5)))?["v"]
                if !deleted && value == nil { continue }  // undecodable: the gossip brings it again
                records.append(SharedEntry(key: statement.text(0), value: value, version: UInt64(bitPattern: statement.int64(1)),
                                           writer: statement.text(2), updatedAtMs: statement.int64(3)))
            }
            return records
        }
    }
}
