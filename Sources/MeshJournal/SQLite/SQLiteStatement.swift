import CSQLite

/// A prepared statement. Owned by one ``SQLiteConnection`` and used only on that connection's thread.
///
/// Parameters are 1-based, columns 0-based, as in the C API. Text and blobs are bound with
/// `SQLITE_TRANSIENT` (SQLite copies them), so the Swift values need not outlive the call.
package final class SQLiteStatement {
    package let handle: OpaquePointer
    package let sql: String
    private let db: OpaquePointer

    init(db: OpaquePointer, sql: String) throws(SQLiteError) {
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(db, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK, let statement else {
            throw SQLiteError(code: sqlite3_extended_errcode(db), message: String(cString: sqlite3_errmsg(db)), sql: sql)
        }
        self.handle = statement
        self.sql = sql
        self.db = db
    }

    deinit { sqlite3_finalize(handle) }

    private func check(_ rc: Int32) throws(SQLiteError) {
        guard rc == SQLITE_OK else { throw error() }
    }

    package func error() -> SQLiteError {
        SQLiteError(code: sqlite3_extended_errcode(db), message: String(cString: sqlite3_errmsg(db)), sql: sql)
    }

    // MARK: Binding

    package func bind(_ index: Int32, _ value: Int64) throws(SQLiteError) { try check(sqlite3_bind_int64(handle, index, value)) }
    package func bind(_ index: Int32, _ value: Int) throws(SQLiteError) { try check(sqlite3_bind_int64(handle, index, Int64(value))) }
    package func bind(_ index: Int32, _ value: Double) throws(SQLiteError) { try check(sqlite3_bind_double(handle, index, value)) }
    package func bindNull(_ index: Int32) throws(SQLiteError) { try check(sqlite3_bind_null(handle, index)) }

    package func bind(_ index: Int32, _ value: String) throws(SQLiteError) {
        var value = value
        let rc = value.withUTF8 { utf8 -> Int32 in
            utf8.withMemoryRebound(to: CChar.self) { chars in
                sqlite3_bind_text(handle, index, chars.baseAddress ?? csqlite_empty_text(), Int32(chars.count), csqlite_transient())
            }
        }
        try check(rc)
    }

    package func bind(_ index: Int32, _ value: String?) throws(SQLiteError) {
        if let value { try bind(index, value) } else { try bindNull(index) }
    }

    package func bind(_ index: Int32, _ value: Int64?) throws(SQLiteError) {
        if let value { try bind(index, value) } else { try bindNull(index) }
    }

    package func bind(_ index: Int32, blob: [UInt8]) throws(SQLiteError) {
        let rc = blob.withUnsafeBytes { raw in
            // A zero-length blob must still be a blob, not NULL: pass a valid pointer.
            sqlite3_bind_blob(handle, index, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(raw.count), csqlite_transient())
        }
        try check(rc)
    }

    /// Binds `blob` at `index` without copying it (`SQLITE_STATIC`) while `body` runs — `body` steps the
    /// statement — and unbinds it before returning, so SQLite never keeps the pointer beyond the bytes' scope.
    /// Spares the copy (and allocation) ``bind(_:blob:)`` makes: for message payloads on the hot path.
    package func withBlob<R>(_ index: Int32, _ blob: [UInt8], _ body: () throws(SQLiteError) -> R) throws(SQLiteError) -> R {
        try blob.withUnsafeBytes { raw in
            // A zero-length blob must still be a blob, not NULL: pass a valid pointer (never read).
            whileBound(index, sqlite3_bind_blob(handle, index, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(raw.count),
                                                csqlite_static()), body)
        }.get()
    }

    /// Binds `text` (NULL when `nil`) at `index` without copying it while `body` runs, like
    /// ``withBlob(_:_:_:)``: for the payload's JSON rendering on the hot path.
    package func withText<R>(_ index: Int32, _ text: String?, _ body: () throws(SQLiteError) -> R) throws(SQLiteError) -> R {
        guard var text else {
            try bindNull(index)
            return try body()
        }
        return try text.withUTF8 { utf8 in
            whileBound(index, utf8.withMemoryRebound(to: CChar.self) { chars in
                sqlite3_bind_text(handle, index, chars.baseAddress ?? csqlite_empty_text(), Int32(chars.count), csqlite_static())
            }, body)
        }.get()
    }

    /// Runs `body` if the bind that returned `rc` succeeded, then unbinds `index` (its bytes are only borrowed).
    private func whileBound<R>(_ index: Int32, _ rc: Int32, _ body: () throws(SQLiteError) -> R) -> Result<R, SQLiteError> {
        guard rc == SQLITE_OK else { return .failure(error()) }
        defer { sqlite3_bind_null(handle, index) }
        return Result { () throws(SQLiteError) -> R in try body() }
    }

    package func bind(_ index: Int32, blob: [UInt8]?) throws(SQLiteError) {
        if let blob { try bind(index, blob: blob) } else { try bindNull(index) }
    }

    // MARK: Stepping

    /// Runs one step. Returns `true` when a row is available, `false` when the statement is done.
    @discardableResult
    package func step() throws(SQLiteError) -> Bool {
        switch sqlite3_step(handle) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw error()
        }
    }

    /// Resets the statement and clears its bindings, ready for reuse.
    package func reset() {
        sqlite3_reset(handle)
        sqlite3_clear_bindings(handle)
    }

    // MARK: Columns

    package func isNull(_ column: Int32) -> Bool { sqlite3_column_type(handle, column) == SQLITE_NULL }
    package func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(handle, column) }
    package func int(_ column: Int32) -> Int { Int(sqlite3_column_int64(handle, column)) }
    package func double(_ column: Int32) -> Double { sqlite3_column_double(handle, column) }
    package func optionalInt64(_ column: Int32) -> Int64? { isNull(column) ? nil : int64(column) }

    package func text(_ column: Int32) -> String {
        guard let p = sqlite3_column_text(handle, column) else { return "" }
        let count = Int(sqlite3_column_bytes(handle, column))
        return String(decoding: UnsafeBufferPointer(start: p, count: count), as: UTF8.self)
    }

    package func optionalText(_ column: Int32) -> String? { isNull(column) ? nil : text(column) }

    package func blob(_ column: Int32) -> [UInt8] {
        guard let p = sqlite3_column_blob(handle, column) else { return [] }
        let count = Int(sqlite3_column_bytes(handle, column))
        return [UInt8](UnsafeRawBufferPointer(start: p, count: count))
    }

    package func optionalBlob(_ column: Int32) -> [UInt8]? { isNull(column) ? nil : blob(column) }

    package var columnCount: Int32 { sqlite3_column_count(handle) }
    package func columnName(_ column: Int32) -> String { String(cString: sqlite3_column_name(handle, column)) }
}

@available(*, unavailable)
extension SQLiteStatement: Sendable {}
