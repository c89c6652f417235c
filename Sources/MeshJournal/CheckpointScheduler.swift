import CSQLite
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Keeps WAL checkpoints off the writer's commit path.
///
/// SQLite's automatic checkpoint runs inside the COMMIT that crosses the threshold, so the single writer
/// stalls on checkpoint I/O. Instead the writer connection has `wal_autocheckpoint = 0` and a WAL hook: once a
/// commit leaves at least ``Limits/backgroundPages`` pages in the WAL, a PASSIVE checkpoint is posted to a
/// separate connection on its own thread (`mesh-journal-c`), which runs concurrently with further writes; the
/// next one is posted once the WAL grew by ``Limits/stepPages`` more (see ``Limits/decide(walPages:lastPosted:)``).
/// If the WAL still reaches ``Limits/hardPages`` (the background checkpoint cannot keep up, or is blocked by a
/// reader), the writer runs a RESTART checkpoint inline, waiting up to the busy timeout for the background
/// checkpoint and for readers, so the WAL stays bounded (a reader holding a snapshot longer than that can still
/// delay it).
///
/// The checkpointer's thread runs at a lower priority (``lowerCurrentThreadPriority()``): it yields a core at once
/// to the node's thread and to the peer it wakes, and still gets its share when every core is busy.
final class CheckpointScheduler: Sendable {
    struct Limits: Sendable {
        var backgroundPages: Int32
        var hardPages: Int32

        /// How much the WAL grows between two background checkpoints: 64 pages, or an eighth of
        /// ``backgroundPages`` when that is smaller. One pass per commit (as before) copied the pages every
        /// commit rewrites (the right edges of the B-trees) into the database again at every commit, with two
        /// `fdatasync` each; larger passes copy each such page once for many commits.
        var stepPages: Int32 { min(64, max(1, backgroundPages / 8)) }

        /// What the WAL hook does after a commit.
        enum Decision: Equatable {
            /// Nothing: the WAL is below the background threshold, or grew less than a step since the last pass.
            case none
            /// Post a PASSIVE checkpoint to the background connection (if none is running).
            case background
            /// Checkpoint inline (RESTART): the WAL reached its bound.
            case inline
        }

        /// The decision for a WAL of `walPages` pages, when the last background pass was posted at
        /// `lastPosted` pages (0: none since the WAL last started over; a WAL smaller than that started over).
        func decide(walPages: Int32, lastPosted: Int32) -> Decision {
            if walPages >= hardPages { return .inline }
            guard walPages >= backgroundPages else { return .none }
            let since = walPages < lastPosted ? 0 : lastPosted
            return since == 0 || walPages - since >= stepPages ? .background : .none
        }
    }

    let limits: Limits
    private let checkpointer: SQLiteWorker
    private let pending = Atomic<Bool>(false)
    private let counters = Mutex((background: 0, inline: 0))
    /// WAL frames written by commits (``walFrames``) and the WAL's size after the last commit, in pages.
    private let frames = Mutex((written: 0, last: Int32(0)))
    /// The WAL's size when the last background pass was posted (writer thread only, under the lock for `Sendable`).
    private let lastPosted = Mutex(Int32(0))

    init(limits: Limits, checkpointer: SQLiteWorker) {
        self.limits = limits
        self.checkpointer = checkpointer
    }

    /// Checkpoints run so far: in the background, and inline on the writer because the WAL hit the hard limit.
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
        let decision = lastPosted.withLock { limits.decide(walPages: pages, lastPosted: $0) }
        if decision == .inline {
            var log: Int32 = 0
            var done: Int32 = 0
            // RESTART waits (up to the busy timeout) for a running background checkpoint and for readers, so
            // the next commit starts the WAL from its beginning: backpressure instead of unbounded growth.
            sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_RESTART, &log, &done)
            counters.withLock { $0.inline += 1 }
            return
        }
        guard decision == .background, !pending.exchange(true, ordering: .acquiringAndReleasing) else { return }
        lastPosted.withLock { $0 = pages }
        checkpointer.post("a background checkpoint") { [self] context in
            var log: Int32 = 0
            var done: Int32 = 0
            sqlite3_wal_checkpoint_v2(context.db.handle, nil, SQLITE_CHECKPOINT_PASSIVE, &log, &done)
            counters.withLock { $0.background += 1 }
            pending.store(false, ordering: .releasing)
        }
    }

    func close() async { await checkpointer.close() }

    /// Lowers the calling thread's priority (Linux: nice 10, for this thread only) — called by the checkpointer's
    /// thread as it starts. Best effort: a thread that cannot be lowered runs at its normal priority.
    static func lowerCurrentThreadPriority() {
        #if canImport(Glibc)
        _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 10)
        #endif
    }

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
