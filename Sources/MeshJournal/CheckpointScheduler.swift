import CSQLite
import Synchronization

/// Keeps WAL checkpoints off the writer's commit path.
///
/// SQLite's automatic checkpoint runs inside the COMMIT that crosses the threshold, so the single writer
/// stalls on checkpoint I/O. Instead the writer connection has `wal_autocheckpoint = 0` and a WAL hook: after
/// a commit that leaves at least ``Limits/backgroundPages`` pages in the WAL, a PASSIVE checkpoint is posted to
/// a separate connection on its own thread, which runs concurrently with further writes. If the WAL still
/// reaches ``Limits/hardPages`` (the background checkpoint cannot keep up, or is blocked by a reader), the
/// writer runs a RESTART checkpoint inline, waiting up to the busy timeout for the background checkpoint and
/// for readers, so the WAL stays bounded (a reader holding a snapshot longer than that can still delay it).
final class CheckpointScheduler: Sendable {
    struct Limits: Sendable {
        var backgroundPages: Int32
        var hardPages: Int32
    }

    let limits: Limits
    private let checkpointer: SQLiteWorker
    private let pending = Atomic<Bool>(false)
    private let counters = Mutex((background: 0, inline: 0))
    /// WAL frames written by commits (``walFrames``) and the WAL's size after the last commit, in pages.
    private let frames = Mutex((written: 0, last: Int32(0)))

    init(limits: Limits, checkpointer: SQLiteWorker) {
        self.limits = limits
        self.checkpointer = checkpointer
    }

    /// Checkpoints run so far: in the background, and inline on the writer because the WAL hit the hard limit (an
    /// attempt that found the background checkpoint running, and so did nothing, is not counted).
    var statistics: (background: Int, inline: Int) { counters.withLock { $0 } }

    /// WAL frames (pages) written by the writer's commits since open: each page a transaction dirtied, once per
    /// commit; a checkpoint later copies it into the database file.
    var walFrames: Int { frames.withLock { $0.written } }

    /// Called on the writer thread from the WAL hook, after each commit, with the WAL's size in pages.
    func walGrew(to pages: Int32, db: OpaquePointer) {
        frames.withLock { frames in
            // A WAL smaller than after the last commit was restarted by a checkpoint: this commit wrote all of it.
            frames.written += Int(pages > frames.last ? pages - frames.last : pages)
            frames.last = pages
        }
        if pages >= limits.hardPages {
            var log: Int32 = 0
            var done: Int32 = 0
            // RESTART waits (up to the busy timeout) for readers, so the next commit starts the WAL from its
            // beginning: backpressure instead of unbounded growth. While the background checkpoint runs it returns
            // SQLITE_BUSY at once, having done nothing; the next commit tries again.
            if sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_RESTART, &log, &done) != SQLITE_BUSY {
                counters.withLock { $0.inline += 1 }
            }
            return
        }
        guard pages >= limits.backgroundPages else { return }
        guard !pending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        checkpointer.post("a background checkpoint") { [self] context in
            var log: Int32 = 0
            var done: Int32 = 0
            sqlite3_wal_checkpoint_v2(context.db.handle, nil, SQLITE_CHECKPOINT_PASSIVE, &log, &done)
            counters.withLock { $0.background += 1 }
            pending.store(false, ordering: .releasing)
        }
    }

    func close() async { await checkpointer.close() }

    /// Installs the WAL hook on the writer connection. The scheduler must outlive the connection; the
    /// ``WorkerContext`` keeps it alive.
    func install(on db: SQLiteConnection) throws(SQLiteError) {
        try db.execute("PRAGMA wal_autocheckpoint = 0")
        let context = Unmanaged.passUnretained(self).toOpaque()
        sqlite3_wal_hook(db.handle, { context, db, _, pages in
            guard let context, let db else { return SQLITE_OK }
            Unmanaged<CheckpointScheduler>.fromOpaque(context).takeUnretainedValue().walGrew(to: pages, db: db)
            return SQLITE_OK
        }, context)
    }
}
