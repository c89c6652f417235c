import CSQLite
import MeshMigrations
import MeshFailpoints

/// Applies ``MeshMigrations/all`` to a journal, in order, each in its own transaction, and refuses files it
/// cannot trust before writing anything to them.
///
/// Checks, in order: the file is SQLite; it is empty or carries Mesh's `application_id` and migration table;
/// every applied migration is known to this build with the same checksum (no newer, changed or missing ones).
/// Each pending migration then runs inside `BEGIN IMMEDIATE … COMMIT` together with its row in
/// `mesh_schema_migrations(id, name, checksum, applied_at)`, and `PRAGMA user_version` follows the latest id.
package struct Migrator {
    /// `PRAGMA application_id` of every Mesh journal: ASCII "MESH".
    package static let applicationID: Int32 = 0x4D45_5348

    package let migrations: [Migration]

    package init(migrations: [Migration] = MeshMigrations.all) {
        self.migrations = migrations
    }

    /// A migration as recorded in a journal.
    package struct Applied: Sendable, Hashable {
        package let id: Int
        package let name: String
        package let checksum: String
        package let appliedAtMs: Int64
    }

    /// The state of a journal relative to this build.
    package struct Status: Sendable {
        package let applied: [Applied]
        package let pending: [Migration]
        package let isEmptyDatabase: Bool
    }

    /// The checksum recorded for a migration: 64-bit FNV-1a of its SQL, as 16 hex digits. It detects edits to
    /// a released migration; it is not a security measure.
    package static func checksum(_ sql: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in sql.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Reads and validates the journal's migration state without changing anything.
    package func status(_ db: SQLiteConnection) throws(JournalError) -> Status {
        let objectCount: Int64
        do {
            objectCount = try db.scalarInt("SELECT count(*) FROM sqlite_schema") ?? 0
        } catch {
            throw classifyOpenError(error, path: db.path)
        }
        if objectCount == 0 {
            return Status(applied: [], pending: migrations, isEmptyDatabase: true)
        }
        let appID: Int64
        let hasTable: Bool
        do {
            appID = try db.scalarInt("PRAGMA application_id") ?? 0
            hasTable = try db.scalarInt(
                "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'mesh_schema_migrations'") == 1
        } catch {
            throw classifyOpenError(error, path: db.path)
        }
        guard appID == Int64(Self.applicationID), hasTable else {
            throw JournalError(.notAMeshJournal,
                "\(db.path) is an SQLite database but not a Mesh journal (application_id \(appID), \(objectCount) schema objects); refusing to touch it")
        }
        var applied: [Applied] = []
        do {
            let statement = try db.prepare("SELECT id, name, checksum, applied_at FROM mesh_schema_migrations ORDER BY id")
            while try statement.step() {
                applied.append(Applied(id: statement.int(0), name: statement.text(1), checksum: statement.text(2),
                                       appliedAtMs: statement.int64(3)))
            }
        } catch {
            throw classifyOpenError(error, path: db.path)
        }
        let known = Dictionary(uniqueKeysWithValues: migrations.map { ($0.id, $0) })
        for (position, record) in applied.enumerated() {
            guard let migration = known[record.id] else {
                throw JournalError(.newerVersion,
                    "\(db.path) has schema migration \(record.id) (\(record.name)) but this build knows only up to \(migrations.last?.id ?? 0); use a newer Mesh")
            }
            guard Self.checksum(migration.sql) == record.checksum else {
                throw JournalError(.migrationChanged,
                    "\(db.path): migration \(record.id) (\(record.name)) was applied with checksum \(record.checksum) but this build's copy has \(Self.checksum(migration.sql)); released migrations must never change")
            }
            guard position < migrations.count, migrations[position].id == record.id else {
                throw JournalError(.migrationChanged,
                    "\(db.path): applied migrations are not a prefix of this build's list (found \(record.id) at position \(position + 1))")
            }
        }
        return Status(applied: applied, pending: Array(migrations.dropFirst(applied.count)), isEmptyDatabase: false)
    }

    /// Applies every pending migration. Safe against another process migrating at the same time: each
    /// migration re-checks, under the write lock, that it is still pending.
    package func migrate(_ db: SQLiteConnection, nowMs: Int64) throws(JournalError) -> [Migration] {
        var appliedNow: [Migration] = []
        for migration in try status(db).pending {
            do {
                try db.execute("BEGIN IMMEDIATE")
                let alreadyApplied = try db.scalarInt(
                    "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'mesh_schema_migrations'") == 1
                    && (try db.scalarInt("SELECT count(*) FROM mesh_schema_migrations WHERE id = \(migration.id)") ?? 0) > 0
                if alreadyApplied {
                    try db.execute("COMMIT")
                    continue
                }
                try db.execute("""
                    CREATE TABLE IF NOT EXISTS mesh_schema_migrations (
                        id INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL
                    ) STRICT;
                    PRAGMA application_id = \(Self.applicationID);
                    """)
                try db.execute(migration.sql)
                let insert = try db.prepare("INSERT INTO mesh_schema_migrations(id, name, checksum, applied_at) VALUES (?, ?, ?, ?)")
                try insert.bind(1, migration.id)
                try insert.bind(2, migration.name)
                try insert.bind(3, Self.checksum(migration.sql))
                try insert.bind(4, nowMs)
                try insert.step()
                try db.execute("PRAGMA user_version = \(migration.id)")
                Failpoint.pass("migration.during")
                try db.execute("COMMIT")
                appliedNow.append(migration)
            } catch let error as SQLiteError {
                if !db.isAutocommit { try? db.execute("ROLLBACK") }
                throw JournalError(error, context: "applying migration \(migration.name) to \(db.path)")
            } catch {
                if !db.isAutocommit { try? db.execute("ROLLBACK") }
                throw JournalError(.sqlite, "applying migration \(migration.name) to \(db.path): \(error)")
            }
        }
        return appliedNow
    }

    private func classifyOpenError(_ error: SQLiteError, path: String) -> JournalError {
        switch error.primaryCode {
        case SQLiteError.notADatabase:
            JournalError(.notSQLite, "\(path) is not an SQLite database (\(error.message)); refusing to touch it", underlying: error)
        case SQLiteError.corrupt:
            JournalError(.corrupt, "\(path) is corrupt (\(error.message)); refusing to use it", underlying: error)
        default:
            JournalError(error, context: "reading \(path)")
        }
    }
}
