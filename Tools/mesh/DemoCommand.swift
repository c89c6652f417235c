import ArgumentParser
import Foundation
import Logging
import Mesh
import MeshCore
import MeshJournal
import MeshTransport

/// `mesh demo`: the seed scenario between two real nodes on loopback, then the audit queries an operator would
/// run against their journals.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo", abstract: "Run the seed scenario between two nodes on fresh journals and print audit queries.")

    @Option(help: "Directory for the journals (default: a new temporary folder).") var dir: String?

    func run() async throws {
        let folder = try dir ?? makeTemporaryFolder()
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let logger = Logger(label: "mesh.demo")
        let key = ClusterKey.generate()
        print("journals in \(folder)")

        let a = try await MeshNode.start(
            configuration: .init(address: "127.0.0.1:0", journalPath: folder + "/a.sqlite", clusterKey: key), logger: logger)
        let b = try await MeshNode.start(
            configuration: .init(address: "127.0.0.1:0", journalPath: folder + "/b.sqlite", clusterKey: key), logger: logger)
        print("node A \(a.identity.nodeID) on \(a.address), node B \(b.identity.nodeID) on \(b.address)")

        // Node B's handler for command 1024, as in the Diarkis example.
        let done = AsyncStream.makeStream(of: Void.self)
        try b.handleCommand(1024) { data in
            print("B handler: myName = \(try data.getString("myName"))")
            let mySchedule = try DataCapsule.unpack(data.getBytes("mySchedule"))
            for item in try mySchedule.getAsArray("appointments") {
                print("B handler: Appointment: Date: \(try item.getAsString("date")) Title: \(try item.getAsString("title"))")
            }
            done.continuation.yield()
            return nil
        }

        // Node A sends the seed message: journaled before it moves.
        var schedule = DataCapsule()
        schedule.setAsArray("appointments", [
            DataCapsule(["date": "01/01/2022", "title": "New Year Party"]),
            DataCapsule(["date": "25/12/2022", "title": "Christmas Party"]),
        ])
        let delivery = try await a.send(1024, to: b.address, ["myName": "Jon", "mySchedule": .bytes(try schedule.pack())])
        print("A journaled and sent command 1024 as message \(delivery.messageID)")
        let outcome = await delivery.outcome()
        print("A: outcome \(outcome) (B confirmed only after committing it to its journal)")
        var handled = done.stream.makeAsyncIterator()
        _ = await handled.next()

        // Let the journals settle (acknowledgement and handler status are journaled asynchronously).
        for _ in 0..<200 {
            let acked = try await a.journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_outbound_state WHERE status = 1") }
            let finished = try await b.journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_inbound_state WHERE status = 1") }
            if acked == 1 && finished == 1 { break }
            try await Task.sleep(for: .milliseconds(10))
        }

        for (title, journal, sql) in Self.queries(a: a.journal, b: b.journal) {
            print("\n-- \(title)\n\(sql)")
            let rows = try await journal.read { db in try db.rows(sql) }
            for row in rows { print("   " + row.map { $0 ?? "NULL" }.joined(separator: " | ")) }
        }
        await a.shutdown()
        await b.shutdown()
        print("\njournals:\n  \(folder)/a.sqlite\n  \(folder)/b.sqlite\nquery them with: sqlite3 \(folder)/b.sqlite 'SELECT * FROM mesh_messages'")
        guard outcome == .confirmed else { throw ExitCode.failure }
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
