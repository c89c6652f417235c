import ArgumentParser
import Foundation
import MeshJournal
import MeshMigrations

/// Opens a journal for a maintenance write after the same checks as ``openForInspection(_:)``; refuses a
/// journal that needs a migration (run `mesh journal migrate` first).
func openForMaintenance(_ path: String) throws -> SQLiteConnection {
    let status = try inspectJournal(path).status
    guard status.pending.isEmpty else {
        throw CLIError("\(path) needs migration \(status.pending.map(\.name).joined(separator: ", ")): run `mesh journal migrate \(path)` first")
    }
    do {
        let db = try SQLiteConnection(path: path, mode: .readWrite)
        try db.execute("PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON")
        return db
    } catch {
        throw CLIError("\(path): cannot open for writing: \(error.message)")
    }
}

private let listColumns = "direction, message_id, command_id, kind, peer, status, attempts, created_at, error"

private func printRows(_ rows: [[String?]], json: Bool) throws {
    if json {
        let keys = ["direction", "message_id", "command_id", "kind", "peer", "status", "attempts", "created_at", "error"]
        for row in rows {
            var object: [String: Any] = [:]
            for (key, value) in zip(keys, row) { object[key] = value ?? NSNull() }
            try printJSON(object)
        }
    } else {
        for row in rows {
            print(row.prefix(8).map { $0 ?? "-" }.joined(separator: "  ") + (row[8].map { "  error: \($0)" } ?? ""))
        }
    }
}

struct JournalTail: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "tail", abstract: "The latest messages, both directions; --follow prints new ones as they are journaled.")

    @Argument(help: "The journal file.") var file: String
    @Option(name: [.customShort("n"), .long], help: "How many of the latest messages to print first.") var lines = 10
    @Flag(name: .shortAndLong, help: "Keep printing new messages (until interrupted).") var follow = false
    @Flag(help: "One JSON object per line.") var json = false

    func run() async throws {
        let db = try openForInspection(file)
        // One snapshot for the latest rows and the ids to follow from: a message journaled in between is printed
        // once, by the follow loop (it was once missed: neither in the latest rows nor after the ids).
        try db.execute("BEGIN")
        var rows = try db.rows("""
            SELECT \(listColumns), created_at_ms FROM mesh_messages ORDER BY created_at_ms DESC, id DESC LIMIT \(max(lines, 0))
            """).reversed().map { $0 }
        var lastOut = try db.scalarInt("SELECT coalesce(max(seq), 0) FROM mesh_outbound") ?? 0
        var lastIn = try db.scalarInt("SELECT coalesce(max(id), 0) FROM mesh_inbound") ?? 0
        try db.execute("COMMIT")
        try printRows(rows.map { Array($0.prefix(9)) }, json: json)
        guard follow else { return }
        while !Task.isCancelled {
            try await Task.sleep(for: .milliseconds(200))
            rows = try db.rows("""
                SELECT \(listColumns), id FROM mesh_messages
                WHERE (direction = 'out' AND id > \(lastOut)) OR (direction = 'in' AND id > \(lastIn)) ORDER BY created_at_ms, id
                """)
            for row in rows {
                let id = Int64(row[9] ?? "0") ?? 0
                if row[0] == "out" { lastOut = max(lastOut, id) } else { lastIn = max(lastIn, id) }
            }
            try printRows(rows.map { Array($0.prefix(9)) }, json: json)
            fflush(nil)
        }
    }
}

struct JournalShow: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One message (by message id, NODE:SEQ) with its handler invocations.")

    @Argument(help: "The journal file.") var file: String
    @Argument(help: "The message id, as in mesh_messages.message_id.") var messageID: String
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        let db = try openForInspection(file)
        let escaped = messageID.replacingOccurrences(of: "'", with: "''")
        let columns = ["direction", "message_id", "command_id", "kind", "peer", "status", "attempts", "created_at", "completed_at",
                       "correlation_id", "replay_of", "relay", "error", "payload_json"]
        let messages = try db.rows("SELECT \(columns.joined(separator: ", ")) FROM mesh_messages WHERE message_id = '\(escaped)' ORDER BY direction")
        guard !messages.isEmpty else { throw CLIError("no message \(messageID) in \(file)") }
        let invocationColumns = ["handler_index", "attempt", "started_at", "finished_at", "outcome", "error", "response_json", "replay_run"]
        let invocations = try db.rows("SELECT \(invocationColumns.joined(separator: ", ")) FROM mesh_invocations WHERE message_id = '\(escaped)' ORDER BY id")
        if json {
            func object(_ keys: [String], _ row: [String?]) -> [String: Any] {
                Dictionary(uniqueKeysWithValues: zip(keys, row).map { ($0, $1 as Any? ?? NSNull()) })
            }
            try printJSON(["messages": messages.map { object(columns, $0) }, "invocations": invocations.map { object(invocationColumns, $0) }])
            return
        }
        for row in messages {
            for (key, value) in zip(columns, row) where value != nil { print("\(key): \(value!)") }
            print("")
        }
        for row in invocations {
            print("invocation: " + zip(invocationColumns, row).compactMap { k, v in v.map { "\(k)=\($0)" } }.joined(separator: " "))
        }
    }
}

struct JournalDead: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "dead", abstract: "Dead-lettered messages (handlers failed every attempt).")

    @Argument(help: "The journal file.") var file: String
    @Option(help: "Only this command ID.") var command: UInt16?
    @Flag(help: "One JSON object per line.") var json = false

    func run() async throws {
        let db = try openForInspection(file)
        let filter = command.map { "AND command_id = \($0)" } ?? ""
        let rows = try db.rows("SELECT \(listColumns), id FROM mesh_messages WHERE direction = 'in' AND status = 'dead' \(filter) ORDER BY id")
        if json {
            try printRows(rows.map { Array($0.prefix(9)) }, json: true)
        } else {
            for row in rows { print("row \(row[9] ?? "?")  " + row.prefix(8).map { $0 ?? "-" }.joined(separator: "  ") + "  error: \(row[8] ?? "-")") }
            if rows.isEmpty { print("no dead messages") }
        }
    }
}

struct JournalRequeue: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "requeue",
        abstract: "Put dead messages back in their queue (attempts reset); a node dispatches them at its next start.",
        discussion: "On a running node, use MeshNode.requeueDead(_:) instead: this command changes the file, and the node picks the messages up when it starts again.")

    @Argument(help: "The journal file.") var file: String
    @Argument(help: "Inbound row ids (see `mesh journal dead`).") var ids: [Int64] = []
    @Flag(help: "Every dead message (of --command, if given).") var all = false
    @Option(help: "With --all: only this command ID.") var command: UInt16?

    func validate() throws {
        if ids.isEmpty && !all { throw ValidationError("name row ids or pass --all") }
        if !ids.isEmpty && all { throw ValidationError("row ids and --all exclude each other") }
    }

    func run() async throws {
        let db = try openForMaintenance(file)
        var targets = ids
        if all {
            let filter = command.map { "AND command_id = \($0)" } ?? ""
            targets = try db.rows("SELECT id FROM mesh_inbound_state WHERE status = 3 \(filter) ORDER BY id").compactMap { $0[0].flatMap { Int64($0) } }
        }
        try db.execute("BEGIN IMMEDIATE")
        let changed: [Int64]
        do {
            changed = try Journal.requeueDead(db, ids: targets)
            try db.execute("COMMIT")
        } catch {
            try? db.execute("ROLLBACK")
            throw CLIError("\(file): \(error)")
        }
        print("re-queued \(changed.count) of \(targets.count) messages")
        if changed.count < targets.count && !all {
            throw CLIError("\(targets.count - changed.count) of the given rows are not dead messages")
        }
    }
}

struct JournalPrune: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete finished messages (acked/failed out, handled in) that completed before an age; pending, open and dead ones stay.")

    @Argument(help: "The journal file.") var file: String
    @Option(help: "Age such as 30d, 12h, 15m, 90s.") var olderThan: String
    @Flag(help: "Count what would be deleted, delete nothing.") var dryRun = false

    func validate() throws { _ = try Self.milliseconds(olderThan) }

    static func milliseconds(_ text: String) throws -> Int64 {
        let units: [Character: Int64] = ["d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000]
        guard let unit = text.last, let scale = units[unit], let value = Int64(text.dropLast()), value >= 0 else {
            throw ValidationError("--older-than must be a number with d, h, m or s (got \(text))")
        }
        return value * scale
    }

    func run() async throws {
        let cutoff = WallClock.nowMs() - (try Self.milliseconds(olderThan))
        if dryRun {
            let db = try openForInspection(file)
            let out = try db.scalarInt("SELECT count(*) FROM mesh_outbound_state WHERE status <> 0 AND completed_at < \(cutoff)") ?? 0
            let inbound = try db.scalarInt("SELECT count(*) FROM mesh_inbound_state WHERE status = 1 AND completed_at < \(cutoff)") ?? 0
            print("would prune \(out) outbound and \(inbound) inbound messages")
            return
        }
        let db = try openForMaintenance(file)
        var total = PruneResult(outbound: 0, inbound: 0)
        while true {
            let pass: PruneResult
            do {
                try db.execute("BEGIN IMMEDIATE")
                pass = try Journal.pruneFinished(db, completedBeforeMs: cutoff, batchSize: 1000)
                try db.execute("COMMIT")
            } catch {
                try? db.execute("ROLLBACK")
                throw CLIError("\(file): pruning failed after \(total.outbound + total.inbound) messages: \(error)")
            }
            total.outbound += pass.outbound
            total.inbound += pass.inbound
            if pass.outbound + pass.inbound == 0 { break }
        }
        _ = try? db.rows("PRAGMA wal_checkpoint(PASSIVE)")
        print("pruned \(total.outbound) outbound and \(total.inbound) inbound messages")
    }
}

struct JournalMigrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "migrate", abstract: "Show (--status) or apply the journal's pending schema migrations.")

    @Argument(help: "The journal file.") var file: String
    @Flag(help: "Show applied and pending migrations, change nothing.") var status = false

    func run() async throws {
        let state = try inspectJournal(file).status
        if status {
            for applied in state.applied { print("applied  \(applied.name)") }
            for pending in state.pending { print("pending  \(pending.name)") }
            return
        }
        guard !state.pending.isEmpty else {
            print("up to date (\(state.applied.count) migrations applied)")
            return
        }
        // A schema change under a running node is refused: migrations take the journal's owner lock.
        let lock: JournalLock
        do {
            lock = try await JournalLock.acquire(journalPath: file, nowMs: WallClock.nowMs(), patience: .seconds(2))
        } catch {
            throw CLIError((error as? JournalError)?.message ?? "\(error)")
        }
        defer { lock.release() }
        do {
            let writer = try SQLiteConnection(path: file, mode: .readWrite)
            try writer.execute("PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON")
            let applied = try Migrator().migrate(writer, nowMs: WallClock.nowMs())
            writer.close()
            print("applied \(applied.map(\.name).joined(separator: ", "))")
        } catch {
            throw CLIError("\(file): \(error)")
        }
    }
}
