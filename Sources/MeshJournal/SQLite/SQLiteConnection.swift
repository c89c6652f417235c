import CMeshWALBatch
import CSQLite

/// One SQLite connection, confined to the thread that uses it (SQLite runs in multi-thread mode: a
/// connection must never be used from two threads at once, so this type is not `Sendable`).
///
/// Statements prepared through ``cached(_:)`` are kept for reuse, keyed by their SQL.
package final class SQLiteConnection {
    package let handle: OpaquePointer
    package let path: String
    private var statementCache: [String: SQLiteStatement] = [:]
    private var isClosed = false

    /// How to open a connection.
    package enum Mode: Sendable {
        /// Read-write, creating the file if it does not exist.
        case readWriteCreate
        /// Read-write; the file must exist.
        case readWrite
        /// Read-only; the file must exist.
        case readOnly
    }

    /// Runs once, before the process's first connection: turns off SQLite's allocation statistics, which
    /// take a process-wide mutex on every allocation and which Mesh never reads (measured: ~2 % of the CPU of a
    /// journaled one-way stream). If SQLite was already initialized by other code in the process, this is a
    /// no-op (SQLite refuses the change) and everything works as before.
    ///
    /// Then it registers the WAL write-batching VFS (``walBatchingVFS``), which initializes SQLite.
    private static let processSetup: Int32 = {
        _ = csqlite_config_memstatus(0)
        return mesh_wal_batch_register()
    }()

    /// The name of the VFS that hands a transaction's WAL frames to the kernel in one write (C target
    /// `CMeshWALBatch`): SQLite writes each frame as two (header, page). It wraps the default VFS and changes
    /// nothing else; what it buffers is written inside the write of the commit frame, before SQLite publishes it.
    package static let walBatchingVFS = "mesh-wal-batch"

    /// Opens `path`. `vfs`: the name of a registered SQLite VFS (``walBatchingVFS``), or nil for the default.
    package init(path: String, mode: Mode, vfs: String? = nil) throws(SQLiteError) {
        let registered = Self.processSetup
        if vfs == Self.walBatchingVFS && registered != SQLITE_OK {
            throw SQLiteError(code: registered, message: "the \(Self.walBatchingVFS) VFS could not be registered")
        }
        var flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        switch mode {
        case .readWriteCreate: flags |= SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
        case .readWrite: flags |= SQLITE_OPEN_READWRITE
        case .readOnly: flags |= SQLITE_OPEN_READONLY
        }
        var db: OpaquePointer?
        let rc = sqlite3_open_v2(path, &db, flags, vfs)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            let code = db.map { sqlite3_extended_errcode($0) } ?? rc
            sqlite3_close_v2(db)
            throw SQLiteError(code: code, message: message)
        }
        self.handle = db
        self.path = path
        sqlite3_extended_result_codes(db, 1)
    }

    deinit {
        close()
    }

    /// For a connection opened through ``walBatchingVFS`` whose WAL is open: how many writes SQLite made to the
    /// WAL (`appends`), how many reached the file (`writes`) and how many syncs of it SQLite asked for (`syncs`).
    /// Nil otherwise. On the connection's thread.
    package var walWriteCounters: (appends: Int64, writes: Int64, syncs: Int64)? {
        var appends: sqlite3_int64 = 0
        var writes: sqlite3_int64 = 0
        var syncs: sqlite3_int64 = 0
        guard mesh_wal_batch_counters(handle, &appends, &writes, &syncs) != 0 else { return nil }
        return (appends, writes, syncs)
    }

    /// Makes this connection's WAL file (open through ``walBatchingVFS``) grow ahead of its frames: a thread of
    /// its own (`mesh-journal-g`, nice 10) keeps the file about `aheadBytes` longer than the log (up to `capBytes`)
    /// with zeros, so a commit's write overwrites blocks the file already has instead of reserving new ones and
    /// moving its size; `syncing` (for connections whose commits are fsynced) also syncs the zeros, so that a
    /// commit's fsync does not journal the file's growth. Returns false (and changes nothing) if the WAL is not
    /// open yet, not through that VFS, or the thread could not start.
    @discardableResult
    package func growWALAhead(aheadBytes: Int64, capBytes: Int64, syncing: Bool) -> Bool {
        mesh_wal_batch_set_growth(handle, aheadBytes, capBytes, syncing ? 1 : 0) != 0
    }

    /// Asks the thread that grows this connection's WAL ahead (``growWALAhead(aheadBytes:capBytes:syncing:)``) to
    /// fdatasync the file within `microseconds`, unless this connection syncs it first (a later commit's sync covers
    /// the same frames): after a commit made without a sync, whose frames then reach the disk without this thread
    /// waiting for them. A request still pending (no sync of this connection's covered it yet) keeps its earlier time.
    /// Returns false (and asks nothing) if the WAL is not growing ahead. On the connection's thread, after the commit.
    @discardableResult
    package func syncWALSoon(withinMicroseconds microseconds: Int64) -> Bool {
        mesh_wal_batch_sync_soon(handle, microseconds) != 0
    }

    /// For tests: pauses or resumes the thread that grows this connection's WAL ahead (paused, it neither grows the
    /// file nor makes or skips a sync asked for). Do not wait for it to be idle while it is paused. False if the WAL
    /// is not growing ahead.
    @discardableResult
    package func pauseWALGrower(_ paused: Bool) -> Bool {
        mesh_wal_batch_pause_grower(handle, paused ? 1 : 0) != 0
    }

    /// The growth ahead of this connection's WAL (``growWALAhead(aheadBytes:capBytes:syncing:)``): zero-filling writes made
    /// so far, the bytes the file holds, and the syncs asked by ``syncWALSoon(withinMicroseconds:)`` that it made and
    /// that it skipped (this connection synced first); nil if it is not growing ahead. `waitingForIdle`: first wait
    /// until the grower has done what it was asked, a sync asked for included (for tests). On the connection's thread.
    package func walGrowth(waitingForIdle: Bool = false)
        -> (steps: Int64, allocated: Int64, backgroundSyncs: Int64, skippedSyncs: Int64)? {
        var steps: sqlite3_int64 = 0
        var allocated: sqlite3_int64 = 0
        var backgroundSyncs: sqlite3_int64 = 0
        var skippedSyncs: sqlite3_int64 = 0
        guard mesh_wal_batch_growth(handle, waitingForIdle ? 1 : 0, &steps, &allocated, &backgroundSyncs, &skippedSyncs) != 0 else {
            return nil
        }
        return (steps, allocated, backgroundSyncs, skippedSyncs)
    }

    /// Finalizes the cached statements and closes the connection, releasing its file descriptors (the last
    /// connection to a WAL database checkpoints it and removes the WAL). Idempotent; the connection must not be
    /// used afterwards. A statement prepared with ``prepare(_:)`` and still alive keeps SQLite's handle open
    /// until it is released (`sqlite3_close_v2`).
    package func close() {
        guard !isClosed else { return }
        isClosed = true
        statementCache.removeAll()
        sqlite3_close_v2(handle)
    }

    package func error(sql: String? = nil) -> SQLiteError {
        SQLiteError(code: sqlite3_extended_errcode(handle), message: String(cString: sqlite3_errmsg(handle)), sql: sql)
    }

    /// Runs one or more SQL statements that return no rows of interest.
    package func execute(_ sql: String) throws(SQLiteError) {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(message)
            throw SQLiteError(code: sqlite3_extended_errcode(handle), message: text, sql: sql)
        }
    }

    /// Runs a statement without results through the statement cache (``cached(_:)``): for the transaction
    /// statements of every commit (`BEGIN IMMEDIATE`, `COMMIT`, `SAVEPOINT`, `RELEASE`), which ``execute(_:)``
    /// would parse and plan again each time — several microseconds and dozens of allocations per commit.
    package func executeCached(_ sql: String) throws(SQLiteError) {
        let statement = try cached(sql)
        defer { statement.reset() }
        while try statement.step() {}
    }

    /// Prepares a statement that the caller owns.
    package func prepare(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        try SQLiteStatement(db: handle, sql: sql)
    }

    /// A cached, reset statement for `sql`. Call ``SQLiteStatement/reset()`` is done for you before return.
    /// Resets every statement of this connection that is still mid-result, ending its implicit read
    /// transaction.
    package func resetBusyStatements() {
        var statement = sqlite3_next_stmt(handle, nil)
        while let current = statement {
            if sqlite3_stmt_busy(current) != 0 { sqlite3_reset(current) }
            statement = sqlite3_next_stmt(handle, current)
        }
    }

    package func cached(_ sql: String) throws(SQLiteError) -> SQLiteStatement {
        if let statement = statementCache[sql] {
            statement.reset()
            return statement
        }
        let statement = try prepare(sql)
        statementCache[sql] = statement
        return statement
    }

    /// The value of the first column of the first row of `sql`, as an integer (nil when no row or NULL).
    package func scalarInt(_ sql: String) throws(SQLiteError) -> Int64? {
        let statement = try cached(sql)
        defer { statement.reset() }
        guard try statement.step(), !statement.isNull(0) else { return nil }
        return statement.int64(0)
    }

    /// The value of the first column of the first row of `sql`, as text.
    package func scalarText(_ sql: String) throws(SQLiteError) -> String? {
        let statement = try cached(sql)
        defer { statement.reset() }
        guard try statement.step(), !statement.isNull(0) else { return nil }
        return statement.text(0)
    }

    /// Every row of `sql`, each column as text (NULL as `nil`), for tools and tests.
    package func rows(_ sql: String) throws(SQLiteError) -> [[String?]] {
        let statement = try prepare(sql)
        var rows: [[String?]] = []
        while try statement.step() {
            rows.append((0..<statement.columnCount).map { statement.optionalText($0) })
        }
        return rows
    }

    /// The rowid of the last successful insert on this connection.
    package var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(handle) }

    /// Rows changed by the last statement.
    package var changes: Int { Int(sqlite3_changes(handle)) }

    /// Whether no transaction is open (SQLite may roll back a transaction on its own after some errors).
    package var isAutocommit: Bool { sqlite3_get_autocommit(handle) != 0 }

    /// Runs `body` inside `BEGIN IMMEDIATE … COMMIT`, rolling back if it throws.
    package func immediateTransaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            if !isAutocommit { try? execute("ROLLBACK") }
            throw error
        }
    }
}

@available(*, unavailable)
extension SQLiteConnection: Sendable {}
