import ArgumentParser
import Foundation
import Mesh
import MeshBench
import MeshCore
import MeshJournal

/// `mesh send`: sends through a short-lived node whose journal first resumes what it never got acknowledged.
struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send messages through a short-lived node; exits 0 once every message of its journal is acknowledged.",
        discussion: """
            The node's journal (--journal, default a new temporary file) is resumed first: every message in it that \
            was never acknowledged is sent again (same message id, so the receiver keeps one copy). Then --count new \
            messages are sent (--count 0 only resumes). Exit 0 when no message of the journal is pending and none of \
            this run failed.
            """)

    @Option(help: "Receiver, HOST:PORT.") var to: String
    @Option(help: "Command ID.") var command: UInt16
    @Option(help: "Message data as a JSON object; `-` reads it from standard input.") var data: String?
    @Option(help: "A file holding the message data as a JSON object (for data beyond the argument-length limit).")
    var dataFile: String?
    @Option(help: "New messages to send (0: only resume the journal).") var count = 1
    @Option(help: "Messages per second (default: as fast as acknowledgements allow).") var rate: Double?
    @Flag(help: "Send requests and print each response as JSON.") var request = false
    @Option(help: "Journal of the sending node (kept, so an interrupted send can be resumed).") var journal: String?
    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard count >= 0 else { throw ValidationError("--count must not be negative") }
        if let rate, !(rate > 0) { throw ValidationError("--rate must be positive") }
        if data != nil && dataFile != nil { throw ValidationError("--data and --data-file exclude each other") }
        if let data, data != "-" { _ = try JSONInput.parse(data) }
        do { _ = try MeshAddress.parse(to) } catch { throw ValidationError("--to: \(error.message)") }
    }

    /// The message data: `--data` (or standard input for `--data -`), `--data-file`, or an empty map.
    func payload() throws -> MeshData {
        let text: String
        switch (data, dataFile) {
        case ("-"?, _):
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        case (let inline?, _):
            text = inline
        case (nil, let file?):
            guard let contents = FileManager.default.contents(atPath: file) else { throw CLIError("cannot read --data-file \(file)") }
            text = String(decoding: contents, as: UTF8.self)
        case (nil, nil):
            return [:]
        }
        return try JSONInput.parse(text)
    }

    func run() async throws {
        let payload = try payload()
        let journalPath = try journal ?? ClientOptions.temporaryJournal("send")
        let node = try await client.startNode(journal: journalPath)
        let started = ContinuousClock.now
        let startedMs = WallClock.nowMs()
        let resumed = try await node.journal.pendingOutboundCount()
        var failures: [String] = []
        var responses: [String] = []
        var sent = 0
        var progress = Progress("sending", total: count, quiet: client.quiet || client.json)
        do {
            for i in 0..<count {
                progress.update(i)
                if let rate {
                    let due = started + .milliseconds(Int64(Double(i) * 1000 / rate))
                    if due > .now { try await Task.sleep(until: due) }
                }
                if request {
                    do {
                        let response = try await node.sendRequest(command, to: to, payload, timeout: .milliseconds(Int64(client.timeout * 1000)))
                        responses.append(MeshJSON.string(from: response))
                        if !client.quiet && !client.json { print(responses.last!) }
                    } catch {
                        failures.append("\(error)")
                    }
                } else {
                    _ = try await node.send(command, to: to, payload)
                }
                sent += 1
            }
        } catch {
            progress.finish()
            await node.shutdown()
            throw CLIError("sending stopped after \(sent) messages: \(error)")
        }
        progress.finish()
        let drained = try await ClientOptions.waitForNoPending(node, timeout: client.timeout)
        let (acked, failed, firstError) = try await node.journal.read { db in
            (try db.scalarInt("SELECT count(*) FROM mesh_outbound_state WHERE status = 1") ?? 0,
             try db.scalarInt("SELECT count(*) FROM mesh_outbound_state WHERE status = 2 AND completed_at >= \(startedMs)") ?? 0,
             try db.scalarText("SELECT error FROM mesh_outbound_state WHERE status = 2 AND completed_at >= \(startedMs) ORDER BY seq LIMIT 1"))
        }
        let seconds = (ContinuousClock.now - started).seconds
        await node.shutdown()
        let rate = Double(sent + Int(resumed)) / max(seconds, 1e-9)
        if client.json {
            let object: [String: Any] = ["sent": sent, "resumed": resumed, "acked": acked, "failed": failed, "seconds": seconds,
                                         "msgs_per_s": rate, "journal": journalPath, "request_failures": failures.count,
                                         "responses": responses.map { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) ?? $0 }]
            try printJSON(object)
        } else if !client.quiet {
            print("sent \(sent) (resumed \(resumed)), acked \(acked) in the journal, failed \(failed), "
                + String(format: "%.0f msgs/s", rate) + "; journal \(journalPath)")
        }
        if !drained { throw CLIError("messages still unacknowledged after \(client.timeout) s (journal \(journalPath); run again to resume)") }
        if failed > 0 {
            throw CLIError("\(failed) messages failed, the first with: \(firstError ?? "?") (every error is in mesh_messages.error of \(journalPath))")
        }
        if let first = failures.first { throw CLIError("\(failures.count) requests failed: \(first)") }
    }
}
