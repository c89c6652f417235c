import Foundation
import MeshCore
import MeshMigrations
import Testing
@testable import MeshJournal

@Suite struct SchemaTests {
    static let repositoryRoot: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return url.path
    }()

    @Test func everyMigrationFileIsRegisteredInOrder() throws {
        let dir = Self.repositoryRoot + "/Migrations"
        let files = try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasSuffix(".sql") }.sorted()
        #expect(!files.isEmpty)
        #expect(MeshMigrations.all.map(\.name) == files)
        let manifest = try String(contentsOfFile: Self.repositoryRoot + "/Package.swift", encoding: .utf8)
        for (index, migration) in MeshMigrations.all.enumerated() {
            #expect(manifest.contains(".embedInCode(\"\(migration.name)\")"), "\(migration.name) missing from Package.swift")
            #expect(migration.name.hasPrefix(String(format: "%04d_", migration.id)))
            let onDisk = try String(contentsOfFile: dir + "/" + migration.name, encoding: .utf8)
            #expect(onDisk == migration.sql, "embedded copy of \(migration.name) is stale")
            if index > 0 { #expect(migration.id > MeshMigrations.all[index - 1].id) }
        }
    }

    @Test func auditViewsHaveTheContractColumns() async throws {
        try await withJournal { journal, _ in
            try await journal.read { db in
                let messages = try db.columnNames("mesh_messages")
                for column in ["id", "direction", "message_id", "command_id", "kind", "peer", "status", "attempts",
                               "created_at", "completed_at", "payload", "payload_json", "correlation_id", "replay_of"] {
                    #expect(messages.contains(column), "mesh_messages lacks \(column)")
                }
                let invocations = try db.columnNames("mesh_invocations")
                for column in ["message_id", "command_id", "handler_index", "attempt", "started_at", "finished_at",
                               "outcome", "error", "response_json", "replay_run"] {
                    #expect(invocations.contains(column), "mesh_invocations lacks \(column)")
                }
            }
        }
    }

    @Test func viewsRenderStatusesTimesIDsAndJSON() async throws {
        try await withJournal { journal, _ in
            var schedule = DataCapsule()
            schedule.setAsArray("appointments", [DataCapsule(["date": "01/01/2022", "title": "New Year Party"])])
            let data: MeshData = ["myName": "Jon", "mySchedule": .bytes(try schedule.pack())]
            let seq = try await journal.appendOutbound(OutboundMessage(commandID: 1024, kind: .request, peer: "127.0.0.1:8001", data: data))
            _ = try await journal.appendOutbound(OutboundMessage(commandID: 1024, kind: .usend, peer: "127.0.0.1:8001", data: data))
            try await journal.markOutboundAcked([seq])
            _ = try await journal.appendInbound([InboundMessage(
                originNode: JournalWriteTests.peerNode, originSeq: 77, commandID: 1024, kind: .response, peer: "127.0.0.1:8001",
                payload: try MeshCodec.encode(["ok": true]), correlationID: "\(journal.identity.nodeID):\(seq)", status: .unhandled)])

            let rows = try await journal.read { db in
                try db.rows("""
                    SELECT direction, message_id, kind, status, json_extract(payload_json, '$.myName'), created_at, completed_at,
                           correlation_id
                    FROM mesh_messages ORDER BY direction DESC, id
                    """)
            }
            #expect(rows.count == 3)
            #expect(rows[0][0] == "out" && rows[0][1] == "\(journal.identity.nodeID):1" && rows[0][2] == "request")
            #expect(rows[0][3] == "acked" && rows[0][4] == "Jon")
            #expect(rows[1][2] == "usend" && rows[1][3] == "pending" && rows[1][6] == nil)
            #expect(rows[2][0] == "in" && rows[2][1] == "\(JournalWriteTests.peerNode):77" && rows[2][3] == "unhandled")
            #expect(rows[2][7] == "\(journal.identity.nodeID):1")
            let iso = try #require(rows[0][5])
            #expect(iso.range(of: #"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$"#, options: .regularExpression) != nil, "\(iso)")
            // Bytes render as base64 in payload_json.
            let base64 = try await journal.read { db in
                try db.scalarText("SELECT json_extract(payload_json, '$.mySchedule') FROM mesh_messages WHERE id = 1 AND direction = 'out'")
            }
            #expect(base64.flatMap(Base64.decode) == (try schedule.pack()))
        }
    }

    @Test func timeRenderingIsExactToTheMillisecond() async throws {
        try await withJournal { journal, _ in
            let rendered = try await journal.read { db in
                try db.rows("""
                    SELECT strftime('%Y-%m-%dT%H:%M:%fZ', ms / 1000.0, 'unixepoch') FROM (
                      SELECT 1764045296001 AS ms UNION ALL SELECT 1764045296999 UNION ALL SELECT 1764045296000 UNION ALL SELECT 0)
                    """).map { $0[0] }
            }
            #expect(rendered == ["2025-11-25T04:34:56.001Z", "2025-11-25T04:34:56.999Z", "2025-11-25T04:34:56.000Z", "1970-01-01T00:00:00.000Z"])
        }
    }

    @Test func hotPathWritesBuildNoTemporaryBTrees() async throws {
        // A partial index whose predicate uses IN made SQLite build a temporary B-tree (OpenEphemeral) at every
        // insert and update of the indexed table, i.e. several times per received message (schema v5 fixed it).
        try await withJournal { journal, _ in
            let (inPredicates, programs) = try await journal.read { db in
                (try db.rows("SELECT name FROM sqlite_schema WHERE type = 'index' AND sql LIKE '%WHERE%' AND upper(sql) LIKE '% IN (%'"),
                 try [
                    "INSERT INTO mesh_inbound_state(id, command_id, status, attempts, completed_at) VALUES (1, 1, 0, 0, NULL)",
                    "UPDATE mesh_inbound_state SET status = 1, attempts = 1, error = NULL, completed_at = 5 WHERE id = 1",
                    Journal.outboundAckedSQL,
                    Journal.outboundFailedSQL,
                    Journal.outboundAttemptSQL,
                 ].map { sql in (sql, try db.rows("EXPLAIN " + sql).map { $0[1] ?? "" }) })
            }
            #expect(inPredicates.isEmpty, "partial indexes with IN: \(inPredicates)")
            for (sql, opcodes) in programs {
                #expect(!opcodes.isEmpty)
                #expect(!opcodes.contains("OpenEphemeral"), "\(sql) builds a temporary B-tree")
            }
        }
    }

    @Test func hotPathQueriesUseTheirIndexes() async throws {
        try await withJournal { journal, _ in
            let plans = try await journal.read { db in
                [
                    try db.rows("EXPLAIN QUERY PLAN " + Journal.UnsettledTables.outbound.statesSQL),
                    try db.rows("EXPLAIN QUERY PLAN " + Journal.openStateRowsSQL(byCommandID: true)),
                    try db.rows("EXPLAIN QUERY PLAN SELECT i.id, s.status FROM mesh_inbound i JOIN mesh_inbound_state s ON s.id = i.id WHERE i.origin = 1 AND i.origin_seq = 2"),
                    try db.rows("EXPLAIN QUERY PLAN " + Journal.outboundAckedSQL),
                    try db.rows("EXPLAIN QUERY PLAN " + Journal.UnsettledTables.outbound.gapSQL),
                    try db.rows("EXPLAIN QUERY PLAN " + Journal.distinctCommandIDs(table: "mesh_inbound_state", open: Journal.openPredicate())),
                    try db.rows("EXPLAIN QUERY PLAN SELECT s.seq FROM mesh_outbound_state s JOIN mesh_outbound o ON o.seq = s.seq WHERE s.seq < 7 AND s.status <> 0 AND s.completed_at < 5 AND o.created_at < 5 ORDER BY s.seq LIMIT 10"),
                    try db.rows("EXPLAIN QUERY PLAN SELECT s.id FROM mesh_inbound_state s JOIN mesh_inbound i ON i.id = s.id WHERE s.id < 7 AND s.status = 1 AND s.completed_at < 5 AND i.created_at < 5 ORDER BY s.id LIMIT 10"),
                    try db.rows("EXPLAIN QUERY PLAN SELECT seq, created_at FROM mesh_outbound WHERE seq BETWEEN 3 AND 9 ORDER BY seq LIMIT 1"),
                    try db.rows("EXPLAIN QUERY PLAN " + Journal.UnsettledTables.inbound.statesSQL),
                    try db.rows("EXPLAIN QUERY PLAN " + Journal.UnsettledTables.inbound.gapSQL),
                    try db.rows("EXPLAIN QUERY PLAN " + Journal.openStateRowsSQL(byCommandID: false)),
                ].map { $0.map { $0.last!! }.joined(separator: " | ") }
            }
            // Unsettled messages (pending outbound, received inbound without a state row: schemas v10-v12 have no
            // index of them) go by key from a floor, through the narrow state rows and the gaps between them: no scan.
            for plan in [plans[0], plans[9]] {
                #expect(plan.contains("INTEGER PRIMARY KEY (rowid>?)") && !plan.contains("SCAN"), "\(plan)")
            }
            for plan in [plans[4], plans[10]] {
                #expect(plan.contains("INTEGER PRIMARY KEY (rowid>? AND rowid<?)") && !plan.contains("SCAN"), "\(plan)")
            }
            // Open state rows: through the open index, by command ID.
            #expect(plans[1].contains("mesh_inbound_open") && !plans[1].contains("SCAN"), "\(plans[1])")
            #expect(!plans[11].contains("SCAN mesh_inbound"), "\(plans[11])")
            #expect(plans[2].contains("sqlite_autoindex_mesh_inbound"), "\(plans[2])")
            #expect(plans[3].contains("INTEGER PRIMARY KEY") && !plans[3].contains("SCAN"), "\(plans[3])")
            #expect(plans[5].contains("mesh_inbound_open") && !plans[5].contains("SCAN mesh_inbound_state"), "\(plans[5])")
            // Retention and time ranges go by key (schema v8 has no created_at index): no table scan.
            for plan in plans[6...8] {
                #expect(plan.contains("INTEGER PRIMARY KEY (rowid<?)") || plan.contains("INTEGER PRIMARY KEY (rowid>? AND rowid<?)"), "\(plan)")
                #expect(!plan.contains("SCAN"), "\(plan)")
            }
            for plan in plans { #expect(!plan.contains("TEMP B-TREE"), "sorts instead of using an index: \(plan)") }
        }
    }

    @Test func integrityCheckPassesAfterMixedWork() async throws {
        try await withJournal { journal, _ in
            for i in 0..<100 {
                let seq = try await journal.appendOutbound(OutboundMessage(commandID: UInt16(i % 3), kind: .send, peer: "p", data: ["i": .int64(Int64(i))]))
                if i % 2 == 0 { try await journal.markOutboundAcked([seq]) }
            }
            #expect(try await journal.read { db in try db.scalarText("PRAGMA integrity_check") } == "ok")
            #expect(try await journal.read { db in try db.rows("PRAGMA foreign_key_check") }.isEmpty)
        }
    }
}
