import CSQLite

/// What a job sees on a worker thread: the connection, and for the writer the state that must follow the
/// transaction's fate (the outbound sequence counter and the origin-id cache roll back with it).
///
/// Confined to its worker thread, hence not `Sendable`.
package final class WorkerContext {
    package let db: SQLiteConnection
    /// The highest outbound sequence assigned, including in the open transaction.
    var lastOutSeq: Int64
    /// The highest outbound sequence committed (a rollback returns to it). Not written to `mesh_node` at each
    /// commit: a trigger records it when rows are deleted, and opening reads the highest one present.
    private var committedLastOutSeq: Int64
    /// mesh_peer.id by node id, for origins seen; cleared on rollback since rows may have been undone.
    var originIDs: [String: Int64] = [:]
    let storesPayloadJSON: Bool
    /// Kept alive for the writer connection's WAL hook.
    var checkpointScheduler: CheckpointScheduler?

    init(db: SQLiteConnection, lastOutSeq: Int64, storesPayloadJSON: Bool) {
        self.db = db
        self.lastOutSeq = lastOutSeq
        self.committedLastOutSeq = lastOutSeq
        self.storesPayloadJSON = storesPayloadJSON
    }

    func committed() { committedLastOutSeq = lastOutSeq }

    func rolledBack() {
        lastOutSeq = committedLastOutSeq
        originIDs.removeAll()
    }

    /// Closes the connection on the worker thread, before the worker reports that it exited: whoever awaited
    /// the close finds no descriptor of the journal open.
    func close() {
        if checkpointScheduler != nil { sqlite3_wal_hook(db.handle, nil, nil) }
        db.close()
    }
}

@available(*, unavailable)
extension WorkerContext: Sendable {}
