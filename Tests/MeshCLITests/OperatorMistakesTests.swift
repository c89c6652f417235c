import Foundation
import MeshBench
import MeshCore
import MeshJournal
import MeshTransport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// What an operator gets wrong within an hour, run as the built binary: a double deploy, a damaged or foreign
/// journal, a key file that authenticates nothing, a wrong key, data too large for an argument. Each gets one
/// clear line and loses nothing.
@Suite struct OperatorMistakesTests {
    @Test func aSecondNodeOnTheSameJournalIsRefusedNamingTheHolder() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try ClientCommandTests.tempDir("double")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try await ClientCommandTests.keygen(dir)
        let first = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/n.sqlite", "--key-file", key])
        let second = try await MeshCommandTests.run(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/n.sqlite", "--key-file", key],
                                                    timeout: 30)
        #expect(second.status == 1)
        #expect(second.stderr.contains("\(dir)/n.sqlite is in use by pid \(first.process.processIdentifier) (mesh)"), "\(second.stderr)")
        #expect(second.stderr.split(separator: "\n").count == 1, "\(second.stderr)")
        // A read-only tool works on the live journal; a migration is refused while it runs.
        #expect(try await MeshCommandTests.run(["journal", "stats", dir + "/n.sqlite"]).status == 0)
        let migrate = try await MeshCommandTests.run(["journal", "migrate", dir + "/n.sqlite"])
        #expect(migrate.status == 0 && migrate.stdout.contains("up to date"), "\(migrate.stderr)")
        #expect(await first.terminate() == 0)
        // Once the first is gone, the journal is free.
        let third = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/n.sqlite", "--key-file", key])
        // The next epoch of the journal's (the first is random).
        let epoch = { (line: String) in line.split(whereSeparator: \.isWhitespace).drop { $0 != "epoch" }.dropFirst().first.flatMap { Int($0) } }
        #expect(epoch(third.firstLine) != nil && epoch(third.firstLine) == epoch(first.firstLine).map { $0 + 1 }, "\(first.firstLine) \(third.firstLine)")
        #expect(await third.terminate() == 0)
    }

    @Test func aDamagedJournalIsRefusedByTheNodeAndByEveryTool() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try ClientCommandTests.tempDir("corrupt")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try await ClientCommandTests.keygen(dir)
        let path = dir + "/n.sqlite"
        let node = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", path, "--key-file", key, "--sink", "1"])
        let sent = try await MeshCommandTests.run(["send", "--to", node.address, "--command", "1", "--count", "50", "--key-file", key])
        #expect(sent.status == 0, "\(sent.stderr)")
        #expect(await node.terminate() == 0)
        // A page that no summary query reads (the root of the invocations' index): counts would still come out,
        // from a damaged file.
        let root = try #require(try SQLiteConnection(path: path, mode: .readOnly).scalarInt(
            "SELECT rootpage FROM sqlite_schema WHERE name = 'mesh_invocation_inbound'"))
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: UInt64((Int(root) - 1) * 8192))
        try handle.write(contentsOf: Data(repeating: 0x5A, count: 8192))
        try handle.close()
        let damaged = FileManager.default.contents(atPath: path)
        for tool in [["stats"], ["tail"], ["dead"], ["verify"]] {
            let run = try await MeshCommandTests.run(["journal"] + tool + [path])
            #expect(run.status == 1, "\(tool): \(run.stdout)")
            #expect(run.stderr.contains("corrupt") || run.stderr.contains("problem:"), "\(tool): \(run.stderr)")
        }
        let refused = try await MeshCommandTests.run(["node", "--bind", "127.0.0.1:0", "--journal", path, "--key-file", key], timeout: 30)
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("failed SQLite's quick check"), "\(refused.stderr)")
        #expect(FileManager.default.contents(atPath: path) == damaged)
    }

    @Test func anEmptyDatabaseIsNotAJournal() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try ClientCommandTests.tempDir("stub")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // An 8 KB SQLite file without tables: what an interrupted creation used to leave behind.
        let stub = try SQLiteConnection(path: dir + "/stub.sqlite", mode: .readWriteCreate)
        try stub.execute("PRAGMA page_size = 8192; VACUUM")
        stub.close()
        let stats = try await MeshCommandTests.run(["journal", "stats", dir + "/stub.sqlite"])
        #expect(stats.status == 1)
        #expect(stats.stderr.contains("not a Mesh journal"), "\(stats.stderr)")
    }

    @Test func keyFilesThatAuthenticateNothingAreRefusedAndAWrongKeyIsExplained() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try ClientCommandTests.tempDir("keys")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let zeros = dir + "/zeros.key"
        try String(repeating: "0", count: 64).write(toFile: zeros, atomically: true, encoding: .utf8)
        let insecure = try await MeshCommandTests.run(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/z.sqlite", "--key-file", zeros])
        #expect(insecure.status == 1 && insecure.stderr.contains("public insecure key"), "\(insecure.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir + "/z.sqlite"))
        let open = try await ClientCommandTests.keygen(dir)
        #expect(chmod(open, 0o666) == 0)
        let writable = try await MeshCommandTests.run(["send", "--to", "127.0.0.1:9", "--command", "1", "--key-file", open])
        #expect(writable.status == 1 && writable.stderr.contains("may be written by other users"), "\(writable.stderr)")
        #expect(chmod(open, 0o600) == 0)

        // A sender with another key: its error names the likely causes, and the receiver logs the failures at its
        // default level.
        let other = dir + "/other.key"
        try ClusterKey.generate().hex.write(toFile: other, atomically: true, encoding: .utf8)
        let log = dir + "/receiver.log"
        let node = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/n.sqlite", "--key-file", open,
                                                   "--sink", "1"], stderrPath: log)
        let sent = try await MeshCommandTests.run(["send", "--to", node.address, "--command", "1", "--key-file", other, "--timeout", "1"])
        #expect(sent.status != 0)
        #expect(sent.stderr.contains("another cluster key"), "\(sent.stderr)")
        #expect(await node.terminate() == 0)
        let logged = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(logged.contains("failed authentication"), "\(logged)")
    }

    @Test func dataBeyondTheArgumentLimitGoesThroughAFileOrStandardInput() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: MeshCommandTests.binary))
        let dir = try ClientCommandTests.tempDir("data")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = try await ClientCommandTests.keygen(dir)
        let node = try await MeshCommandTests.startNode(["node", "--bind", "127.0.0.1:0", "--journal", dir + "/n.sqlite", "--key-file", key, "--sink", "1"])
        let big = String(repeating: "x", count: 300 * 1024)
        try #"{"blob": "\#(big)", "via": "file"}"#.write(toFile: dir + "/data.json", atomically: true, encoding: .utf8)
        let fromFile = try await MeshCommandTests.run(["send", "--to", node.address, "--command", "1", "--data-file", dir + "/data.json", "--key-file", key])
        #expect(fromFile.status == 0, "\(fromFile.stderr)")
        let fromStdin = try await MeshCommandTests.run(["send", "--to", node.address, "--command", "1", "--data", "-", "--key-file", key],
                                                       stdin: Data(#"{"blob": "\#(big)", "via": "stdin"}"#.utf8))
        #expect(fromStdin.status == 0, "\(fromStdin.stderr)")
        let both = try await MeshCommandTests.run(["send", "--to", node.address, "--command", "1", "--data", "{}", "--data-file", "x", "--key-file", key])
        #expect(both.status != 0 && both.stderr.contains("exclude each other"), "\(both.stderr)")
        #expect(await node.terminate() == 0)
        let journal = try SQLiteConnection(path: dir + "/n.sqlite", mode: .readOnly)
        #expect(try journal.rows("""
            SELECT json_extract(payload_json, '$.via'), length(json_extract(payload_json, '$.blob')) FROM mesh_messages
            WHERE direction = 'in' ORDER BY id
            """) == [["file", "\(300 * 1024)"], ["stdin", "\(300 * 1024)"]])
    }
}
