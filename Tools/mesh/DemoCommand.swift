import ArgumentParser
import Foundation
import Logging
import Mesh
import MeshCore
import MeshJournal
import MeshBench
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

        var aConfiguration = MeshConfiguration(address: "127.0.0.1:0", journalPath: folder + "/a.sqlite", clusterKey: key)
        // C is down for as long as its restart takes, which on a loaded machine can pass the 3 s defaults: A would
        // then give up on the messages in flight (journaled `failed`; C may well have them). The demo shows the
        // resend, so A waits longer.
        aConfiguration.retryTimeout = .seconds(60)
        aConfiguration.peerTimeout = .seconds(60)
        let a = try await MeshNode.start(configuration: aConfiguration, logger: logger)
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

        // A request gets a response (Diarkis SendRequest): journaled on both sides, linked by correlation_id.
        try b.handleCommand(2001) { data in ["greeting": .string("Hello \(try data.getString("myName"))"), "from": "B"] }
        let reply = try await a.sendRequest(2001, to: b.address, ["myName": "Jon"], timeout: .seconds(5))
        print("A: request 2001 answered: \(MeshJSON.string(from: reply))")

        // Let the journals settle (acknowledgements and handler statuses are journaled asynchronously): until
        // nothing A sent is pending and nothing B received is open, for at most 10 s.
        let settled = ContinuousClock.now + .seconds(10)
        while ContinuousClock.now < settled {
            let pending = try await a.journal.pendingOutboundCount()
            let open = try await b.journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND status <> 'handled'") }
            if pending == 0 && open == 0 { break }
            try await Task.sleep(for: .milliseconds(10))
        }

        for (title, journal, sql) in Self.queries(a: a.journal, b: b.journal) {
            print("\n-- \(title)\n\(sql)")
            let rows = try await journal.read { db in try db.rows(sql) }
            for row in rows { print("   " + row.map { $0 ?? "NULL" }.joined(separator: " | ")) }
        }
        await b.shutdown()
        let resumed = try await crashAndResume(a: a, key: key, folder: folder)
        await a.shutdown()
        print("\njournals:\n  \(folder)/a.sqlite\n  \(folder)/b.sqlite\n  \(folder)/c.sqlite")
        print("query them with: sqlite3 \(folder)/b.sqlite 'SELECT * FROM mesh_messages'")
        guard outcome == .confirmed, resumed else { throw ExitCode.failure }
    }

    /// Node C, a separate `mesh node` process, receives a stream from A, is SIGKILLed halfway and restarted on
    /// the same journal and port: A resends what C never confirmed, C keeps exactly one copy of each message.
    func crashAndResume(a: MeshNode, key: ClusterKey, folder: String) async throws -> Bool {
        let total = 2000
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        try key.hex.write(toFile: folder + "/cluster.key", atomically: true, encoding: .utf8)
        func startC(port: String) throws -> ChildNodeProcess {
            try ChildNodeProcess(executable: executable, arguments: [
                "node", "--bind", "127.0.0.1:\(port)", "--journal", folder + "/c.sqlite", "--key-file", folder + "/cluster.key", "--sink", "1500",
            ])
        }
        print("\n-- resume after a crash: A streams \(total) messages (command 1500) to node C, a separate `mesh node` process")
        // Below the ephemeral range: no other socket takes the port while C is down.
        let first = try startC(port: String(ChildNodeProcess.restartablePort()))
        let target = first.address
        let sender = Task {
            try await withThrowingTaskGroup(of: [MeshNode.Delivery].self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        var mine: [MeshNode.Delivery] = []
                        for i in stride(from: worker, to: total, by: 8) { mine.append(try await a.send(1500, to: target, ["i": .int64(Int64(i))])) }
                        return mine
                    }
                }
                return try await group.reduce(into: [MeshNode.Delivery]()) { $0 += $1 }
            }
        }
        var ackedAtKill: Int64 = 0
        for _ in 0..<3000 {
            ackedAtKill = try await a.journal.read { db in
                try db.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND command_id = 1500 AND status = 'acked'") ?? 0
            }
            if ackedAtKill >= Int64(total / 4) { break }
            try await Task.sleep(for: .milliseconds(2))
        }
        await first.kill()
        print("C killed with SIGKILL after \(ackedAtKill) of \(total) were acknowledged")
        let second = try startC(port: String(target.split(separator: ":").last!))
        print("C restarted on the same journal and port")
        var confirmed = 0
        for delivery in try await sender.value where await delivery.outcome() == .confirmed { confirmed += 1 }
        await second.terminate()
        let c = try SQLiteConnection(path: folder + "/c.sqlite", mode: .readOnly)
        let journaled = try c.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND command_id = 1500") ?? 0
        let distinct = try c.scalarInt("SELECT count(DISTINCT message_id) FROM mesh_messages WHERE direction = 'in' AND command_id = 1500") ?? 0
        let handled = try c.scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND command_id = 1500 AND status = 'handled'") ?? 0
        print("A: \(confirmed) of \(total) confirmed; C journaled \(journaled) messages, \(distinct) distinct, \(handled) handled")
        return confirmed == total && journaled == Int64(total) && distinct == Int64(total) && handled == Int64(total)
    }

    static func queries(a: Journal, b: Journal) -> [(String, Journal, String)] {
        [
            ("A: what did A send, and is it acked?", a,
             "SELECT message_id, command_id, kind, peer, status, created_at FROM mesh_messages WHERE direction = 'out';"),
            ("B: what did B receive for command 1024, with the sender's name?", b,
             "SELECT message_id, status, json_extract(payload_json, '$.myName') AS my_name FROM mesh_messages WHERE direction = 'in' AND command_id = 1024;"),
            ("A: the request and its response, linked by correlation_id", a,
             "SELECT direction, message_id, kind, correlation_id, json_extract(payload_json, '$.greeting') AS greeting FROM mesh_messages WHERE command_id = 2001 ORDER BY created_at_ms, direction DESC;"),
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
