import CMeshWALBatch
import CSQLite
import MeshFailpoints
#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// Keeps WAL checkpoints off the writer's commit path.
///
/// SQLite's automatic checkpoint runs inside the COMMIT that crosses the threshold, so the single writer
/// stalls on checkpoint I/O. Instead the writer connection has `wal_autocheckpoint = 0` and a WAL hook that
/// decides after each commit (``Limits/decide(walPages:lastPosted:backfilled:)``):
/// - from ``Limits/backgroundPages`` on, a PASSIVE checkpoint is posted to a connection of its own on the
///   background checkpointer's thread (`mesh-journal-c`), which runs concurrently with further writes; the next
///   one once the WAL grew by ``Limits/stepPages`` more. That thread runs at a lower priority
///   (``lowerCurrentThreadPriority()``): it leaves most of a contended core to the node's thread and to the peer
///   it wakes (a node's thread asks for a short scheduler slice, which lets it in soon after it wakes).
/// - once those passes fall behind by ``Limits/urgentLagPages`` (every core busy), and from ``Limits/catchUpPages``
///   on, passes follow every commit on a second checkpointer at the normal priority (`mesh-journal-u`).
/// - at ``Limits/hardPages`` the writer runs a RESTART checkpoint inline, waiting up to the busy timeout for
///   readers, so the WAL stays bounded (a reader holding a snapshot longer than that can still delay it). A WAL
///   that is written without pause only starts over this way (SQLite restarts it at a write that finds it wholly
///   checkpointed, which a pass with its two `fdatasync` rarely finishes between two commits); the passes at
///   ``Limits/catchUpPages`` leave little for that inline checkpoint to copy.
final class CheckpointScheduler: Sendable {
    struct Limits: Sendable {
        var backgroundPages: Int32
        var hardPages: Int32

        /// How much the WAL grows between two background checkpoints: 256 pages, or a sixteenth of
        /// ``backgroundPages`` when that is smaller. A pass per commit copied the pages every commit rewrites (the
        /// right edges of the B-trees) into the database again at every commit, with two `fdatasync` each; larger
        /// passes copy each such page once for many commits.
        var stepPages: Int32 { min(256, max(1, backgroundPages / 16)) }

        /// How far the background passes may fall behind the WAL (pages not yet checkpointed) before passes follow
        /// every commit, at the normal priority: a quarter of the room between ``backgroundPages`` and
        /// ``hardPages``, and at least two steps.
        var urgentLagPages: Int32 { max(2 * stepPages, (hardPages - backgroundPages) / 4) }

        /// Where passes follow every commit again (at the normal priority), so that little is left for the inline
        /// checkpoint at ``hardPages``: the last eighth of the room between ``backgroundPages`` and ``hardPages``.
        var catchUpPages: Int32 { hardPages - max(1, (hardPages - backgroundPages) / 8) }

        /// What the WAL hook does after a commit.
        enum Decision: Equatable {
            /// Nothing: the WAL is below the background threshold, or grew less than a step since the last pass.
            case none
            /// Post a PASSIVE checkpoint to the low-priority checkpointer (unless a pass is pending).
            case background
            /// Post a PASSIVE checkpoint to the normal-priority checkpointer (unless one is pending there).
            case urgent
            /// Checkpoint inline (RESTART): the WAL reached its bound.
            case inline
        }

        /// The decision for a WAL of `walPages` pages, when the last pass was posted at `lastPosted` pages (0:
        /// none since the WAL last started over) and the passes had checkpointed it up to `backfilled` pages (0:
        /// none since it started over). Passes start at ``backgroundPages``: the pages before count as behind only
        /// once a pass should have copied them.
        func decide(walPages: Int32, lastPosted: Int32, backfilled: Int32) -> Decision {
            if walPages >= hardPages { return .inline }
            guard walPages >= backgroundPages else { return .none }
            if walPages >= catchUpPages || walPages - max(backfilled, backgroundPages) >= urgentLagPages { return .urgent }
            return lastPosted == 0 || walPages - lastPosted >= stepPages ? .background : .none
        }
    }

    let limits: Limits
    /// The low-priority checkpointer (`mesh-journal-c`) and the normal-priority one (`mesh-journal-u`).
    private let checkpointer: SQLiteWorker
    private let urgentCheckpointer: SQLiteWorker
    /// A pass is posted to that checkpointer and has not finished.
    private let pending = Atomic<Bool>(false)
    private let pendingUrgent = Atomic<Bool>(false)
    /// How far the last pass that ran checkpointed the WAL, in pages (set by the checkpointers).
    private let backfilled = Atomic<Int32>(0)
    private let counters = Mutex((background: 0, inline: 0))
    /// The writer's view of the WAL, updated by the WAL hook on the writer thread (a lock for `Sendable`): frames
    /// written by commits (``walFrames``), its size after the last commit, and its size when the last pass was
    /// posted (0: none since it started over), in pages.
    private let wal = Mutex((written: 0, last: Int32(0), lastPosted: Int32(0)))

    init(limits: Limits, checkpointer: SQLiteWorker, urgentCheckpointer: SQLiteWorker) {
        self.limits = limits
        self.checkpointer = checkpointer
        self.urgentCheckpointer = urgentCheckpointer
    }

    /// Checkpoints run so far: in the background, and inline on the writer because the WAL hit the hard limit (an
    /// attempt that found the background checkpoint running, and so did nothing, is not counted).
    var statistics: (background: Int, inline: Int) { counters.withLock { $0 } }

    /// WAL frames (pages) written by the writer's commits since open: each page a transaction dirtied, once per
    /// commit; a checkpoint later copies it into the database file.
    var walFrames: Int { wal.withLock { $0.written } }

    /// Called on the writer thread from the WAL hook, after each commit, with the WAL's size in pages.
    func walGrew(to pages: Int32, db: OpaquePointer) {
        let decision = wal.withLock { wal in
            // A WAL no larger than after the last commit was started over: this commit wrote all of it, and what
            // the passes did concerns the old one.
            if pages <= wal.last {
                wal.written += Int(pages)
                wal.lastPosted = 0
                backfilled.store(0, ordering: .relaxed)
            } else {
                wal.written += Int(pages - wal.last)
            }
            wal.last = pages
            return limits.decide(walPages: pages, lastPosted: wal.lastPosted, backfilled: backfilled.load(ordering: .relaxed))
        }
        switch decision {
        case .none:
            return
        case .inline:
            var log: Int32 = 0
            var done: Int32 = 0
            // RESTART waits (up to the busy timeout) for readers, so the next commit starts the WAL from its
            // beginning: backpressure instead of unbounded growth. While a background checkpoint runs it returns
            // SQLITE_BUSY at once, having done nothing; the next commit tries again.
            LatencyProbe.mark(.checkpointStart)
            defer { LatencyProbe.mark(.checkpointEnd) }
            if sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_RESTART, &log, &done) != SQLITE_BUSY {
                counters.withLock { $0.inline += 1 }
            }
        case .background:
            guard !pendingUrgent.load(ordering: .acquiring), !pending.exchange(true, ordering: .acquiringAndReleasing) else { return }
            wal.withLock { $0.lastPosted = pages }
            checkpointer.post("a background checkpoint") { [self] context in
                passivePass(context, waitingForOthers: false)
                pending.store(false, ordering: .releasing)
            }
        case .urgent:
            guard !pendingUrgent.exchange(true, ordering: .acquiringAndReleasing) else { return }
            wal.withLock { $0.lastPosted = pages }
            urgentCheckpointer.post("an urgent background checkpoint") { [self] context in
                passivePass(context, waitingForOthers: true)
                pendingUrgent.store(false, ordering: .releasing)
            }
        }
    }

    /// One PASSIVE checkpoint on a checkpointer's connection. Only one checkpoint runs at a time (SQLite returns
    /// SQLITE_BUSY to another at once, without its busy handler): `waitingForOthers`, the urgent checkpointer
    /// waits for the other's pass to end (1 ms sleeps, on its own thread, for at most a second), then runs its own.
    private func passivePass(_ context: WorkerContext, waitingForOthers: Bool) {
        var log: Int32 = 0
        var done: Int32 = 0
        var waits = 0
        LatencyProbe.mark(.checkpointStart)
        defer { LatencyProbe.mark(.checkpointEnd) }
        var rc = sqlite3_wal_checkpoint_v2(context.db.handle, nil, SQLITE_CHECKPOINT_PASSIVE, &log, &done)
        while rc == SQLITE_BUSY, waitingForOthers, waits < 1000 {
            waits += 1
            usleep(1000)
            rc = sqlite3_wal_checkpoint_v2(context.db.handle, nil, SQLITE_CHECKPOINT_PASSIVE, &log, &done)
        }
        guard rc == SQLITE_OK else { return }
        backfilled.store(done, ordering: .relaxed)
        counters.withLock { $0.background += 1 }
    }

    func close() async {
        await checkpointer.close()
        await urgentCheckpointer.close()
    }

    /// Lowers the calling thread's priority (Linux: nice 10, for this thread only; an unprivileged thread cannot
    /// raise it back, hence the second checkpointer for urgent passes). Called by the background checkpointer's
    /// thread as it starts. Best effort: a thread that cannot be lowered runs at its normal priority.
    static func lowerCurrentThreadPriority() {
        _ = mesh_thread_lower_priority()  // the WAL's grower (mesh-journal-g) runs at the same priority
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
