#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSQLite
import Logging
import MeshCore
import MeshMigrations
import Synchronization

/// A node's SQLite journal: every outbound message is committed here before it is sent, every inbound
/// message before it is acknowledged or dispatched.
///
/// One writer thread owns the write connection and commits concurrent appends together (group commit); each
/// `async` call returns only after the transaction holding its rows committed, with the durability of
/// ``JournalConfiguration/durability``. Queries run on a separate read-only connection, and the file stays
/// readable by other processes (`sqlite3 node.sqlite`) thanks to WAL mode.
///
/// ```swift
/// let journal = try await Journal.open(path: "node.sqlite", logger: logger)
/// let seq = try await journal.appendOutbound(OutboundMessage(commandID: 1024, kind: .send,
///                                                            peer: "127.0.0.1:8001", data: ["myName": "Jon"]))
/// try await journal.markOutboundAcked([seq])
/// await journal.close()
/// ```
public final class Journal: Sendable {
    /// The journal file.
    public let path: String
    /// The node id and this open's boot epoch.
    public let identity: JournalIdentity
    /// The settings it was opened with.
    public let configuration: JournalConfiguration
    /// The migrations applied by this open (empty if the journal was up to date).
    public let appliedMigrations: [Int]

    let writer: SQLiteWorker
    private let reader: SQLiteWorker
    private let checkpoints: CheckpointScheduler
    private let logger: Logger
    /// This open's ownership of the journal, released by ``close()`` after the connections closed.
    private let lock: JournalLock
    /// Whether ``close()`` ran (it releases the lock once).
    private let closed = Atomic<Bool>(false)
    /// No outbound message below this sequence is pending: where reads of the pending ones start (schema v10 has no
    /// index of them). Only moves forward, from the readers' snapshots (``pendingFloor(_:)``): a message below a
    /// snapshot's oldest pending one is acknowledged or failed for good, and sequences are never reused.
    private let outboundPendingFloor: Atomic<Int64>
    /// No inbound message below this id is without a state row (schema v12: a received message gets one when its
    /// handlers end): where reads of the open set's stateless part start. Moves forward like
    /// ``outboundPendingFloor`` (``statelessFloor(_:)``): a state row, once written, stays until its message is deleted.
    private let inboundStatelessFloor: Atomic<Int64>
    /// The floors last recorded in `mesh_node` (schema v13), where the next open starts its walks
    /// (``persistFloors()``).
    private let recordedFloors: Mutex<(outbound: Int64, inbound: Int64)>

    private init(path: String, identity: JournalIdentity, configuration: JournalConfiguration, appliedMigrations: [Int],
                 writer: SQLiteWorker, reader: SQLiteWorker, checkpoints: CheckpointScheduler, lock: JournalLock,
                 floors: (outbound: Int64, inbound: Int64), logger: Logger) {
        self.outboundPendingFloor = Atomic(floors.outbound)
        self.inboundStatelessFloor = Atomic(floors.inbound)
        self.recordedFloors = Mutex(floors)
        self.lock = lock
        self.path = path
        self.identity = identity
        self.configuration = configuration
        self.appliedMigrations = appliedMigrations
        self.writer = writer
        self.reader = reader
        self.checkpoints = checkpoints
        self.logger = logger
    }

    /// The oldest SQLite library (as `sqlite3_libversion_number`) the journal schema works with: 3.37.0.
    public static let minimumSQLiteVersion: Int32 = 3_037_000

    /// Opens (creating if allowed) the journal at `path`, applies pending migrations, and starts a new boot
    /// epoch.
    ///
    /// Refuses, before writing anything to the file, a file that is not SQLite, an SQLite database that is
    /// not a Mesh journal, a journal from a newer Mesh, one whose applied migrations changed, a journal that
    /// another open holds (``JournalError/Code-swift.struct/inUse``: a journal has one owner, see
    /// ``JournalLock``), and one that fails SQLite's quick check (``JournalError/Code-swift.struct/corrupt``).
    /// A journal this call created is removed again if the open fails (a full disk leaves no stub behind).
    /// - Parameter writerExecutor: an executor the owner lends the writer instead of a thread of its own (a node's
    ///   own event loop, which also owns its socket: see ``JournalExecutor``); `nil` gives the writer a thread.
    /// - Throws: ``JournalError``.
    public static func open(path: String, configuration: JournalConfiguration = .init(), writerExecutor: (any JournalExecutor)? = nil,
                            logger: Logger) async throws -> Journal {
        try configuration.validate()
        // The schema uses STRICT tables (3.37) and ALTER TABLE DROP COLUMN (3.35).
        guard sqlite3_libversion_number() >= minimumSQLiteVersion else {
            throw JournalError(.invalidConfiguration,
                "SQLite \(String(cString: sqlite3_libversion())) is too old: Mesh needs 3.37.0 or newer")
        }
        let existed = access(path, F_OK) == 0
        if !existed && !configuration.createIfMissing {
            throw JournalError(.fileNotFound, "\(path) does not exist")
        }
        let lock = try await JournalLock.acquire(journalPath: path, nowMs: WallClock.nowMs(), patience: .seconds(2))
        do {
            return try await open(path: path, configuration: configuration, lock: lock, writerExecutor: writerExecutor, logger: logger)
        } catch {
            if !existed {
                // Nothing of a journal this open created is worth keeping (it failed before its first commit
                // completed, e.g. on a full disk): leave no stub that tools would then misread.
                for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
                unlink(lock.path)
            }
            lock.release()
            throw error
        }
    }

    private static func open(path: String, configuration: JournalConfiguration, lock: JournalLock,
                             writerExecutor: (any JournalExecutor)?, logger: Logger) async throws -> Journal {
        let writer = SQLiteWorker(
            name: "mesh-journal-w",
            role: .writer(maxBatchSize: configuration.maxBatchSize, maxBatchDelayMicroseconds: configuration.maxBatchDelayMicroseconds,
                          deferMicroseconds: configuration.deferredCommitMicroseconds),
            logger: logger, spinMicroseconds: configuration.idleSpinMicroseconds, executor: writerExecutor)
        struct Opened: Sendable {
            let identity: JournalIdentity
            let applied: [Int]
            let floors: (outbound: Int64, inbound: Int64)
        }
        let checkpointer = SQLiteWorker(name: "mesh-journal-c", role: .reader, logger: logger)
        let urgentCheckpointer = SQLiteWorker(name: "mesh-journal-u", role: .reader, logger: logger)
        let checkpoints = CheckpointScheduler(
            limits: .init(backgroundPages: Int32(configuration.checkpointPages), hardPages: Int32(configuration.walLimitPages)),
            checkpointer: checkpointer, urgentCheckpointer: urgentCheckpointer)
        let opened = try await writer.start { () throws -> (WorkerContext, Opened) in
            let db = try openWriteConnection(path: path, configuration: configuration, logger: logger)
            let applied = try Migrator().migrate(db, nowMs: WallClock.nowMs())
            let start = try startEpoch(db, syncing: configuration.durability == .normal, reservation: configuration.outSeqReservation)
            let identity = start.identity
            // Commits overwrite blocks the WAL file already has (a thread keeps it ahead of the log with zeros,
            // synced if commits are): appending reserves blocks and moves the file's size at every commit, and a
            // fsync of a growing file also journals both. The epoch's commit opened the WAL.
            let pageSize = Int64((try? db.scalarInt("PRAGMA page_size")) ?? 4096)
            let growing = db.growWALAhead(aheadBytes: walGrowthAheadBytes,
                                          capBytes: Int64(configuration.walLimitPages) * (pageSize + 24) + 32,
                                          syncing: configuration.durability == .full)
            let context = WorkerContext(db: db, lastOutSeq: start.lastOutSeq, reservedOutSeq: start.reservedOutSeq,
                                        lastInboundID: start.lastInboundID, invocationIDs: start.invocationIDs,
                                        storesPayloadJSON: configuration.storesPayloadJSON,
                                        syncsCommits: configuration.durability == .full,
                                        outSeqReservation: configuration.outSeqReservation)
            context.relaxesDeferrableCommits = growing && configuration.durability == .full
            do {
                try checkpoints.install(on: db)
            } catch let error as SQLiteError {
                throw JournalError(error, context: "configuring checkpoints for \(path)")
            }
            context.checkpointScheduler = checkpoints
            return (context, Opened(identity: identity, applied: applied.map(\.id), floors: start.floors))
        }
        do {
            _ = try await checkpointer.start { () throws -> (WorkerContext, Bool) in
                CheckpointScheduler.lowerCurrentThreadPriority()
                return (try auxiliaryConnection(path: path, mode: .readWrite, configuration: configuration, purpose: "checkpoint"), true)
            }
        } catch {
            await writer.close()
            throw error
        }
        do {
            _ = try await urgentCheckpointer.start {
                (try auxiliaryConnection(path: path, mode: .readWrite, configuration: configuration, purpose: "checkpoint"), true)
            }
        } catch {
            await writer.close()
            await checkpointer.close()
            throw error
        }
        let reader = SQLiteWorker(name: "mesh-journal-r", role: .reader, logger: logger)
        do {
            _ = try await reader.start {
                (try auxiliaryConnection(path: path, mode: .readOnly, configuration: configuration, purpose: "read"), true)
            }
        } catch {
            await writer.close()
            await checkpoints.close()
            throw error
        }
        if !opened.applied.isEmpty {
            logger.info("journal migrated", metadata: ["journal.path": "\(path)", "journal.migrations": "\(opened.applied)"])
        }
        logger.debug("journal opened", metadata: [
            "journal.path": "\(path)", "journal.node_id": "\(opened.identity.nodeID)",
            "journal.boot_epoch": "\(opened.identity.bootEpoch)",
        ])
        return Journal(path: path, identity: opened.identity, configuration: configuration, appliedMigrations: opened.applied,
                       writer: writer, reader: reader, checkpoints: checkpoints, lock: lock, floors: opened.floors, logger: logger)
    }

    /// Finishes queued work, closes the connections (the last one to close checkpoints the WAL and removes it)
    /// and releases the journal's lock; when it returns no descriptor of the journal is open. Later calls fail
    /// with ``JournalError/Code-swift.struct/closed``.
    public func close() async {
        await reader.close()
        await writer.close()
        await checkpoints.close()
        if !closed.exchange(true, ordering: .acquiringAndReleasing) { lock.release() }
    }

    // MARK: - Opening

    /// How far the writer's WAL file is kept ahead of its log (zero-filled, by `mesh-journal-g`).
    static let walGrowthAheadBytes: Int64 = 4 << 20

    /// A connection for the reader or the checkpointer (the writer's is ``openWriteConnection(path:configuration:)``).
    private static func auxiliaryConnection(path: String, mode: SQLiteConnection.Mode, configuration: JournalConfiguration,
                                            purpose: String) throws(JournalError) -> WorkerContext {
        do {
            let db = try SQLiteConnection(path: path, mode: mode)
            try db.execute("PRAGMA busy_timeout = \(configuration.busyTimeoutMilliseconds)")
            try db.execute("PRAGMA cache_size = -\(configuration.cacheSizeKiB)")
            return WorkerContext(db: db, lastOutSeq: 0, storesPayloadJSON: false)
        } catch {
            throw JournalError(error, context: "opening the \(purpose) connection to \(path)")
        }
    }

    private static func openWriteConnection(path: String, configuration: JournalConfiguration,
                                            logger: Logger) throws(JournalError) -> SQLiteConnection {
        let db: SQLiteConnection
        do {
            db = try SQLiteConnection(path: path, mode: configuration.createIfMissing ? .readWriteCreate : .readWrite,
                                      vfs: configuration.batchesWALWrites ? SQLiteConnection.walBatchingVFS : nil)
        } catch {
            if error.primaryCode == SQLiteError.cantOpen && !configuration.createIfMissing {
                throw JournalError(.fileNotFound, "\(path) does not exist (or cannot be opened): \(error.message)", underlying: error)
            }
            throw JournalError(error, context: "opening \(path)")
        }
        do {
            try db.execute("PRAGMA busy_timeout = \(configuration.busyTimeoutMilliseconds)")
        } catch {
            throw JournalError(error, context: "configuring \(path)")
        }
        // Validate before any write: a foreign, newer or damaged file must come out of this unchanged.
        _ = try Migrator().status(db)
        if configuration.openCheckMilliseconds > 0 {
            let check: QuickCheckResult
            do {
                check = try db.quickCheck(budgetMilliseconds: configuration.openCheckMilliseconds)
            } catch {
                throw JournalError(error, context: "checking \(path)")
            }
            switch check {
            case .ok: break
            case .corrupt(let problems):
                throw JournalError(.corrupt, """
                    \(path) failed SQLite's quick check (\(problems.prefix(3).joined(separator: "; "))): refusing to write \
                    into it; `mesh journal verify \(path)` lists the damage; restore a backup or move the file aside
                    """)
            case .incomplete:
                logger.notice("journal too large to check whole at open; run `mesh journal verify` for a full check", metadata: [
                    "journal.path": "\(path)", "journal.open_check_ms": "\(configuration.openCheckMilliseconds)",
                ])
            }
        }
        do {
            // Takes effect only on a new, empty file (before WAL mode is set); an existing journal keeps its size.
            try db.execute("PRAGMA page_size = \(configuration.pageSize)")
            let mode = try db.scalarText("PRAGMA journal_mode = WAL")
            guard mode?.lowercased() == "wal" else {
                throw JournalError(.sqlite, "\(path): could not switch to WAL mode (journal_mode is \(mode ?? "unknown"))")
            }
            let synchronous = configuration.durability == .full ? "FULL" : "NORMAL"
            let pageSize = try db.scalarInt("PRAGMA page_size") ?? 4096
            try db.execute("""
                PRAGMA synchronous = \(synchronous);
                PRAGMA foreign_keys = ON;
                PRAGMA cache_size = -\(configuration.cacheSizeKiB);
                PRAGMA temp_store = MEMORY;
                PRAGMA journal_size_limit = \(Int64(configuration.walLimitPages) * pageSize * 2);
                """)
        } catch let error as JournalError {
            throw error
        } catch let error as SQLiteError {
            throw JournalError(error, context: "configuring \(path)")
        } catch {
            throw JournalError(.sqlite, "configuring \(path): \(error)")
        }
        return db
    }

    /// What opening the journal's writer starts from.
    private struct StartState {
        var identity: JournalIdentity
        /// The highest outbound sequence that may have been used: at least the reservation of the last start.
        var lastOutSeq: Int64
        /// The reservation this start recorded above it (schema v14).
        var reservedOutSeq: Int64
        /// The highest invocation id that may have been used, and the reservation recorded above it.
        var invocationIDs: (last: Int64, reserved: Int64)
        /// The highest inbound row id ever used (schema v13).
        var lastInboundID: Int64 = 0
        /// The floors of the unsettled messages recorded by the last run (schema v13).
        var floors: (outbound: Int64, inbound: Int64) = (0, 0)
    }

    /// Creates the node identity on first open, or increments the boot epoch (and reserves invocation ids and
    /// outbound sequences). With `syncing` (`.normal` durability) the transaction's commit is synced all the same:
    /// a power loss must not take back the epoch or the reservation a run of the node has used.
    private static func startEpoch(_ db: SQLiteConnection, syncing: Bool, reservation: Int64) throws(JournalError) -> StartState {
        do {
            if syncing { try db.execute("PRAGMA synchronous = FULL") }
            defer { if syncing { try? db.execute("PRAGMA synchronous = NORMAL") } }
            return try db.immediateTransaction { () throws -> StartState in
                let now = WallClock.nowMs()
                // The highest sequence that may have been used: the larger of the one recorded when rows were
                // deleted, the highest one present (neither recorded at every commit; see migration 0003) and the
                // last reservation (migration 0014: a power loss may have taken sequences a peer received). A new
                // reservation is recorded above it. The invocation ids start above the last reservation (migration
                // 0009) and a new one is recorded.
                let select = try db.prepare("""
                    SELECT node_id, boot_epoch,
                           max(last_out_seq, out_seq_reserved, (SELECT coalesce(max(seq), 0) FROM mesh_outbound)),
                           max(invocation_reserved, (SELECT coalesce(max(id), 0) FROM mesh_invocation)), outbound_floor, inbound_floor,
                           max(last_in_id, (SELECT coalesce(max(id), 0) FROM mesh_inbound))
                    FROM mesh_node WHERE singleton = 1
                    """)
                if try select.step() {
                    let nodeID = select.text(0)
                    let epoch = select.int64(1) + 1
                    let lastOutSeq = select.int64(2)
                    let lastInvocationID = select.int64(3)
                    let reserved = lastInvocationID + WorkerContext.invocationIDBlock
                    let reservedOutSeq = lastOutSeq + reservation
                    let update = try db.prepare("""
                        UPDATE mesh_node SET boot_epoch = ?, opened_at = ?, invocation_reserved = ?, out_seq_reserved = ?
                        WHERE singleton = 1
                        """)
                    try update.bind(1, epoch)
                    try update.bind(2, now)
                    try update.bind(3, reserved)
                    try update.bind(4, reservedOutSeq)
                    try update.step()
                    return StartState(identity: JournalIdentity(nodeID: nodeID, bootEpoch: UInt64(epoch)), lastOutSeq: lastOutSeq,
                                      reservedOutSeq: reservedOutSeq,
                                      invocationIDs: (lastInvocationID, reserved), lastInboundID: select.int64(6),
                                      floors: (select.int64(4), select.int64(5)))
                }
                let nodeID = randomNodeID()
                // The first epoch is random, so two journals rarely share one: a node that takes another's address
                // (a short-lived client, a replaced node on a fresh journal) is told apart from it by its epoch too,
                // which every datagram names as its destination. Below 2^30: an incarnation (epoch << 32) stays
                // within SQLite's signed 64 bits, and 2^30 restarts fit before the transport's 32 bits wrap.
                let epoch = Int64.random(in: 1..<(1 << 30))
                let insert = try db.prepare("""
                    INSERT INTO mesh_node(singleton, node_id, boot_epoch, last_out_seq, created_at, opened_at, invocation_reserved,
                                          out_seq_reserved)
                    VALUES (1, ?, ?, 0, ?, ?, ?, ?)
                    """)
                try insert.bind(1, nodeID)
                try insert.bind(2, epoch)
                try insert.bind(3, now)
                try insert.bind(4, now)
                try insert.bind(5, WorkerContext.invocationIDBlock)
                try insert.bind(6, reservation)
                try insert.step()
                return StartState(identity: JournalIdentity(nodeID: nodeID, bootEpoch: UInt64(epoch)), lastOutSeq: 0,
                                  reservedOutSeq: reservation,
                                  invocationIDs: (0, WorkerContext.invocationIDBlock))
            }
        } catch let error as SQLiteError {
            throw JournalError(error, context: "starting a boot epoch in \(db.path)")
        } catch {
            throw JournalError(.sqlite, "starting a boot epoch in \(db.path): \(error)")
        }
    }

    static func randomNodeID() -> String {
        var rng = SystemRandomNumberGenerator()
        let hex = Array("0123456789abcdef")
        return String((0..<32).map { _ in hex[Int(rng.next(upperBound: UInt8(16)))] })
    }

    // MARK: - Generic access (package)

    /// Runs `body` on the writer inside the current group-commit transaction; returns after it committed.
    package func write<T: Sendable>(savepoint: Bool = true, _ body: @escaping @Sendable (WorkerContext) throws -> T) async throws -> T {
        try await writer.submit(savepoint: savepoint, body)
    }

    /// Sets SQLite's `max_page_count` of the write connection before the writer's next transaction — even while it
    /// retries writes that a full disk failed, which a job could not do (it would queue behind them). Tests use it
    /// to stand in for a disk that fills up and gets space back.
    package func setPageLimit(_ pages: Int64) {
        writer.pendingPageLimit.store(max(1, pages), ordering: .releasing)
    }

    /// Runs `body` on the read-only connection.
    package func read<T: Sendable>(_ body: @escaping @Sendable (SQLiteConnection) throws -> T) async throws -> T {
        try await reader.submit { context in try body(context.db) }
    }

    /// The `payload_json` of a row: `given` (the caller rendered it from the values it had) or the payload
    /// decoded and rendered here. Called on the writer thread when the journal stores JSON.
    static func renderJSON(_ payload: [UInt8], _ given: String?) -> String? {
        if let given { return given }
        return try? MeshJSON.string(encoded: payload)
    }
}

// MARK: - Outbound

extension Journal {
    /// Journals one outbound message with status `pending` and returns its sequence number (the message id is
    /// `"\(identity.nodeID):\(seq)"`). Returns after the row is committed.
    public func appendOutbound(_ message: OutboundMessage) async throws -> UInt64 {
        try await appendOutbound([message])[0]
    }

    /// Journals several outbound messages in one job (all or none) and returns their sequence numbers, in order.
    public func appendOutbound(_ messages: [OutboundMessage]) async throws -> [UInt64] {
        guard !messages.isEmpty else { return [] }
        return try await withCheckedThrowingContinuation { continuation in
            appendOutbound(messages) { continuation.resume(with: $0) }
        }
    }

    /// ``appendOutbound(_:)`` without a suspension: `completion` runs on the journal's writer thread once the rows
    /// are committed (or with the error), in commit order. It must not block; the node uses it to hand the
    /// message to the transport straight from the commit.
    package func appendOutbound(_ messages: [OutboundMessage],
                               completion: @escaping @Sendable (Result<[UInt64], any Error>) -> Void) {
        guard !messages.isEmpty else { return completion(.success([])) }
        let now = WallClock.nowMs()
        let render = configuration.storesPayloadJSON
        // A savepoint when a failure can come after a write: a later message of several, or a response whose request
        // is not journaled (refused once its row is written). Without one, a job sharing its transaction would leave
        // those rows committed although it failed.
        let savepoint = messages.count > 1 || messages.contains { $0.answersInboundID != nil }
        writer.submit(savepoint: savepoint, { context in
            var rows = messages
            for i in rows.indices { rows[i].payloadJSON = render ? Self.renderJSON(rows[i].payload, rows[i].payloadJSON) : nil }
            return try Self.insertOutbound(rows, context: context, now: now)
        }, completion: completion)
    }

    /// Inserts outbound rows with consecutive new sequence numbers. No state row: a message without one is pending
    /// with one attempt (schema v11); its first change writes one (``upsertOutboundState``).
    static func insertOutbound(_ rows: [OutboundMessage], context: WorkerContext, now: Int64) throws -> [UInt64] {
        let statement = try context.db.cached("""
            INSERT INTO mesh_outbound(seq, command_id, kind, peer, created_at, correlation_id, replay_of, payload, payload_json, relay,
                                      error_response)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        var seqs: [UInt64] = []
        seqs.reserveCapacity(rows.count)
        let firstSeq = context.lastOutSeq
        do {
            for row in rows {
                let seq = try context.nextOutSeq()
                try statement.bind(1, seq)
                try statement.bind(2, Int64(row.commandID))
                try statement.bind(3, Int64(row.kind.rawValue))
                try statement.bind(4, row.peer)
                try statement.bind(5, now)
                try statement.bind(6, row.correlationID)
                try statement.bind(7, row.replayOf)
                try statement.bind(10, row.relay)
                try statement.bind(11, row.isErrorResponse ? 1 : 0)
                // The payload and its JSON are bound without copies for the step (the largest values of the row).
                try statement.withText(9, row.payloadJSON) { () throws(SQLiteError) in
                    try statement.withBlob(8, row.payload) { () throws(SQLiteError) in _ = try statement.step() }
                }
                statement.reset()
                if let request = row.answersInboundID {
                    let answered = try context.db.cached("""
                        INSERT INTO mesh_inbound_state(id, command_id, answered)
                        VALUES (?1, (SELECT command_id FROM mesh_inbound WHERE id = ?1), 1)
                        ON CONFLICT(id) DO UPDATE SET answered = 1
                        """)
                    try answered.bind(1, request)
                    guard try Self.stepStateUpsert(answered, context.db) == 1 else {
                        throw JournalError(.invalidArgument, "a response answers inbound message \(request), which is not journaled")
                    }
                }
                context.lastOutSeq = seq
                seqs.append(UInt64(seq))
            }
        } catch {
            statement.reset()
            context.lastOutSeq = firstSeq
            throw error
        }
        return seqs
    }

    /// Marks outbound messages acknowledged (the receiver journaled them). Rows already acked or failed are
    /// left as they are. Returns how many rows changed. A deferrable write: it may wait up to
    /// ``JournalConfiguration/deferredCommitMicroseconds`` to share the next message's commit (until then
    /// a crash leaves the rows pending, and a restart resends them; the receiver drops the duplicates).
    @discardableResult
    public func markOutboundAcked(_ seqs: [UInt64]) async throws -> Int {
        guard !seqs.isEmpty else { return 0 }
        let now = WallClock.nowMs()
        return try await writer.submit(deferrable: true) { context in
            try Self.updateOutboundAcked(context.db, seqs, now: now)
        }
    }

    /// An outbound message's state row written by its first change, or changed: `values` are the columns of a new
    /// row (`status, attempts, completed_at, error`, parameters from ?2 on), `update` the change of an existing one
    /// (its `WHERE` included); ?1 is the sequence. The command ID comes from the message's row (none: no change, see
    /// ``stepStateUpsert(_:_:)``). A message without a state row is pending with one attempt (schema v11).
    static func upsertOutboundState(values: String, update: String) -> String {
        """
        INSERT INTO mesh_outbound_state(seq, command_id, status, attempts, completed_at, error)
        VALUES (?1, (SELECT command_id FROM mesh_outbound WHERE seq = ?1), \(values))
        ON CONFLICT(seq) DO UPDATE SET \(update)
        """
    }

    /// Runs an upsert of one state row written as `INSERT … VALUES (id, (SELECT command_id FROM <message table> WHERE
    /// …), …) ON CONFLICT … DO UPDATE …` and returns the rows it changed (0 or 1). A message without its row (gone, or
    /// never journaled) gives the subquery's NULL, which fails `command_id NOT NULL` before anything is written: no
    /// change, as the `INSERT … SELECT … WHERE` form these statements had. Why not that form: SQLite gives an
    /// `INSERT … SELECT` that may abort a statement journal, which copies each page the statement changes that the
    /// transaction had already changed (a state row's page, at every acknowledgement and every handled message);
    /// a single-row `VALUES` write needs none.
    static func stepStateUpsert(_ statement: SQLiteStatement, _ db: SQLiteConnection) throws(SQLiteError) -> Int {
        do {
            try statement.step()
        } catch where error.code == SQLiteError.constraintNotNull {
            return 0
        }
        return db.changes
    }

    /// A pending message acknowledged: ?1 sequence, ?2 time.
    static let outboundAckedSQL = upsertOutboundState(values: "1, 1, ?2, NULL", update: "status = 1, completed_at = ?2 WHERE status = 0")
    /// A pending message failed: ?1 sequence, ?2 time, ?3 error.
    static let outboundFailedSQL = upsertOutboundState(values: "2, 1, ?2, ?3", update: "status = 2, completed_at = ?2, error = ?3 WHERE status = 0")
    /// One attempt more (a resend): ?1 sequence.
    static let outboundAttemptSQL = upsertOutboundState(values: "0, 2, NULL, NULL", update: "attempts = attempts + 1")

    /// Pending messages ?1 through ?2 (every sequence between) acknowledged at ?3, in one statement. Unlike the
    /// single-row upserts this one has a statement journal (an `INSERT … SELECT`), paid once for the whole run.
    static let outboundAckedRunSQL = """
        INSERT INTO mesh_outbound_state(seq, command_id, status, attempts, completed_at, error)
        SELECT seq, command_id, 1, 1, ?3, NULL FROM mesh_outbound WHERE seq BETWEEN ?1 AND ?2
        ON CONFLICT(seq) DO UPDATE SET status = 1, completed_at = ?3 WHERE status = 0
        """

    /// From how many consecutive sequences on an acknowledgement is written by ``outboundAckedRunSQL`` instead of one
    /// upsert per message (below, the statement journal costs about what it saves).
    static let ackedRunMinimum = 4

    /// Sets pending rows `seqs` acked at `now`; returns how many changed. Acknowledgements come mostly in runs of
    /// consecutive sequences (a batch of messages, acknowledged together): a run of ``ackedRunMinimum`` or more is
    /// one statement.
    static func updateOutboundAcked(_ db: SQLiteConnection, _ seqs: [UInt64], now: Int64) throws -> Int {
        let ordered = seqs.count < 2 ? seqs : Array(Set(seqs)).sorted()
        var changed = 0
        var start = 0
        while start < ordered.count {
            var end = start
            while end + 1 < ordered.count, ordered[end + 1] == ordered[end] + 1 { end += 1 }
            if end - start + 1 >= ackedRunMinimum {
                let run = try db.cached(outboundAckedRunSQL)
                try run.bind(1, Int64(bitPattern: ordered[start]))
                try run.bind(2, Int64(bitPattern: ordered[end]))
                try run.bind(3, now)
                try run.step()
                changed += db.changes
                run.reset()
            } else {
                let statement = try db.cached(outboundAckedSQL)
                for seq in ordered[start...end] {
                    try statement.bind(1, Int64(bitPattern: seq))
                    try statement.bind(2, now)
                    changed += try stepStateUpsert(statement, db)
                    statement.reset()
                }
            }
            start = end + 1
        }
        return changed
    }

    /// Sets pending row `seq` failed with `error` at `now`; returns whether it changed.
    static func updateOutboundFailed(_ db: SQLiteConnection, _ seq: UInt64, error: String, now: Int64) throws -> Bool {
        let statement = try db.cached(outboundFailedSQL)
        try statement.bind(1, Int64(bitPattern: seq))
        try statement.bind(2, now)
        try statement.bind(3, error)
        return try stepStateUpsert(statement, db) == 1
    }

    /// Marks outbound messages acknowledged without waiting: when the writer reaches this job it calls `take`
    /// for the sequence numbers (so acknowledgements that arrive until then share the job) and updates them in
    /// the current group-commit transaction. A deferrable write, like ``markOutboundAcked(_:)``, retried if its
    /// transaction aborts (a crash before it commits leaves the rows pending: they are resent after a restart,
    /// and the receiver drops the duplicates).
    package func postOutboundAcked(_ take: @escaping @Sendable () -> [UInt64]) {
        // Taken once: a retry after an aborted transaction writes the same sequence numbers again.
        let taken = Mutex<[UInt64]?>(nil)
        writer.post(inTransaction: true, "acknowledgements") { context in
            let seqs = taken.withLock { taken in
                if taken == nil { taken = take() }
                return taken!
            }
            guard !seqs.isEmpty else { return }
            _ = try Self.updateOutboundAcked(context.db, seqs, now: WallClock.nowMs())
        }
    }

    /// Marks a pending outbound message failed without waiting (see ``markOutboundFailed(_:error:)``); failures
    /// to write are logged.
    package func postOutboundFailed(_ seq: UInt64, error text: String) {
        let now = WallClock.nowMs()
        writer.post(inTransaction: true, "a send failure") { context in
            _ = try Self.updateOutboundFailed(context.db, seq, error: text, now: now)
        }
    }

    /// Marks a pending outbound message failed with `error` (the sender gave up). Returns whether it changed.
    @discardableResult
    public func markOutboundFailed(_ seq: UInt64, error: String) async throws -> Bool {
        let now = WallClock.nowMs()
        return try await writer.submit { context in
            try Self.updateOutboundFailed(context.db, seq, error: error, now: now)
        }
    }

    /// Adds one to `attempts` of each message (a transmission or retransmission happened).
    public func recordOutboundAttempts(_ seqs: [UInt64]) async throws {
        guard !seqs.isEmpty else { return }
        try await writer.submit { context in
            let statement = try context.db.cached(Self.outboundAttemptSQL)
            for seq in seqs {
                try statement.bind(1, Int64(bitPattern: seq))
                _ = try Self.stepStateUpsert(statement, context.db)
                statement.reset()
            }
        }
    }

    /// The command IDs with pending outbound messages, ascending.
    public func pendingOutboundCommandIDs() async throws -> [UInt16] {
        try await read { db in Set(try self.pendingSummaries(db).map(\.commandID)).sorted() }
    }

    /// How many outbound messages are pending (neither acknowledged nor failed).
    public func pendingOutboundCount() async throws -> Int {
        try await read { db in
            var count = 0
            try Self.walkUnsettled(.outbound, from: try self.pendingFloor(db), db) { _ in
                count += 1
                return true
            }
            return count
        }
    }

    /// The peers (`host:port`) that pending outbound messages are addressed to, ascending.
    public func pendingOutboundPeers() async throws -> [String] {
        try await read { db in Set(try self.pendingSummaries(db).map(\.peer)).sorted() }
    }

    /// Command ID and peer of every pending outbound message, in sequence order.
    private func pendingSummaries(_ db: SQLiteConnection) throws -> [(commandID: UInt16, peer: String)] {
        var summaries: [(commandID: UInt16, peer: String)] = []
        try Self.walkUnsettledRows(.outbound, from: try pendingFloor(db), rowSQL: "SELECT command_id, peer FROM mesh_outbound WHERE seq = ?1", db) { row in
            summaries.append((UInt16(truncatingIfNeeded: row.int64(0)), row.text(1)))
            return true
        }
        return summaries
    }

    /// The oldest pending outbound sequence in this connection's snapshot, or one past the highest sequence if
    /// none is pending; moves ``outboundPendingFloor`` up to it. Reads the state rows from the floor on until the
    /// first pending message (``walkUnsettled(_:from:_:_:)``): after the first call, about those settled since.
    func pendingFloor(_ db: SQLiteConnection) throws -> Int64 {
        try Self.moveFloor(outboundPendingFloor, .outbound, db)
    }

    /// The oldest inbound id without a state row in this connection's snapshot, or one past the highest id if there
    /// is none; moves ``inboundStatelessFloor`` up to it (as ``pendingFloor(_:)`` does for outbound messages).
    func statelessFloor(_ db: SQLiteConnection) throws -> Int64 {
        try Self.moveFloor(inboundStatelessFloor, .inbound, db)
    }

    /// Moves both floors up to the reader's snapshot and records them in `mesh_node` if they moved since the last
    /// record (a deferrable write: it shares the next commit), so that the next open starts its walks there instead
    /// of at the first message (schema v13). A node calls it every few seconds; its cost is that of the messages
    /// settled since the last call.
    package func persistFloors() async throws {
        let floors = try await read { db in (outbound: try self.pendingFloor(db), inbound: try self.statelessFloor(db)) }
        let recorded = recordedFloors.withLock { $0 }
        guard floors.outbound > recorded.outbound || floors.inbound > recorded.inbound else { return }
        try await writer.submit(deferrable: true) { context in
            let statement = try context.db.cached("""
                UPDATE mesh_node SET outbound_floor = max(outbound_floor, ?1), inbound_floor = max(inbound_floor, ?2) WHERE singleton = 1
                """)
            try statement.bind(1, floors.outbound)
            try statement.bind(2, floors.inbound)
            try statement.step()
        }
        recordedFloors.withLock { $0 = (max($0.outbound, floors.outbound), max($0.inbound, floors.inbound)) }
    }

    /// The command IDs with open inbound messages (`received`, `failed`, `unhandled`), ascending: those of the
    /// open state rows (through their index) and those of the messages without a state row.
    public func openInboundCommandIDs() async throws -> [UInt16] {
        try await read { db in
            var ids = Set(try db.rows(Self.distinctCommandIDs(table: "mesh_inbound_state", open: Self.openPredicate())).compactMap { $0[0].flatMap { UInt16($0) } })
            try Self.walkUnsettledRows(.inbound, from: try self.statelessFloor(db), rowSQL: "SELECT command_id FROM mesh_inbound WHERE id = ?1", db) { row in
                ids.insert(UInt16(truncatingIfNeeded: row.int64(0)))
                return true
            }
            return ids.sorted()
        }
    }

    /// The open set of inbound messages (`received`, `failed`, `unhandled`) in the words of the partial index
    /// `mesh_inbound_open`: SQLite uses a partial index only for a query that states its predicate. Comparisons,
    /// not `IN (0, 2, 4)`, which SQLite evaluates with a temporary B-tree at every insert and update (schema v5).
    static func openPredicate(_ prefix: String = "") -> String {
        "(\(prefix)status = 0 OR \(prefix)status = 2 OR \(prefix)status = 4)"
    }

    /// Distinct command IDs of the rows matching `open`, by skipping through its partial index (a recursive
    /// "next larger command ID" seek) instead of reading every open row.
    static func distinctCommandIDs(table: String, open: String) -> String {
        """
        WITH RECURSIVE ids(id) AS (
            SELECT min(command_id) FROM \(table) WHERE \(open)
            UNION ALL
            SELECT (SELECT min(command_id) FROM \(table) WHERE \(open) AND command_id > ids.id) FROM ids WHERE ids.id IS NOT NULL)
        SELECT id FROM ids WHERE id IS NOT NULL
        """
    }

    /// Pending outbound messages, oldest first: what a restarted node must resend. The rows are read by sequence
    /// from the oldest pending one on (pending messages are the recent ones); page with `afterSeq`, per command ID
    /// (``pendingOutboundCommandIDs()``) where order matters.
    /// - Parameters:
    ///   - commandID: only this command ID, or all when `nil`.
    ///   - peer: only messages to this address, or all when `nil`.
    ///   - afterSeq: only sequences greater than this (for paging).
    ///   - limit: at most this many rows.
    public func pendingOutbound(commandID: UInt16? = nil, peer: String? = nil, afterSeq: UInt64 = 0,
                                limit: Int = 1000) async throws -> [StoredOutbound] {
        guard limit > 0 else { return [] }
        return try await read { db in
            var rows: [StoredOutbound] = []
            let from = max(Int64(bitPattern: afterSeq) &+ 1, try self.pendingFloor(db))
            // Filtered in SQL: a resend at start pages per peer and command ID through the same pending messages.
            let sql = Self.outboundBySeqSQL + " AND (?2 IS NULL OR o.command_id = ?2) AND (?3 IS NULL OR o.peer = ?3)"
            try Self.walkUnsettledRows(.outbound, from: from, rowSQL: sql, db, bind: { statement in
                try statement.bind(2, commandID.map { Int64($0) })
                try statement.bind(3, peer)
            }) { statement in
                rows.append(Self.readOutbound(statement))
                return rows.count < limit
            }
            return rows
        }
    }

    /// The outbound message with sequence `seq`, or `nil`.
    public func outbound(seq: UInt64) async throws -> StoredOutbound? {
        try await read { db in
            let statement = try db.cached(Self.outboundBySeqSQL)
            try statement.bind(1, Int64(bitPattern: seq))
            return try statement.step() ? Self.readOutbound(statement) : nil
        }
    }

    /// One outbound message by sequence (?1), with its state.
    static let outboundBySeqSQL = "SELECT \(outboundColumns) FROM \(outboundSource) WHERE o.seq = ?1"
    static let outboundColumns = """
        o.seq, o.command_id, o.kind, o.peer, coalesce(s.status, 0), coalesce(s.attempts, 1), o.created_at, s.completed_at,
        o.correlation_id, o.replay_of, s.error, o.payload, o.relay, o.error_response
        """
    /// Outbound messages with their state rows, if any (a message without one is pending, one attempt: v11).
    static let outboundSource = "mesh_outbound o LEFT JOIN mesh_outbound_state s ON s.seq = o.seq"

    static func readOutbound(_ s: SQLiteStatement) -> StoredOutbound {
        StoredOutbound(
            seq: UInt64(bitPattern: s.int64(0)), commandID: UInt16(truncatingIfNeeded: s.int64(1)),
            kind: MessageKind(rawValue: s.int(2)) ?? .send, peer: s.text(3),
            status: OutboundStatus(rawValue: s.int(4)) ?? .pending, attempts: s.int(5), createdAtMs: s.int64(6),
            completedAtMs: s.optionalInt64(7), correlationID: s.optionalText(8), replayOf: s.optionalText(9),
            error: s.optionalText(10), payload: s.blob(11), relay: s.optionalText(12), isErrorResponse: s.int(13) == 1)
    }
}

// MARK: - Inbound

extension Journal {
    /// Journals received messages, deduplicating on (origin node, origin sequence). Returns, per message in
    /// order, whether it was inserted or was already there (then: acknowledge again, do not dispatch again).
    public func appendInbound(_ messages: [InboundMessage]) async throws -> [InboundAppendResult] {
        try await appendInboundRelaying(messages).results
    }

    /// ``appendInbound(_:)`` that also journals each new message's ``InboundMessage/forwards`` as outbound rows
    /// in the same transaction, and returns their sequence numbers (empty for a duplicate).
    public func appendInboundRelaying(_ messages: [InboundMessage]) async throws -> (results: [InboundAppendResult], forwards: [[UInt64]]) {
        guard !messages.isEmpty else { return ([], []) }
        return try await withCheckedThrowingContinuation { continuation in
            appendInboundRelaying(messages) { continuation.resume(with: $0) }
        }
    }

    /// ``appendInboundRelaying(_:)`` without a suspension: `completion` runs on the journal's writer thread once
    /// the rows are committed (or with the error), in commit order. It must not block; the node's receive path
    /// confirms and dispatches from it, straight from the commit.
    package func appendInboundRelaying(
        _ messages: [InboundMessage],
        completion: @escaping @Sendable (Result<(results: [InboundAppendResult], forwards: [[UInt64]]), any Error>) -> Void
    ) {
        appendInboundRelaying(messages, then: nil as (@Sendable (WorkerContext, [InboundAppendResult]) throws -> Void)?) { result in
            completion(result.map { ($0.results, $0.forwards) })
        }
    }

    /// ``appendInboundRelaying(_:completion:)`` that runs `then` in the same transaction right after the rows are
    /// written, with their results: the node runs synchronous handlers there and writes their invocations,
    /// statuses and responses, so the message, what its handlers did and its response commit together. `then`
    /// runs on the writer thread and must not block; if it throws, the whole job (rows included) is undone.
    ///
    /// `commitAtOnce`: called on the writer's lent executor (the node's loop, between reading datagrams and
    /// flushing its replies), the job commits and `completion` runs before this returns, so the batch's
    /// acknowledgements, confirmations and responses leave together in that flush.
    package func appendInboundRelaying<Extra: Sendable>(
        _ messages: [InboundMessage],
        commitAtOnce: Bool = false,
        then: (@Sendable (WorkerContext, [InboundAppendResult]) throws -> Extra)?,
        completion: @escaping @Sendable (Result<(results: [InboundAppendResult], forwards: [[UInt64]], extra: Extra?), any Error>) -> Void
    ) {
        guard !messages.isEmpty else { return completion(.success(([], [], nil))) }
        for message in messages where !Self.isValidNodeID(message.originNode) {
            return completion(.failure(JournalError(.invalidArgument, "origin node id \"\(message.originNode)\" is not 32 lowercase hex digits")))
        }
        let now = WallClock.nowMs()
        let render = configuration.storesPayloadJSON
        let hasForwards = messages.contains { !$0.forwards.isEmpty }
        writer.submit(savepoint: messages.count > 1 || hasForwards || then != nil, commitAtOnce: commitAtOnce, { context in
            var rows = messages
            for i in rows.indices {
                rows[i].payloadJSON = render ? Self.renderJSON(rows[i].payload, rows[i].payloadJSON) : nil
                for j in rows[i].forwards.indices {
                    let forward = rows[i].forwards[j]
                    rows[i].forwards[j].payloadJSON = render ? Self.renderJSON(forward.payload, forward.payloadJSON) : nil
                }
            }
            let db = context.db
            let insert = try db.cached("""
                INSERT INTO mesh_inbound(origin, origin_seq, command_id, kind, peer, created_at,
                                         correlation_id, replay_of, payload, payload_json, relay, id)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT(origin, origin_seq) DO NOTHING
                """)
            let state = try db.cached("INSERT INTO mesh_inbound_state(id, command_id, status, attempts, completed_at) VALUES (?, ?, ?, ?, ?)")
            var results: [InboundAppendResult] = []
            results.reserveCapacity(rows.count)
            var forwards: [[UInt64]] = []
            forwards.reserveCapacity(rows.count)
            // New rows whose state `then` writes; any it did not are written after it.
            var statesAfterThen: [(id: Int64, row: InboundMessage)] = []
            // A message journaled as received (to be handled on its lane) gets no state row until its handlers end
            // (schema v12); one journaled with another status (a response, complete already) gets it now.
            func writeState(_ id: Int64, _ row: InboundMessage, _ state: SQLiteStatement) throws {
                guard row.status != .received else { return }
                try state.bind(1, id)
                try state.bind(2, Int64(row.commandID))
                try state.bind(3, Int64(row.status.rawValue))
                // Journaled already complete (a response): one attempt, completed now.
                try state.bind(4, row.status.isComplete ? 1 : 0)
                try state.bind(5, row.status.isComplete ? Optional(now) : nil)
                try state.step()
                state.reset()
            }
            for row in rows {
                let origin = try Self.originID(row.originNode, context: context, now: now)
                try insert.bind(1, origin)
                try insert.bind(2, Int64(bitPattern: row.originSeq))
                try insert.bind(3, Int64(row.commandID))
                try insert.bind(4, Int64(row.kind.rawValue))
                try insert.bind(5, row.peer)
                try insert.bind(6, now)
                try insert.bind(7, row.correlationID)
                try insert.bind(8, row.replayOf)
                try insert.bind(11, row.relay)
                // Ids come from the writer's counter, not SQLite's max(id) + 1: one pruned at the end is not reused.
                let id = context.lastInboundID + 1
                try insert.bind(12, id)
                try insert.withText(10, row.payloadJSON) { () throws(SQLiteError) in
                    try insert.withBlob(9, row.payload) { () throws(SQLiteError) in _ = try insert.step() }
                }
                let inserted = db.changes == 1
                insert.reset()
                if inserted {
                    context.lastInboundID = id
                    if row.stateWrittenInJob && then != nil {
                        statesAfterThen.append((id, row))
                    } else {
                        try writeState(id, row, state)
                    }
                    results.append(.inserted(id: id))
                    forwards.append(row.forwards.isEmpty ? [] : try Self.insertOutbound(row.forwards, context: context, now: now))
                } else {
                    // The state row is missing only for a copy of a message this job inserted a moment ago (a
                    // retransmission in the same read batch) whose state `then` writes: it has the status it came with.
                    let existing = try db.cached("""
                        SELECT i.id, s.status FROM mesh_inbound i LEFT JOIN mesh_inbound_state s ON s.id = i.id
                        WHERE i.origin = ? AND i.origin_seq = ?
                        """)
                    try existing.bind(1, origin)
                    try existing.bind(2, Int64(bitPattern: row.originSeq))
                    guard try existing.step() else { throw JournalError(.sqlite, "inbound row vanished during dedupe") }
                    let id = existing.int64(0)
                    let status = existing.isNull(1) ? statesAfterThen.first(where: { $0.id == id })?.row.status : InboundStatus(rawValue: existing.int(1))
                    existing.reset()
                    results.append(.duplicate(id: id, status: status ?? .received))
                    forwards.append([])
                }
            }
            let extra = try then?(context, results)
            if !statesAfterThen.isEmpty {
                let state = try db.cached(
                    "INSERT OR IGNORE INTO mesh_inbound_state(id, command_id, status, attempts, completed_at) VALUES (?, ?, ?, ?, ?)")
                for (id, row) in statesAfterThen { try writeState(id, row, state) }
            }
            return (results, forwards, extra)
        }, completion: completion)
    }

    /// Sets an inbound message's status (and error, attempts). `handled`, `dead` set `completed_at`.
    public func setInboundStatus(id: Int64, _ status: InboundStatus, attempts: Int? = nil, error: String? = nil) async throws {
        let now = WallClock.nowMs()
        try await writer.submit { context in
            try Self.updateInboundStatus(context.db, id: id, status, attempts: attempts, error: error, now: now)
        }
    }

    static func updateInboundStatus(_ db: SQLiteConnection, id: Int64, _ status: InboundStatus, attempts: Int?, error: String?,
                                    now: Int64) throws {
        let statement = try db.cached("""
            INSERT INTO mesh_inbound_state(id, command_id, status, attempts, error, completed_at)
            VALUES (?5, (SELECT command_id FROM mesh_inbound WHERE id = ?5), ?1, coalesce(?2, 0), ?3, ?4)
            ON CONFLICT(id) DO UPDATE SET status = ?1, attempts = coalesce(?2, attempts), error = ?3, completed_at = ?4
            """)
        try statement.bind(1, Int64(status.rawValue))
        try statement.bind(2, attempts.map(Int64.init))
        try statement.bind(3, error)
        try statement.bind(4, status.isComplete ? Optional(now) : nil)
        try statement.bind(5, id)
        _ = try stepStateUpsert(statement, db)
    }

    /// Inbound messages whose handlers have not all finished (`received`, `failed`, `unhandled`), in arrival
    /// order: what the dispatcher resumes after a restart. For a large journal, page per command ID
    /// (``openInboundCommandIDs()``): that walks the open index.
    public func openInbound(commandID: UInt16? = nil, afterID: Int64 = 0, limit: Int = 1000) async throws -> [StoredInbound] {
        guard limit > 0 else { return [] }
        return try await read { db in
            // The open state rows, through their index.
            let indexed = try db.cached(Self.openStateRowsSQL(byCommandID: commandID != nil))
            try indexed.bind(1, commandID.map { Int64($0) } ?? 0)
            try indexed.bind(2, afterID)
            try indexed.bind(3, limit)
            var rows: [StoredInbound] = []
            while try indexed.step() { rows.append(Self.readInbound(indexed)) }
            indexed.reset()
            // The messages without a state row, from the floor on, merged in by id.
            var stateless: [StoredInbound] = []
            // Filtered in SQL: a resume pages per command ID through the same messages.
            let sql = Self.inboundByIDSQL + " AND (?2 IS NULL OR i.command_id = ?2)"
            try Self.walkUnsettledRows(.inbound, from: max(afterID &+ 1, try self.statelessFloor(db)), rowSQL: sql, db,
                                       bind: { try $0.bind(2, commandID.map { Int64($0) }) }) { statement in
                stateless.append(Self.readInbound(statement))
                return stateless.count < limit
            }
            guard !stateless.isEmpty else { return rows }
            return Array((rows + stateless).sorted { $0.id < $1.id }.prefix(limit))
        }
    }

    /// Open state rows (``openPredicate(_:)``) in id order after ?2, at most ?3, of command ID ?1 if `byCommandID`.
    static func openStateRowsSQL(byCommandID: Bool) -> String {
        """
        SELECT s.id, \(inboundColumnsAfterID) FROM mesh_inbound_state s JOIN mesh_inbound i ON i.id = s.id JOIN mesh_peer p ON p.id = i.origin
        WHERE \(openPredicate("s."))\(byCommandID ? " AND s.command_id = ?1" : "") AND s.id > ?2 ORDER BY s.id LIMIT ?3
        """
    }

    /// One inbound message by id (?1), with its state.
    static let inboundByIDSQL = "SELECT \(inboundColumns) FROM \(inboundSource) WHERE i.id = ?1"

    /// The inbound message with row id `id`, or `nil`.
    public func inbound(id: Int64) async throws -> StoredInbound? {
        try await read { db in
            let statement = try db.cached(Self.inboundByIDSQL)
            try statement.bind(1, id)
            return try statement.step() ? Self.readInbound(statement) : nil
        }
    }

    static let inboundColumns = "i.id, " + inboundColumnsAfterID
    /// ``inboundColumns`` after the id (a query through the open index names it `s.id`: the order it reads in).
    static let inboundColumnsAfterID = """
        p.node_id, i.origin_seq, i.command_id, i.kind, i.peer, coalesce(s.status, 0), coalesce(s.attempts, 0), i.created_at,
        s.completed_at, i.correlation_id, i.replay_of, s.error, i.payload, i.relay, coalesce(s.answered, 0)
        """
    /// Inbound messages with their state rows, if any (one without is received, not yet handled: schema v12).
    static let inboundSource = """
        mesh_inbound i LEFT JOIN mesh_inbound_state s ON s.id = i.id JOIN mesh_peer p ON p.id = i.origin
        """

    static func readInbound(_ s: SQLiteStatement) -> StoredInbound {
        StoredInbound(
            id: s.int64(0), originNode: s.text(1), originSeq: UInt64(bitPattern: s.int64(2)),
            commandID: UInt16(truncatingIfNeeded: s.int64(3)), kind: MessageKind(rawValue: s.int(4)) ?? .send,
            peer: s.text(5), status: InboundStatus(rawValue: s.int(6)) ?? .received, attempts: s.int(7),
            createdAtMs: s.int64(8), completedAtMs: s.optionalInt64(9), correlationID: s.optionalText(10),
            replayOf: s.optionalText(11), error: s.optionalText(12), payload: s.blob(13), relay: s.optionalText(14),
            isAnswered: s.int(15) != 0)
    }

    static func isValidNodeID(_ id: String) -> Bool {
        id.utf8.count == 32 && id.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    /// mesh_peer.id for a node id, creating the row on first sight.
    static func originID(_ nodeID: String, context: WorkerContext, now: Int64) throws -> Int64 {
        if let id = context.originIDs[nodeID] { return id }
        let db = context.db
        let select = try db.cached("SELECT id FROM mesh_peer WHERE node_id = ?")
        try select.bind(1, nodeID)
        let id: Int64
        if try select.step() {
            id = select.int64(0)
            select.reset()
        } else {
            select.reset()
            let insert = try db.cached("INSERT INTO mesh_peer(node_id, first_seen, last_seen) VALUES (?, ?, ?)")
            try insert.bind(1, nodeID)
            try insert.bind(2, now)
            try insert.bind(3, now)
            try insert.step()
            id = db.lastInsertRowID
        }
        context.originIDs[nodeID] = id
        return id
    }
}

// MARK: - Invocations

extension Journal {
    /// Records that handler `handlerIndex` of inbound message `inboundID` started (attempt `attempt`, or a
    /// replay run). Returns the invocation id for ``finishInvocation(_:outcome:error:response:)``.
    public func startInvocation(inboundID: Int64, handlerIndex: Int, attempt: Int, replayRun: Int64? = nil) async throws -> Int64 {
        let now = WallClock.nowMs()
        return try await writer.submit(savepoint: true) { context in
            try Self.insertInvocation(context, inboundID: inboundID, handlerIndex: handlerIndex, attempt: attempt,
                                      replayRun: replayRun, now: now)
        }
    }

    /// Inserts the row of a started invocation and returns its id.
    static func insertInvocation(_ context: WorkerContext, inboundID: Int64, handlerIndex: Int, attempt: Int, replayRun: Int64?,
                                 now: Int64) throws -> Int64 {
        let id = try context.nextInvocationID()
        let statement = try context.db.cached("""
            INSERT INTO mesh_invocation(id, inbound_id, handler_index, attempt, replay_run, started_at) VALUES (?, ?, ?, ?, ?, ?)
            """)
        try statement.bind(1, id)
        try statement.bind(2, inboundID)
        try statement.bind(3, handlerIndex)
        try statement.bind(4, attempt)
        try statement.bind(5, replayRun)
        try statement.bind(6, now)
        try statement.step()
        return id
    }

    /// The result of a handler invocation.
    public enum InvocationOutcome: Int, Sendable, Hashable {
        /// The handler returned.
        case ok = 0
        /// The handler threw.
        case error = 1
    }

    /// Records how an invocation ended, with the handler's error text or its response (encoded map).
    public func finishInvocation(_ id: Int64, outcome: InvocationOutcome, error: String? = nil, response: MeshData? = nil) async throws {
        let now = WallClock.nowMs()
        let responseBytes = try response.map { data throws(MeshCodecError) in try MeshCodec.encode(data) }
        let responseJSON = response.map { MeshJSON.string(from: $0) }
        try await writer.submit { context in
            try Self.updateFinishedInvocation(context.db, id: id, finishedAt: now, outcome: outcome, error: error,
                                              responseBytes: responseBytes, responseJSON: responseJSON)
        }
    }

    // MARK: Posted writes (the dispatcher's path; node-only)

    /// Records the start of an invocation without waiting for the commit, and returns the ticket that
    /// ``postInvocationFinish(_:outcome:error:response:status:)`` completes. The writer runs jobs in submission
    /// order and group commit batches them; a crash can lose only the last, uncommitted writes — the message is
    /// then dispatched again (at-least-once). Failures are logged.
    ///
    /// A handler that ends before the writer reaches its start costs one row written once, at the finish: the
    /// start job sees the ticket finished and writes nothing. A handler still running then gets its row at
    /// once (`finished_at` NULL), so a long or hung invocation is visible in `mesh_invocations`.
    package func postInvocationStart(inboundID: Int64, handlerIndex: Int, attempt: Int) -> InvocationTicket {
        let ticket = InvocationTicket(inboundID: inboundID, handlerIndex: handlerIndex, attempt: attempt, startedAt: WallClock.nowMs())
        writer.post(inTransaction: true, "an invocation start") { context in
            // Retried after an aborted transaction: the row it wrote then was rolled back with it.
            ticket.rowID.store(0, ordering: .releasing)
            guard !ticket.finished.load(ordering: .acquiring) else { return }
            let id = try Self.insertInvocation(context, inboundID: inboundID, handlerIndex: handlerIndex, attempt: attempt,
                                               replayRun: nil, now: ticket.startedAt)
            ticket.rowID.store(id, ordering: .releasing)
        }
        return ticket
    }

    /// Records how a posted invocation ended — inserting its whole row, or completing the row its start wrote —
    /// and, if `status` is given, the message's new status in the same job.
    package func postInvocationFinish(_ ticket: InvocationTicket, outcome: InvocationOutcome, error: String? = nil,
                                       response: MeshData? = nil, status: (InboundStatus, attempts: Int, error: String?)? = nil) {
        let finish = Self.invocationFinish(ticket, outcome: outcome, error: error, response: response, status: status)
        writer.post(inTransaction: true, "an invocation end", finish)
    }

    /// ``postInvocationFinish(_:outcome:error:response:status:)`` and the request's response (`answer`, which marks
    /// the request answered) in one transaction, so that a crash never leaves a request handled without its
    /// response. If the transaction aborts (a full disk) the job is retried, like a posted write, until it commits.
    /// `committed` runs on the writer thread after the commit with the response's sequence number (the caller
    /// transmits it), or with the error of a failure of its own or of a close that came first (then nothing was
    /// written: the message stays open and runs again at the next start).
    package func finishInvocation(_ ticket: InvocationTicket, outcome: InvocationOutcome, response: MeshData?,
                                  encodedResponse: EncodedResponse? = nil,
                                  status: (InboundStatus, attempts: Int, error: String?), answering answer: OutboundMessage,
                                  committed: @escaping @Sendable (Result<UInt64, any Error>) -> Void) {
        let finish = Self.invocationFinish(ticket, outcome: outcome, error: nil, response: response, encodedResponse: encodedResponse,
                                           status: status)
        writer.submit(savepoint: true, retriedOnAbort: true, { context in
            try finish(context)
            return try Self.writeOutbound([answer], context: context)[0]
        }, completion: committed)
    }

    /// ``postInboundStatus(id:_:attempts:error:)`` and the request's response (`answer`) in one transaction, like
    /// ``finishInvocation(_:outcome:response:encodedResponse:status:answering:committed:)`` (retried the same way): a dead-lettered
    /// request and its error response.
    package func setInboundStatus(id: Int64, _ status: InboundStatus, attempts: Int, error: String?, answering answer: OutboundMessage,
                                  committed: @escaping @Sendable (Result<UInt64, any Error>) -> Void) {
        let now = WallClock.nowMs()
        writer.submit(savepoint: true, retriedOnAbort: true, { context in
            try Self.updateInboundStatus(context.db, id: id, status, attempts: attempts, error: error, now: now)
            return try Self.writeOutbound([answer], context: context)[0]
        }, completion: committed)
    }

    /// The writes that end a posted invocation (and set its message's status), for a job.
    private static func invocationFinish(_ ticket: InvocationTicket, outcome: InvocationOutcome, error: String?, response: MeshData?,
                                         encodedResponse: EncodedResponse? = nil,
                                         status: (InboundStatus, attempts: Int, error: String?)?) -> @Sendable (WorkerContext) throws -> Void {
        ticket.finished.store(true, ordering: .releasing)
        let now = WallClock.nowMs()
        let (responseBytes, responseJSON) = EncodedResponse.columns(encodedResponse, of: response)
        return { context in
            let rowID = ticket.rowID.load(ordering: .acquiring)
            if rowID != 0 {
                try Self.updateFinishedInvocation(context.db, id: rowID, finishedAt: now, outcome: outcome, error: error,
                                                  responseBytes: responseBytes, responseJSON: responseJSON)
            } else {
                let invocation = CompactableInvocation(inboundID: ticket.inboundID, handlerIndex: ticket.handlerIndex, attempt: ticket.attempt,
                                                       startedAt: ticket.startedAt, finishedAt: now, outcome: outcome, error: error,
                                                       responseBytes: responseBytes, responseJSON: responseJSON)
                if let (newStatus, attempts, statusError) = status,
                   try Self.writeCompact(invocation, status: newStatus, attempts: attempts, statusError: statusError, context: context) {
                    return
                }
                try Self.insertFinishedInvocation(context, invocation)
            }
            if let (newStatus, attempts, statusError) = status {
                try Self.updateInboundStatus(context.db, id: ticket.inboundID, newStatus, attempts: attempts, error: statusError, now: now)
            }
        }
    }

    /// A finished invocation's columns, before it is written as a row of its own or into its message's state row.
    struct CompactableInvocation {
        var inboundID: Int64
        var handlerIndex: Int
        var attempt: Int
        var startedAt: Int64
        var finishedAt: Int64
        var outcome: InvocationOutcome
        var error: String?
        var responseBytes: [UInt8]?
        var responseJSON: String?

        /// Whether it fits in its message's state row (migration 0009): the first handler, returned, the attempt the
        /// status counts, and it ends the message (`handled`).
        func fitsStateRow(status: InboundStatus, attempts: Int, statusError: String?) -> Bool {
            status == .handled && statusError == nil && handlerIndex == 0 && outcome == .ok && error == nil && attempt == attempts
        }
    }

    /// Writes `invocation` into its message's state row together with the message's new status, if it fits there
    /// (``CompactableInvocation/fitsStateRow(status:attempts:statusError:)``). Returns false, having written nothing,
    /// for any other invocation, or if the row already holds one (a message handled again after a re-queue keeps
    /// both): then the caller writes it as a row of its own and the status apart.
    static func writeCompact(_ invocation: CompactableInvocation, status: InboundStatus, attempts: Int, statusError: String?,
                             context: WorkerContext) throws -> Bool {
        guard invocation.fitsStateRow(status: status, attempts: attempts, statusError: statusError) else { return false }
        let id = try context.nextInvocationID()
        let statement = try context.db.cached("""
            INSERT INTO mesh_inbound_state(id, command_id, status, attempts, error, completed_at, invocation_id, invocation_attempt,
                                           invocation_started_at, invocation_finished_at, invocation_response, invocation_response_json)
            VALUES (?8, (SELECT command_id FROM mesh_inbound WHERE id = ?8), ?1, ?2, NULL, ?3, ?4, ?2, ?5, ?3, ?6, ?7)
            ON CONFLICT(id) DO UPDATE SET status = ?1, attempts = ?2, error = NULL, completed_at = ?3,
                invocation_id = ?4, invocation_attempt = ?2, invocation_started_at = ?5, invocation_finished_at = ?3,
                invocation_response = ?6, invocation_response_json = ?7
            WHERE invocation_id IS NULL
            """)
        try statement.bind(1, Int64(status.rawValue))
        try statement.bind(2, attempts)
        try statement.bind(3, invocation.finishedAt)
        try statement.bind(4, id)
        try statement.bind(5, invocation.startedAt)
        try statement.bind(6, blob: invocation.responseBytes)
        try statement.bind(7, invocation.responseJSON)
        try statement.bind(8, invocation.inboundID)
        return try stepStateUpsert(statement, context.db) == 1
    }

    /// Completes the invocation row `id` that its start wrote.
    static func updateFinishedInvocation(_ db: SQLiteConnection, id: Int64, finishedAt: Int64, outcome: InvocationOutcome, error: String?,
                                         responseBytes: [UInt8]?, responseJSON: String?) throws {
        let statement = try db.cached("""
            UPDATE mesh_invocation SET finished_at = ?, outcome = ?, error = ?, response = ?, response_json = ? WHERE id = ?
            """)
        try bindEnd(statement, finishedAt: finishedAt, outcome: outcome, error: error, responseBytes: responseBytes, responseJSON: responseJSON)
        try statement.bind(6, id)
        try statement.step()
    }

    /// Binds an invocation's end — parameters 1–5 of both statements that write one: `finished_at`, `outcome`,
    /// `error`, `response`, `response_json`.
    private static func bindEnd(_ statement: SQLiteStatement, finishedAt: Int64, outcome: InvocationOutcome, error: String?,
                                responseBytes: [UInt8]?, responseJSON: String?) throws {
        try statement.bind(1, finishedAt)
        try statement.bind(2, Int64(outcome.rawValue))
        try statement.bind(3, error)
        try statement.bind(4, blob: responseBytes)
        try statement.bind(5, responseJSON)
    }

    /// Inserts a whole invocation row, its start and its end (a posted invocation whose start was never written, and
    /// a synchronous handler's invocation).
    static func insertFinishedInvocation(_ context: WorkerContext, _ invocation: CompactableInvocation) throws {
        let id = try context.nextInvocationID()
        let statement = try context.db.cached("""
            INSERT INTO mesh_invocation(finished_at, outcome, error, response, response_json,
                                        id, inbound_id, handler_index, attempt, started_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """)
        try bindEnd(statement, finishedAt: invocation.finishedAt, outcome: invocation.outcome, error: invocation.error,
                    responseBytes: invocation.responseBytes, responseJSON: invocation.responseJSON)
        try statement.bind(6, id)
        try statement.bind(7, invocation.inboundID)
        try statement.bind(8, invocation.handlerIndex)
        try statement.bind(9, invocation.attempt)
        try statement.bind(10, invocation.startedAt)
        try statement.step()
    }

    /// Sets an inbound message's status without waiting for the commit (see ``postInvocationStart(inboundID:handlerIndex:attempt:)``).
    package func postInboundStatus(id: Int64, _ status: InboundStatus, attempts: Int? = nil, error: String? = nil) {
        let now = WallClock.nowMs()
        writer.post(inTransaction: true, "an inbound status") { context in
            try Self.updateInboundStatus(context.db, id: id, status, attempts: attempts, error: error, now: now)
        }
    }

    /// Waits until every write submitted before this call is committed.
    public func barrier() async throws {
        try await writer.submit { _ in }
    }

    /// Starts a replay run and returns its id, for ``startInvocation(inboundID:handlerIndex:attempt:replayRun:)``.
    public func startReplayRun(commandID: UInt16?, description: String) async throws -> Int64 {
        let now = WallClock.nowMs()
        return try await writer.submit { context in
            let statement = try context.db.cached("INSERT INTO mesh_replay_run(started_at, command_id, description) VALUES (?, ?, ?)")
            try statement.bind(1, now)
            try statement.bind(2, commandID.map { Int64($0) })
            try statement.bind(3, description)
            try statement.step()
            return context.db.lastInsertRowID
        }
    }
}

// MARK: - Maintenance

extension Journal {
    /// How much of the WAL to move into the database file.
    public enum CheckpointMode: String, Sendable {
        /// Copy what no reader needs, without waiting (SQLite's PASSIVE).
        case passive = "PASSIVE"
        /// Copy everything and truncate the WAL file to zero bytes (waits for readers up to the busy timeout).
        case truncate = "TRUNCATE"
    }

    /// Checkpoints the WAL. Returns (frames in the WAL, frames checkpointed).
    @discardableResult
    public func checkpoint(_ mode: CheckpointMode = .passive) async throws -> (log: Int, checkpointed: Int) {
        // A checkpoint cannot run inside a transaction: run it on the writer thread between group commits.
        try await writer.submit(outsideTransaction: true) { context in
            let statement = try context.db.prepare("PRAGMA wal_checkpoint(\(mode.rawValue))")
            guard try statement.step() else { return (0, 0) }
            return (statement.int(1), statement.int(2))
        }
    }

    /// Group-commit statistics since open: how many write transactions committed and how many jobs (append
    /// or update calls) they held. `jobs / transactions` is the average batch size.
    public var writeStatistics: (transactions: Int, jobs: Int) {
        let statistics = writer.statistics
        return (statistics.transactions, statistics.jobs)
    }

    /// Write transactions that aborted since open (a full disk, an I/O error), or could not begin: their posted
    /// writes were retried in later ones.
    package var abortedTransactions: Int { writer.statistics.aborted }

    /// Checkpoints run since open: in the background, and inline because the WAL reached
    /// ``JournalConfiguration/walLimitPages``.
    public var checkpointStatistics: (background: Int, inline: Int) { checkpoints.statistics }

    /// WAL frames (pages) the writer's commits wrote since open: the pages a message dirties, each written once
    /// to the WAL and once more by a checkpoint. `mesh bench --json` reports it per message.
    public var walFramesWritten: Int { checkpoints.walFrames }

    /// Counts of messages by direction and status, for stats and tests.
    public func counts() async throws -> [String: Int] {
        try await read { db in
            let statement = try db.prepare("SELECT direction || '.' || status, count(*) FROM mesh_messages GROUP BY 1")
            var result: [String: Int] = [:]
            while try statement.step() { result[statement.text(0)] = statement.int(1) }
            return result
        }
    }
}
