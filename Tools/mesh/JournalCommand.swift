import ArgumentParser
import Foundation
import Logging
import MeshJournal

/// `mesh journal …`: inspection of a journal file (read-only).
struct JournalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal", abstract: "Inspect and maintain a journal (read-only unless the subcommand's purpose is to change it).",
        subcommands: [JournalStats.self, JournalTail.self, JournalShow.self, JournalDead.self, JournalRequeue.self, JournalPrune.self,
                      JournalVerify.self, JournalMigrate.self])
}

/// Opens a journal read-only after checking it is a Mesh journal, never creating or changing it, and returns
/// its migration state. With `check`, SQLite's quick check runs first (within the budget a node uses at open,
/// ``JournalConfiguration/openCheckMilliseconds``): a damaged journal is refused instead of being summarised
/// from whatever pages still read.
func inspectJournal(_ path: String, check: Bool = true) throws -> (db: SQLiteConnection, status: Migrator.Status) {
    guard FileManager.default.fileExists(atPath: path) else { throw CLIError("\(path): no such file") }
    let db: SQLiteConnection
    do {
        db = try SQLiteConnection(path: path, mode: .readOnly)
        try db.execute("PRAGMA busy_timeout = 5000")
    } catch {
        throw CLIError("\(path): cannot open: \(error.message)")
    }
    let status: Migrator.Status
    do {
        status = try Migrator().status(db)
    } catch {
        throw CLIError(error.description)
    }
    guard !status.isEmptyDatabase else {
        throw CLIError("\(path): not a Mesh journal (an empty SQLite database: no journal was ever created in it)")
    }
    if check {
        switch try db.quickCheck(budgetMilliseconds: JournalConfiguration().openCheckMilliseconds) {
        case .ok, .incomplete: break
        case .corrupt(let problems): throw corruptJournal(path, problems.prefix(3).joined(separator: "; "))
        }
    }
    return (db, status)
}

/// The one-line error of a tool that met a damaged journal.
func corruptJournal(_ path: String, _ detail: String) -> CLIError {
    CLIError("\(path) is corrupt (\(detail)): `mesh journal verify \(path)` lists the damage; restore a backup or move the file aside")
}

/// ``inspectJournal(_:)`` for the commands that only read.
func openForInspection(_ path: String) throws -> SQLiteConnection {
    try inspectJournal(path).db
}

struct JournalStats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "stats", abstract: "Counts per direction and status, per command, and the oldest pending message.")

    @Argument(help: "The journal file.") var file: String
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        let db = try openForInspection(file)
        var counts: [String: Int] = [:]
        for row in try db.rows("SELECT direction || '.' || status, count(*) FROM mesh_messages GROUP BY 1") {
            counts[row[0] ?? "?"] = Int(row[1] ?? "0") ?? 0
        }
        let perCommand = try db.rows("SELECT direction, command_id, count(*) FROM mesh_messages GROUP BY 1, 2 ORDER BY 1, 2")
        let oldestPending = try db.scalarText("SELECT min(created_at) FROM mesh_messages WHERE direction = 'out' AND status = 'pending'")
        let node = try db.rows("SELECT node_id, boot_epoch FROM mesh_node").first
        if json {
            let object: [String: Any] = [
                "node_id": node?[0] ?? "", "boot_epoch": Int(node?[1] ?? "0") ?? 0, "counts": counts,
                "oldest_pending": oldestPending ?? NSNull(),
                "per_command": perCommand.map { ["direction": $0[0] ?? "", "command_id": Int($0[1] ?? "0") ?? 0, "messages": Int($0[2] ?? "0") ?? 0] },
            ]
            try printJSON(object)
            return
        }
        print("node \(node?[0] ?? "?") epoch \(node?[1] ?? "?")")
        for key in counts.keys.sorted() { print("  \(key): \(counts[key]!)") }
        for row in perCommand { print("  \(row[0] ?? "?") command \(row[1] ?? "?"): \(row[2] ?? "0")") }
        print("  oldest pending: \(oldestPending ?? "none")")
    }
}

struct JournalVerify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "verify", abstract: "SQLite integrity check plus Mesh invariants.")

    @Argument(help: "The journal file.") var file: String

    func run() async throws {
        let (db, status) = try inspectJournal(file, check: false)
        var problems: [String] = []
        switch Result(catching: { () throws(SQLiteError) in try db.rows("PRAGMA integrity_check").compactMap { $0[0] } }) {
        case .success(let integrity):
            if integrity != ["ok"] { problems.append("integrity_check: " + integrity.prefix(5).joined(separator: "; ")) }
        case .failure(let error) where error.primaryCode == SQLiteError.corrupt:
            // So damaged that the check itself cannot read it: that is the finding, not a tool failure.
            FileHandle.standardError.write(Data("problem: integrity_check: \(error.message)\n".utf8))
            throw ExitCode.failure
        case .failure(let error):
            throw error
        }
        if !(try db.rows("PRAGMA foreign_key_check")).isEmpty { problems.append("foreign keys violated") }
        // Sequences are never reused: the highest one lives on in mesh_node when rows are deleted (a trigger).
        let keeper = try db.scalarInt("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = 'mesh_outbound_keeps_last_seq'") ?? 0
        if keeper != 1 { problems.append("trigger mesh_outbound_keeps_last_seq is missing: message ids could be reused after deletes") }
        // Since schema v13 (a journal not yet migrated to it keeps SQLite's ids until it is).
        let inboundKeeper = try db.scalarInt("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = 'mesh_inbound_keeps_last_id'") ?? 0
        if status.applied.contains(where: { $0.id >= 13 }) && inboundKeeper != 1 { problems.append("trigger mesh_inbound_keeps_last_id is missing: inbound ids could be reused after deletes") }
        let unfinished = try db.scalarInt("SELECT count(*) FROM mesh_invocation WHERE finished_at IS NULL") ?? 0
        let badAcks = try db.scalarInt("SELECT count(*) FROM mesh_outbound_state WHERE status <> 0 AND completed_at IS NULL") ?? 0
        if badAcks > 0 { problems.append("\(badAcks) finished outbound messages without completed_at") }
        if problems.isEmpty {
            print("ok (\(unfinished) invocations in flight or interrupted; they are re-run at the next start)")
        } else {
            for p in problems { FileHandle.standardError.write(Data("problem: \(p)\n".utf8)) }
            throw ExitCode.failure
        }
    }
}
