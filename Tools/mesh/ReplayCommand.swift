import ArgumentParser
import Foundation
import Mesh
import MeshCore
import MeshJournal

/// `mesh replay`: re-drives recorded traffic from a journal (opened read-only) to a live node.
struct ReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Re-drive recorded messages from a journal to a live node (new traffic, replay_of = the original id).",
        discussion: """
            The source journal is opened read-only. Messages are sent by a short-lived node with its own journal \
            (--sender-journal, default a temporary file), in their recorded order. Responses are never re-driven. \
            Exit 0 when every re-driven message is acknowledged.
            """)

    enum Direction: String, ExpressibleByArgument, CaseIterable { case `in`, out }

    @Option(help: "The journal whose traffic is re-driven (read-only).") var journal: String
    @Option(help: "Receiver, HOST:PORT.") var to: String
    @Option(help: "Only these command IDs (repeatable; default all).") var command: [UInt16] = []
    @Option(help: "Re-drive what the journal received (in) or sent (out).") var direction: Direction = .in
    @Option(help: "Only messages journaled at or after TIME (ISO-8601, e.g. 2026-11-25T06:00:00Z, or Unix ms).") var since: String?
    @Option(help: "Only messages journaled at or before TIME.") var until: String?
    @Option(help: "max (no pauses), original (the recorded gaps), or a FACTOR that divides the recorded gaps.") var speed = "max"
    @Flag(help: "Print what would be sent (count per command ID, time span) and send nothing.") var dryRun = false
    @Option(help: "At most N messages.") var limit: Int?
    @Option(help: "Journal of the sending node (default a temporary file).") var senderJournal: String?
    @OptionGroup var client: ClientOptions

    func validate() throws {
        _ = try Self.speedFactor(speed)
        if let since { _ = try Self.parseTime(since, "--since") }
        if let until { _ = try Self.parseTime(until, "--until") }
        if let limit, limit < 1 { throw ValidationError("--limit must be at least 1") }
        do { _ = try MeshAddress.parse(to) } catch { throw ValidationError("--to: \(error.message)") }
    }

    struct Recorded {
        let commandID: UInt16
        let kind: MessageKind
        let payload: [UInt8]
        let messageID: String
        let createdAtMs: Int64
    }

    func run() async throws {
        let source = try openForInspection(journal)
        let fromMs = try since.map { try Self.parseTime($0, "--since") } ?? 0
        let toMs = try until.map { try Self.parseTime($0, "--until") } ?? Int64.max
        let commands = command.isEmpty ? "" : "AND command_id IN (\(command.map(String.init).joined(separator: ",")))"
        // The time range as a range of ids first (rows are in journal order; the tables have no time index).
        let table: Journal.MessageTable = direction == .in ? .inbound : .outbound
        let firstID = fromMs <= 0 ? 0 : try Journal.firstKey(createdAtOrAfter: fromMs, in: table, source)
        let endID = toMs == .max ? Int64.max : try Journal.firstKey(createdAtOrAfter: toMs + 1, in: table, source)
        let statement = try source.prepare("""
            SELECT command_id, kind, payload, message_id, created_at_ms FROM mesh_messages
            WHERE direction = '\(direction.rawValue)' AND kind <> 'response' \(commands)
              AND id >= ? AND id < ? AND created_at_ms BETWEEN ? AND ?
            ORDER BY created_at_ms, id LIMIT ?
            """)
        try statement.bind(1, firstID)
        try statement.bind(2, endID)
        try statement.bind(3, fromMs)
        try statement.bind(4, toMs)
        try statement.bind(5, limit ?? Int.max)
        var messages: [Recorded] = []
        while try statement.step() {
            let kind: MessageKind = switch statement.text(1) { case "usend": .usend; case "request": .request; default: .send }
            messages.append(Recorded(commandID: UInt16(truncatingIfNeeded: statement.int64(0)), kind: kind, payload: statement.blob(2),
                                     messageID: statement.text(3), createdAtMs: statement.int64(4)))
        }
        let perCommand = Dictionary(grouping: messages, by: \.commandID).mapValues(\.count)
        if dryRun {
            if client.json {
                let object: [String: Any] = [
                    "messages": messages.count, "per_command": perCommand.map { ["command_id": Int($0.key), "messages": $0.value] },
                    "first_ms": messages.first?.createdAtMs ?? NSNull(), "last_ms": messages.last?.createdAtMs ?? NSNull(),
                ]
                try printJSON(object)
            } else {
                print("would re-drive \(messages.count) messages to \(to)")
                for (id, n) in perCommand.sorted(by: { $0.key < $1.key }) { print("  command \(id): \(n)") }
                if let first = messages.first, let last = messages.last {
                    print("  recorded from \(Self.iso(first.createdAtMs)) to \(Self.iso(last.createdAtMs))")
                }
            }
            return
        }
        let factor = try Self.speedFactor(speed)
        let node = try await client.startNode(journal: try senderJournal ?? ClientOptions.temporaryJournal("replay"))
        let started = ContinuousClock.now
        var progress = Progress("re-driving", total: messages.count, quiet: client.quiet || client.json)
        do {
            for (index, message) in messages.enumerated() {
                progress.update(index)
                if let factor, let first = messages.first {
                    let due = started + .milliseconds(Int64(Double(message.createdAtMs - first.createdAtMs) / factor))
                    if due > .now { try await Task.sleep(until: due) }
                }
                _ = try await node.redrive(message.commandID, kind: message.kind, payload: message.payload, replayOf: message.messageID, to: to)
            }
        } catch {
            progress.finish()
            await node.shutdown()
            throw CLIError("re-driving stopped: \(error)")
        }
        progress.finish()
        let drained = try await ClientOptions.waitForNoPending(node, timeout: client.timeout)
        let (acked, failed) = try await node.journal.read { db in
            (try db.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND replay_of IS NOT NULL AND status = 'acked'") ?? 0,
             try db.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND replay_of IS NOT NULL AND status = 'failed'") ?? 0)
        }
        let journalPath = node.journal.path
        await node.shutdown()
        if client.json {
            let object: [String: Any] = ["messages": messages.count, "acked": acked, "failed": failed, "sender_journal": journalPath,
                                         "per_command": perCommand.map { ["command_id": Int($0.key), "messages": $0.value] }]
            try printJSON(object)
        } else if !client.quiet {
            print("re-drove \(messages.count) messages to \(to): acked \(acked), failed \(failed); sender journal \(journalPath)")
        }
        if !drained { throw CLIError("messages still unacknowledged after \(client.timeout) s") }
        if failed > 0 { throw CLIError("\(failed) re-driven messages failed") }
    }

    /// nil for `max`, 1 for `original`, else the factor.
    static func speedFactor(_ text: String) throws -> Double? {
        switch text {
        case "max": return nil
        case "original": return 1
        default:
            guard let factor = Double(text), factor > 0, factor.isFinite else {
                throw ValidationError("--speed must be max, original or a positive factor (got \(text))")
            }
            return factor
        }
    }

    static func parseTime(_ text: String, _ flag: String) throws -> Int64 {
        if let ms = Int64(text) { return ms }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let date = formatter.date(from: text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        formatter.formatOptions = [.withInternetDateTime]
        if let date = formatter.date(from: text) { return Int64((date.timeIntervalSince1970 * 1000).rounded()) }
        throw ValidationError("\(flag): not an ISO-8601 time or Unix milliseconds: \(text)")
    }

    static func iso(_ ms: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date(timeIntervalSince1970: Double(ms) / 1000))
    }
}
