/// How a ``Journal`` is opened and how its writer batches work.
public struct JournalConfiguration: Sendable, Hashable {
    /// What a commit survives.
    public enum Durability: String, Sendable, Hashable, CaseIterable {
        /// `synchronous=NORMAL` in WAL mode (the default). A committed message survives a crash or SIGKILL of
        /// the process; the last transactions before a power loss or kernel crash may be lost (never corrupted).
        case normal
        /// `synchronous=FULL`: every commit is fsynced to the WAL before it is reported, so a committed message
        /// also survives power loss. Costs one fsync per group commit. With ``JournalConfiguration/batchesWALWrites``,
        /// the zeros that keep the WAL file ahead of its log are synced too, so those fsyncs overwrite blocks the
        /// file has instead of also recording its growth; and a transaction of deferrable writes only (see
        /// ``JournalConfiguration/deferredCommitMicroseconds``: nobody waits on it) commits without an fsync of its
        /// own, the thread that grows the WAL syncing it within 10 ms unless the next awaited commit's fsync covered
        /// it first — a power loss in between loses only such bookkeeping (a handler runs again, a message is resent
        /// and dropped as a duplicate), and the writer never stalls in an fsync nobody waits on.
        case full
    }

    /// What a commit survives. Default ``Durability/normal``.
    public var durability: Durability
    /// How long a connection waits for a lock held by another process (for example an operator's `sqlite3`
    /// shell holding a write transaction) before failing with SQLITE_BUSY. Default 5000 ms.
    public var busyTimeoutMilliseconds: Int32
    /// Most jobs gathered into one group-commit transaction. Default 1000.
    public var maxBatchSize: Int
    /// How long the writer may wait for more work before committing a batch smaller than ``maxBatchSize``.
    /// Default 0: commit whatever queued while the previous commit ran (adds no latency; batches grow by
    /// themselves under load).
    public var maxBatchDelayMicroseconds: Int
    /// Whether each message's JSON rendering is stored in `payload_json` (for `json_extract` in audits).
    /// Default `true`. Turning it off saves roughly the payload's size again per row; `payload_json` is then NULL.
    public var storesPayloadJSON: Bool
    /// Whether opening may create a new journal file. Tools that only inspect set this to `false`.
    public var createIfMissing: Bool
    /// SQLite page cache per connection, in KiB. Default 8192 (8 MiB).
    public var cacheSizeKiB: Int
    /// The page size of a journal created by this open, in bytes (a power of two, 512...65536); an existing
    /// journal keeps the size it was created with. Default 8192: a 1 KiB message with its JSON rendering is a
    /// row of about 2.4 KB, which 4 KiB pages hold one at a time (40 % of each page wasted, and a page written
    /// per message) and 8 KiB pages three at a time. Measured with `mesh bench` (1 KiB, two processes): one-way
    /// throughput +20–40 %, request latency +5 %; 16 KiB pages gained little more throughput and cost 15 %
    /// of latency, because every commit writes whole pages.
    public var pageSize: Int
    /// WAL size (in pages) after which background connections checkpoint it, off the writer's path: a pass each
    /// time the WAL grew by a sixteenth of this (at most 256 pages) on a thread of lower priority, and a pass after
    /// every commit, at the normal priority, once those fell behind by a quarter of the room up to
    /// ``walLimitPages`` and in its last eighth. Default 4000 pages (32 MiB with the default page size). SQLite's
    /// own threshold is 1000; a checkpoint stalls commits running beside it, and the pages a journal rewrites at
    /// every commit (the right edges of its B-trees) are copied once per pass, so fewer, larger passes write less.
    public var checkpointPages: Int
    /// WAL size (in pages) at which the writer checkpoints inline because the background checkpoints did not
    /// keep up. Bounds the WAL. A WAL written without pause starts over only this way (SQLite restarts it at a
    /// write that finds it wholly checkpointed). Default 8000 pages (64 MiB with the default page size).
    public var walLimitPages: Int
    /// How long the idle writer thread polls for the next job before sleeping, in microseconds. Polling saves
    /// the sleep/wake-up latency on request/response paths at the cost of that much CPU per idle period.
    /// Default 50; 0 sleeps at once.
    public var idleSpinMicroseconds: Int
    /// How long the writer holds back a transaction that would carry only deferrable writes (posted
    /// invocation records, message statuses, acknowledgement marks — writes nobody waits on), in microseconds,
    /// hoping an awaited write (a message being journaled) arrives to share its commit. An awaited write ends
    /// the wait at once. Cuts one commit from the critical path of a request/response exchange. Such writes
    /// are at most this much later in the WAL (with `.full`, fsynced within 10 ms more: see ``Durability/full``); a
    /// crash in between means a handler may run again (at-least-once).
    /// Default 1000; 0 commits them at once.
    public var deferredCommitMicroseconds: Int
    /// How long opening may spend on SQLite's `PRAGMA quick_check` of the journal before the first write, in
    /// milliseconds. A journal that fails it is refused (``JournalError/Code-swift.struct/corrupt``) instead of
    /// being written into; one too large to check within the budget is opened after a partial check (logged).
    /// The check reads every page: about 0.9 s per GB from the page cache and 9 s per GB from disk on the
    /// reference VM, so the default 1000 covers a journal of about 1 GB kept warm. 0 skips the check.
    public var openCheckMilliseconds: Int
    /// Whether the write connection hands each transaction's WAL frames to the kernel in one write system call
    /// (through the `mesh-wal-batch` VFS, a thin C layer over SQLite's default one) instead of two per frame
    /// (header, then page). What reaches the file, and when SQLite reports a commit, is unchanged: the frames
    /// are written inside the write of the commit frame, before SQLite makes them visible to any reader, and
    /// before any sync `.full` asks for. The VFS also keeps the WAL file about 4 MiB ahead of its log with zeros
    /// (a thread of its own, `mesh-journal-g`), so commits overwrite blocks the file has instead of growing it.
    /// Default `true`; `false` leaves the writer on SQLite's default VFS.
    public var batchesWALWrites: Bool
    /// How far above the last outbound sequence handed out the writer's reservation reaches (schema v14,
    /// ``WorkerContext``): one commit in about half of it is synced for the reservation under `.normal`, and a
    /// restart skips what is left of it. Not a setting users need; tests shorten it.
    package var outSeqReservation: Int64 = 131_072

    /// Creates a configuration; every parameter has the documented default.
    public init(
        durability: Durability = .normal,
        busyTimeoutMilliseconds: Int32 = 5000,
        maxBatchSize: Int = 1000,
        maxBatchDelayMicroseconds: Int = 0,
        storesPayloadJSON: Bool = true,
        createIfMissing: Bool = true,
        cacheSizeKiB: Int = 8192,
        pageSize: Int = 8192,
        checkpointPages: Int = 4000,
        walLimitPages: Int = 8000,
        idleSpinMicroseconds: Int = 50,
        deferredCommitMicroseconds: Int = 1000,
        openCheckMilliseconds: Int = 1000,
        batchesWALWrites: Bool = true
    ) {
        self.openCheckMilliseconds = openCheckMilliseconds
        self.batchesWALWrites = batchesWALWrites
        self.durability = durability
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
        self.maxBatchSize = maxBatchSize
        self.maxBatchDelayMicroseconds = maxBatchDelayMicroseconds
        self.storesPayloadJSON = storesPayloadJSON
        self.createIfMissing = createIfMissing
        self.cacheSizeKiB = cacheSizeKiB
        self.pageSize = pageSize
        self.checkpointPages = checkpointPages
        self.walLimitPages = walLimitPages
        self.idleSpinMicroseconds = idleSpinMicroseconds
        self.deferredCommitMicroseconds = deferredCommitMicroseconds
    }

    /// Checks every setting, so a bad value fails at open with a message naming it.
    public func validate() throws(JournalError) {
        guard busyTimeoutMilliseconds >= 0 else {
            throw JournalError(.invalidConfiguration, "busyTimeoutMilliseconds must be ≥ 0 (got \(busyTimeoutMilliseconds))")
        }
        guard (1...100_000).contains(maxBatchSize) else {
            throw JournalError(.invalidConfiguration, "maxBatchSize must be in 1...100000 (got \(maxBatchSize))")
        }
        guard (0...1_000_000).contains(maxBatchDelayMicroseconds) else {
            throw JournalError(.invalidConfiguration, "maxBatchDelayMicroseconds must be in 0...1000000 (got \(maxBatchDelayMicroseconds))")
        }
        guard checkpointPages >= 1, walLimitPages > checkpointPages, walLimitPages <= Int(Int32.max) else {
            throw JournalError(.invalidConfiguration,
                "need 1 ≤ checkpointPages < walLimitPages (got \(checkpointPages) and \(walLimitPages))")
        }
        guard (0...10_000).contains(idleSpinMicroseconds) else {
            throw JournalError(.invalidConfiguration, "idleSpinMicroseconds must be 0...10000 (got \(idleSpinMicroseconds))")
        }
        guard (0...60_000_000).contains(deferredCommitMicroseconds) else {
            throw JournalError(.invalidConfiguration,
                "deferredCommitMicroseconds must be 0...60000000 (got \(deferredCommitMicroseconds))")
        }
        guard (512...65536).contains(pageSize), pageSize & (pageSize - 1) == 0 else {
            throw JournalError(.invalidConfiguration, "pageSize must be a power of two in 512...65536 (got \(pageSize))")
        }
        guard (0...3_600_000).contains(openCheckMilliseconds) else {
            throw JournalError(.invalidConfiguration, "openCheckMilliseconds must be 0...3600000 (got \(openCheckMilliseconds))")
        }
        guard outSeqReservation >= 2 else {
            throw JournalError(.invalidConfiguration, "outSeqReservation must be ≥ 2 (got \(outSeqReservation))")
        }
        guard cacheSizeKiB >= 0 else {
            throw JournalError(.invalidConfiguration, "cacheSizeKiB must be ≥ 0 (got \(cacheSizeKiB))")
        }
    }
}
