import CSQLite

/// What a job sees on a worker thread: the connection, and for the writer the state that must follow the
/// transaction's fate (the outbound sequence counter, the origin-id cache and the invocation-id reservation roll
/// back with it).
///
/// Confined to its worker thread, hence not `Sendable`.
package final class WorkerContext {
    package let db: SQLiteConnection
    /// The highest outbound sequence assigned, including in the open transaction.
    var lastOutSeq: Int64
    /// The highest outbound sequence committed (a rollback returns to it). Not written to `mesh_node` at each
    /// commit: a trigger records it when rows are deleted, and opening reads the highest one present.
    private var committedLastOutSeq: Int64
    /// The highest inbound row id handed out. Never moves back (an id a rolled-back job took is skipped), and opening
    /// starts above every id ever used (`mesh_node.last_in_id`, schema v13): an inbound id is never used twice.
    var lastInboundID: Int64
    /// mesh_peer.id by node id, for origins seen; cleared on rollback since rows may have been undone.
    var originIDs: [String: Int64] = [:]
    let storesPayloadJSON: Bool
    /// A transaction of deferrable writes only (posted statuses, invocation records, acknowledgement marks: writes
    /// nobody waits on) commits without a sync of its own; the thread that grows the WAL ahead syncs its frames
    /// within ``relaxedSyncWithinMicroseconds`` unless the next awaited commit's sync covers them first
    /// (``SQLiteConnection/syncWALSoon(withinMicroseconds:)``). Set for `.full` durability when that thread runs;
    /// with `.normal` no commit syncs anyway.
    var relaxesDeferrableCommits = false
    /// How long the frames of such a commit may wait for the next awaited commit's sync before that thread syncs
    /// them itself: long enough that, while messages flow, its sync does not run beside a commit's (two syncs of one
    /// file queue behind each other), short enough to bound what a power loss can take of them. Settable for tests.
    var relaxedSyncWithinMicroseconds: Int64 = 10_000
    /// The connection runs at `synchronous = NORMAL` for such a transaction (FULL otherwise).
    private var synchronousRelaxed = false
    /// Kept alive for the writer connection's WAL hook.
    var checkpointScheduler: CheckpointScheduler?

    /// The highest invocation id handed out (both forms, see migration 0009). Never moves back: an id a
    /// rolled-back job took is skipped, not reused.
    private var lastInvocationID: Int64
    /// The highest id the writer may hand out without recording a higher `mesh_node.invocation_reserved` first:
    /// one recorded in a committed transaction or earlier in the open one. 0 after a rollback, which may have
    /// undone the record.
    private var reservedInvocationID: Int64

    /// How many invocation ids one record of `mesh_node.invocation_reserved` covers.
    static let invocationIDBlock: Int64 = 1024

    init(db: SQLiteConnection, lastOutSeq: Int64, lastInboundID: Int64 = 0, invocationIDs: (last: Int64, reserved: Int64) = (0, 0),
         storesPayloadJSON: Bool) {
        self.db = db
        self.lastInboundID = lastInboundID
        self.lastOutSeq = lastOutSeq
        self.committedLastOutSeq = lastOutSeq
        self.lastInvocationID = invocationIDs.last
        self.reservedInvocationID = invocationIDs.reserved
        self.storesPayloadJSON = storesPayloadJSON
    }

    func committed() { committedLastOutSeq = lastOutSeq }

    /// Sets the connection's `synchronous` for the next transaction: NORMAL if `relaxed` (a commit without a sync),
    /// FULL otherwise; outside a transaction. Relaxes only a context that ``relaxesDeferrableCommits`` (others stay
    /// as opened). A failure to relax leaves it FULL (and returns normally); a failure to restore FULL throws, and
    /// the transaction must not run.
    func prepareSynchronous(relaxed: Bool) throws(SQLiteError) {
        guard relaxed != synchronousRelaxed else { return }
        if relaxed {
            guard relaxesDeferrableCommits, (try? db.executeCached("PRAGMA synchronous = NORMAL")) != nil else { return }
        } else {
            try db.executeCached("PRAGMA synchronous = FULL")
        }
        synchronousRelaxed = relaxed
    }

    func rolledBack() {
        lastOutSeq = committedLastOutSeq
        originIDs.removeAll()
        reservedInvocationID = 0
    }

    /// A job's savepoint was rolled back: a reservation it recorded is gone, and so is any origin row it inserted
    /// (a cached id for it would make the batch's next message from that origin fail its foreign key).
    func jobRolledBack() {
        reservedInvocationID = 0
        originIDs.removeAll()
    }

    /// The next invocation id, for a row written in the open transaction. Records a new reservation in that
    /// transaction when the current one is used up, so every committed id is at most the committed reservation
    /// and a restart (which starts above it) never hands out an id again.
    func nextInvocationID() throws -> Int64 {
        lastInvocationID += 1
        if lastInvocationID > reservedInvocationID {
            let reserved = lastInvocationID + Self.invocationIDBlock - 1
            let statement = try db.cached("UPDATE mesh_node SET invocation_reserved = ? WHERE singleton = 1")
            try statement.bind(1, reserved)
            try statement.step()
            reservedInvocationID = reserved
        }
        return lastInvocationID
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
