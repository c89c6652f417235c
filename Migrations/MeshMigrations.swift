// The ordered list of schema migrations. Each .sql file in this folder is embedded in code by SwiftPM
// (`.embedInCode` in Package.swift), so no resource bundle is needed at run time.

/// One schema migration: an identifier that orders it and the SQL it runs.
public struct Migration: Sendable, Hashable {
    /// The number that orders migrations (the `NNNN` of the file name).
    public let id: Int
    /// The file name the SQL came from, for messages (`0001_journal_v1.sql`).
    public let name: String
    /// The SQL script.
    public let sql: String

    /// Creates a migration.
    public init(id: Int, name: String, sql: String) {
        self.id = id
        self.name = name
        self.sql = sql
    }
}

/// The migrations this build knows, in order.
public enum MeshMigrations {
    /// Every migration, ascending by ``Migration/id``.
    public static let all: [Migration] = [
        Migration(id: 1, name: "0001_journal_v1.sql", sql: text(PackageResources._001_journal_v1_sql)),
        Migration(id: 2, name: "0002_narrow_state.sql", sql: text(PackageResources._002_narrow_state_sql)),
        Migration(id: 3, name: "0003_fewer_pages_per_commit.sql", sql: text(PackageResources._003_fewer_pages_per_commit_sql)),
        Migration(id: 4, name: "0004_error_responses.sql", sql: text(PackageResources._004_error_responses_sql)),
        Migration(id: 5, name: "0005_open_set_without_in.sql", sql: text(PackageResources._005_open_set_without_in_sql)),
        Migration(id: 6, name: "0006_answered_requests.sql", sql: text(PackageResources._006_answered_requests_sql)),
        Migration(id: 7, name: "0007_shared_data.sql", sql: text(PackageResources._007_shared_data_sql)),
        Migration(id: 8, name: "0008_time_by_row_order.sql", sql: text(PackageResources._008_time_by_row_order_sql)),
        Migration(id: 9, name: "0009_compact_invocations.sql", sql: text(PackageResources._009_compact_invocations_sql)),
        Migration(id: 10, name: "0010_pending_by_sequence.sql", sql: text(PackageResources._010_pending_by_sequence_sql)),
        Migration(id: 11, name: "0011_pending_without_state_row.sql", sql: text(PackageResources._011_pending_without_state_row_sql)),
        Migration(id: 12, name: "0012_received_without_state_row.sql", sql: text(PackageResources._012_received_without_state_row_sql)),
        Migration(id: 13, name: "0013_persisted_floors.sql", sql: text(PackageResources._013_persisted_floors_sql)),
        Migration(id: 14, name: "0014_reserved_sequences.sql", sql: text(PackageResources._014_reserved_sequences_sql)),
    ]

    /// The highest migration id this build knows: the schema version it writes.
    public static var latestID: Int { all.last?.id ?? 0 }

    private static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }
}
