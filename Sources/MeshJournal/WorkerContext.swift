import CSQLite

/// What a job sees on a worker thread: the connection, and for the writer the state that must follow the
/// transaction's fate (the outbound sequence counter and its reservation, the origin-id cache and the invocation-id
/// reservation roll back with it).
///
/// Confined to its worker thread, hence not `Sendable`.
package final class WorkerContext {
    package let db: SQLiteConnection
    /// The highest outbound sequence assigned, including in the open transaction.
    var lastOutSeq: Int64
    /// The highest outbound sequence committed (a rollback returns to it). Not written to `mesh_node` at each
    /// commit: a trigger records it when rows are deleted, and opening reads the highest one present.
    private var committedLastOutSeq: Int64
    /// The highest outbound sequence the writer may hand out: `mesh_node.out_seq_reserved` (schema v14) as recorded
    /// by a synced commit, or earlier in the open transaction if that one's commit syncs. A power loss may take
    /// back the commits that used sequences below it, never the record itself, and a start continues above it:
    /// no sequence a peer may have received is handed out again.
    private var reservedOutSeq: Int64
    /// The reservation as of the last commit: a rollback returns to it, and so does a job's rolled-back savepoint,
    /// which may have undone a record (a reservation recorded later in the transaction is then recorded again).
    private var committedReservedOutSeq: Int64
    /// Every awaited commit is synced (`.full` durability): a reservation is recorded in the transaction that
    /// reaches it. With `.normal`, a transaction is synced for it only when the reservation runs low.
    let syncsCommits: Bool
    /// The open transaction's commit is synced: set by the writer before its jobs run.
    var commitSyncs = false
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
    /// The connection runs at `synchronous = FULL` under `.normal` for a transaction recording a sequence reservation.
    private var synchronousForced = false
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
    /// How far above the last sequence handed out a record of `mesh_node.out_seq_reserved` reaches
    /// (``JournalConfiguration/outSeqReservation``). A transaction that starts with less than half of it left is
    /// synced and records a new one, so one commit in about half of it is synced for it under `.normal`, and a
    /// transaction that is not synced may hand out half of it.
    let outSeqReservation: Int64

    init(db: SQLiteConnection, lastOutSeq: Int64, reservedOutSeq: Int64 = 0, lastInboundID: Int64 = 0,
         invocationIDs: (last: Int64, reserved: Int64) = (0, 0), storesPayloadJSON: Bool, syncsCommits: Bool = false,
         outSeqReservation: Int64 = JournalConfiguration().outSeqReservation) {
        self.outSeqReservation = outSeqReservation
        self.db = db
        self.lastInboundID = lastInboundID
        self.lastOutSeq = lastOutSeq
        self.committedLastOutSeq = lastOutSeq
        self.reservedOutSeq = reservedOutSeq
        self.committedReservedOutSeq = reservedOutSeq
        self.syncsCommits = syncsCommits
        self.lastInvocationID = invocationIDs.last
        self.reservedInvocationID = invocationIDs.reserved
        self.storesPayloadJSON = storesPayloadJSON
    }

    func committed() {
        committedLastOutSeq = lastOutSeq
        committedReservedOutSeq = reservedOutSeq
    }

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
        reservedOutSeq = committedReservedOutSeq
        originIDs.removeAll()
        reservedInvocationID = 0
    }

    /// A job's savepoint was rolled back: a reservation it recorded is gone, and so is any origin row it inserted
    /// (a cached id for it would make the batch's next message from that origin fail its foreign key).
    func jobRolledBack() {
        reservedInvocationID = 0
        reservedOutSeq = committedReservedOutSeq
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

    /// The next transaction must be synced and record a new sequence reservation: less than half of one is left.
    var needsOutSeqReservation: Bool { reservedOutSeq - lastOutSeq < outSeqReservation / 2 }

    /// Records a sequence reservation above the last sequence handed out, in the open transaction (whose commit
    /// must be synced). Before the transaction's jobs run.
    func reserveOutSeqs() throws {
        try recordOutSeqReservation(lastOutSeq + outSeqReservation)
    }

    /// The sequence for the next outbound row of the open transaction (``lastOutSeq`` moves when the row is
    /// written). Past the reservation, a transaction whose commit is synced records a new one; in one that is not
    /// (more than half a reservation of messages in one group commit) the job stops with
    /// ``OutSeqReservationNeeded``, and the writer runs it again in a transaction that records one.
    func nextOutSeq() throws -> Int64 {
        let seq = lastOutSeq + 1
        if seq > reservedOutSeq {
            guard commitSyncs else { throw OutSeqReservationNeeded() }
            try recordOutSeqReservation(lastOutSeq + outSeqReservation)
        }
        return seq
    }

    private func recordOutSeqReservation(_ reserved: Int64) throws {
        let statement = try db.cached("UPDATE mesh_node SET out_seq_reserved = ? WHERE singleton = 1")
        try statement.bind(1, reserved)
        try statement.step()
        reservedOutSeq = reserved
    }

    /// At a clean close (the writer's jobs are done): records the last sequence handed out as the reservation, so
    /// that the next start continues right after it instead of above the rest of the reservation. Needs no sync: a
    /// power loss leaves a prefix of the WAL's commits, and one holding this commit holds every commit before it.
    /// Nothing for a reader's context (it hands out none), nor if the write fails (the next start skips the rest).
    private func releaseOutSeqReservation() {
        guard reservedOutSeq > lastOutSeq, db.isAutocommit else { return }
        try? recordOutSeqReservation(lastOutSeq)
    }

    /// Makes the next transaction's commit synced although the durability is `.normal` (a sequence reservation),
    /// or returns to NORMAL; outside a transaction. No-op under `.full`, whose awaited commits are synced anyway.
    func forceSynchronous(_ force: Bool) throws(SQLiteError) {
        guard !syncsCommits, force != synchronousForced else { return }
        try db.executeCached(force ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL")
        synchronousForced = force
    }

    /// Closes the connection on the worker thread, before the worker reports that it exited: whoever awaited
    /// the close finds no descriptor of the journal open.
    func close() {
        releaseOutSeqReservation()
        if checkpointScheduler != nil { sqlite3_wal_hook(db.handle, nil, nil) }
        db.close()
    }
}

@available(*, unavailable)
extension WorkerContext: Sendable {}

/// A job reached the end of the outbound sequences reserved, in a transaction whose commit is not synced
/// (``WorkerContext/nextOutSeq()``): the writer undoes it and runs it again in one that records a new reservation.
/// Never reaches a caller from a group commit.
struct OutSeqReservationNeeded: Error, CustomStringConvertible {
    var description: String { "the outbound sequences reserved ran out in a transaction that is not synced" }
}
