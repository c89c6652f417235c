import ArgumentParser
import Foundation
import Logging
import MeshCore
import MeshJournal

/// `mesh demo`: the seed scenario, end to end, with the audit queries an operator would run.
///
/// Until the transport and node land, the demo plays both nodes' journals in one process: A journals the
/// message before it would send it, B journals it before it would acknowledge it and records its handler's
/// invocation, A marks it acknowledged. The journals and the SQL are the real ones.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Run the seed scenario on fresh journals and print audit queries.")

    @Option(help: "Directory for the journals (default: a new temporary folder).") var dir: String?

    func run() async throws {
        let folder = try dir ?? makeTemporaryFolder()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var logger = Logger(label: "mesh.demo")
        logger.logLevel = .warning
        print("journals in \(folder)")

        let a = try await Journal.open(path: folder + "/a.sqlite", logger: logger)
        let b = try await Journal.open(path: folder + "/b.sqlite", logger: logger)
        defer { print("\njournals:\n  \(folder)/a.sqlite\n  \(folder)/b.sqlite\nquery them with: sqlite3 \(folder)/b.sqlite 'SELECT * FROM mesh_messages'") }

        // Node A: the seed message, journaled before it moves.
        var schedule = DataCapsule()
        schedule.setAsArray("appointments", [
            DataCapsule(["date": "01/01/2022", "title": "New Year Party"]),
            DataCapsule(["date": "25/12/2022", "title": "Christmas Party"]),
        ])
        let data: MeshData = ["myName": "Jon", "mySchedule": .bytes(try schedule.pack())]
        let message = try OutboundMessage(commandID: 1024, kind: .send, peer: "127.0.0.1:8001", data: data)
        let seq = try await a.appendOutbound(message)
        print("A journaled command 1024 as message \(a.identity.nodeID):\(seq) (pending)")

        // Node B: journal before acknowledging, then run the handler and record the invocation.
        let received = try await b.appendInbound([InboundMessage(
            originNode: a.identity.nodeID, originSeq: seq, commandID: 1024, kind: .send, peer: "127.0.0.1:8000",
            payload: message.payload)])
        let inboundID = received[0].id
        let invocation = try await b.startInvocation(inboundID: inboundID, handlerIndex: 0, attempt: 1)
        let decoded = try MeshCodec.decode(message.payload)
        print("B handler: myName = \(try decoded.getString("myName"))")
        for item in try DataCapsule.unpack(decoded.getBytes("mySchedule")).getAsArray("appointments") {
            print("B handler: Appointment: Date: \(try item.getAsString("date")) Title: \(try item.getAsString("title"))")
        }
        try await b.finishInvocation(invocation, outcome: .ok)
        try await b.setInboundStatus(id: inboundID, .handled)
        try await a.markOutboundAcked([seq])
        print("A marked it acked after B's journal commit")

        for (title, journal, sql) in Self.queries(a: a, b: b) {
            print("\n-- \(title)\n\(sql)")
            let rows = try await journal.read { db in try db.rows(sql) }
            for row in rows { print("   " + row.map { $0 ?? "NULL" }.joined(separator: " | ")) }
        }
        await a.close()
        await b.close()
    }

    static func queries(a: Journal, b: Journal) -> [(String, Journal, String)] {
        [
            ("A: what did A send, and is it acked?", a,
             "SELECT message_id, command_id, kind, peer, status, created_at FROM mesh_messages WHERE direction = 'out';"),
            ("B: what did B receive for command 1024, with the sender's name?", b,
             "SELECT message_id, status, json_extract(payload_json, '$.myName') AS my_name FROM mesh_messages WHERE direction = 'in' AND command_id = 1024;"),
            ("B: what did the handler do?", b,
             "SELECT message_id, handler_index, attempt, outcome, error, started_at, finished_at FROM mesh_invocations;"),
        ]
    }

    private func makeTemporaryFolder() throws -> String {
        let path = FileManager.default.temporaryDirectory.path + "/mesh-demo-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }
}
