import CSQLite

/// An error reported by SQLite: the extended result code, SQLite's message, and the SQL that failed.
///
/// Bound parameter values are never included (they may be message payloads). Match categories with the
/// static codes: `catch let error as SQLiteError where error.primaryCode == SQLiteError.full`.
public struct SQLiteError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The extended result code (`sqlite3_extended_errcode`), e.g. 2067 for SQLITE_CONSTRAINT_UNIQUE.
    public let code: Int32
    /// SQLite's message (`sqlite3_errmsg`).
    public let message: String
    /// The statement that failed, if any.
    public let sql: String?

    /// Creates an error.
    public init(code: Int32, message: String, sql: String? = nil) {
        self.code = code
        self.message = message
        self.sql = sql
    }

    /// The primary result code (the low 8 bits of ``code``).
    public var primaryCode: Int32 { code & 0xFF }

    /// SQLITE_BUSY: another connection holds the lock past the busy timeout.
    public static let busy: Int32 = SQLITE_BUSY
    /// SQLITE_FULL: the disk (or `max_page_count`) is full.
    public static let full: Int32 = SQLITE_FULL
    /// SQLITE_IOERR: an I/O error in the operating system.
    public static let ioError: Int32 = SQLITE_IOERR
    /// SQLITE_CORRUPT: the database file is malformed.
    public static let corrupt: Int32 = SQLITE_CORRUPT
    /// SQLITE_NOTADB: the file is not a database.
    public static let notADatabase: Int32 = SQLITE_NOTADB
    /// SQLITE_CONSTRAINT: a constraint was violated.
    public static let constraint: Int32 = SQLITE_CONSTRAINT
    /// SQLITE_CONSTRAINT_NOTNULL (an extended code: compare with ``code``): a NOT NULL column got NULL.
    public static let constraintNotNull: Int32 = SQLITE_CONSTRAINT | (5 << 8)  // SQLITE_CONSTRAINT_NOTNULL: Swift cannot import that macro
    /// SQLITE_READONLY: a write on a read-only connection or file.
    public static let readOnly: Int32 = SQLITE_READONLY
    /// SQLITE_CANTOPEN: the file could not be opened.
    public static let cantOpen: Int32 = SQLITE_CANTOPEN
    /// SQLITE_INTERRUPT: the statement was interrupted (a time budget ran out).
    public static let interrupt: Int32 = SQLITE_INTERRUPT

    /// A one-line explanation: `SQLite error 13 (database or disk is full) in "INSERT INTO ..."`.
    public var description: String {
        let name = String(cString: sqlite3_errstr(code))
        var text = "SQLite error \(code) (\(name)): \(message)"
        if let sql { text += " in \"\(sql.count > 200 ? String(sql.prefix(200)) + "…" : sql)\"" }
        return text
    }
}
