import Foundation
import MeshCore
import Testing
@testable import MeshBench
import MeshJournal

/// The README's audit cookbook is part of the contract: every query in it runs, verbatim, against a journal
/// holding each kind of traffic, through our read connection and through the stock `sqlite3` shell.
@Suite struct ReadmeAuditTests {
    static func readmeQueries() throws -> [String] {
        let readme = try String(contentsOfFile: SchemaTests.repositoryRoot + "/README.md", encoding: .utf8)
        guard let begin = readme.range(of: "<!-- audit-queries:begin -->"),
              let end = readme.range(of: "<!-- audit-queries:end -->") else { return [] }
        let section = readme[begin.upperBound..<end.lowerBound]
        return section.components(separatedBy: "```sql").dropFirst().compactMap { block in
            block.components(separatedBy: "```").first?.trimmingCharacters(in: .whitespacesAndNewlines)
        }
    }

    /// A journal with sends (acked, pending, failed), received messages with handler invocations (ok, error),
    /// a dead and an unhandled message, and a request with its response.
    static func populate(_ journal: Journal) async throws {
        let peer = "127.0.0.1:8001"
        let other = JournalWriteTests.peerNode
        let sent = try await journal.appendOutbound([
            try OutboundMessage(commandID: 1024, kind: .send, peer: peer, data: ["myName": "Jon"]),
            try OutboundMessage(commandID: 1024, kind: .send, peer: peer, data: ["myName": "Ann"]),
            try OutboundMessage(commandID: 2000, kind: .usend, peer: "127.0.0.1:8002", data: ["x": 1]),
        ])
        try await journal.markOutboundAcked([sent[0]])
        try await journal.markOutboundFailed(sent[2], error: "peer down")
        let request = try await journal.appendOutbound(try OutboundMessage(commandID: 1024, kind: .request, peer: peer, data: ["q": "time?"]))
        try await journal.markOutboundAcked([request])
        let requestID = "\(journal.identity.nodeID):\(request)"

        let received = try await journal.appendInbound([
            InboundMessage(originNode: other, originSeq: 1, commandID: 1024, kind: .send, peer: peer,
                           payload: try MeshCodec.encode(["myName": "Jon"])),
            InboundMessage(originNode: other, originSeq: 2, commandID: 1024, kind: .send, peer: peer,
                           payload: try MeshCodec.encode(["myName": "Bad"])),
            InboundMessage(originNode: other, originSeq: 3, commandID: 3000, kind: .send, peer: peer,
                           payload: try MeshCodec.encode(["later": true]), status: .unhandled),
            InboundMessage(originNode: other, originSeq: 4, commandID: 1024, kind: .response, peer: peer,
                           payload: try MeshCodec.encode(["time": "12:00"]), correlationID: requestID),
        ])
        let ok0 = try await journal.startInvocation(inboundID: received[0].id, handlerIndex: 0, attempt: 1)
        try await journal.finishInvocation(ok0, outcome: .ok, response: ["greeting": "hi Jon"])
        let ok1 = try await journal.startInvocation(inboundID: received[0].id, handlerIndex: 1, attempt: 1)
        try await journal.finishInvocation(ok1, outcome: .ok)
        try await journal.setInboundStatus(id: received[0].id, .handled, attempts: 1)
        for attempt in 1...3 {
            let failed = try await journal.startInvocation(inboundID: received[1].id, handlerIndex: 0, attempt: attempt)
            try await journal.finishInvocation(failed, outcome: .error, error: "invalid name")
        }
        try await journal.setInboundStatus(id: received[1].id, .dead, attempts: 3, error: "invalid name")
        try await journal.setInboundStatus(id: received[3].id, .handled, attempts: 1)
    }

    @Test func readmeHasAtLeastFourAuditQueries() throws {
        #expect(try Self.readmeQueries().count >= 4)
    }

    @Test func everyReadmeQueryRunsAndFindsRows() async throws {
        let queries = try Self.readmeQueries()
        try await withJournal { journal, _ in
            try await Self.populate(journal)
            for sql in queries {
                let rows = try await journal.read { db in try db.rows(sql) }
                #expect(!rows.isEmpty, "no rows from:\n\(sql)")
            }
            // Spot-check answers.
            let handlers = try await journal.read { db in try db.rows(queries[1]) }
            #expect(handlers.contains { $0[2] == "Jon" && $0[5] == "ok" && $0[7] == #"{"greeting":"hi Jon"}"# })
            #expect(handlers.filter { $0[2] == "Bad" && $0[5] == "error" }.count == 3)
            let stuck = try await journal.read { db in try db.rows(queries[3]) }
            #expect(Set(stuck.map { $0[2] }) == ["dead", "unhandled"])
            let pairs = try await journal.read { db in try db.rows(queries[4]) }
            #expect(pairs.count == 1 && pairs[0][3] == #"{"time":"12:00"}"#)
        }
    }

    @Test func everyReadmeQueryRunsInTheStockSqlite3Shell() async throws {
        let shell = ["/usr/bin/sqlite3", "/usr/local/bin/sqlite3"].first { FileManager.default.isExecutableFile(atPath: $0) }
        try #require(shell != nil, "the sqlite3 shell is not installed (.ci/run installs it)")
        let queries = try Self.readmeQueries()
        try await withJournal { journal, _ in
            try await Self.populate(journal)
            // The journal is open (live) while the shell reads it.
            for sql in queries {
                let process = try SpawnedProcess(executable: shell!, arguments: ["-readonly", journal.path, sql], stdout: .pipe, stderr: .pipe)
                let (text, errorText) = await offThePool { process.finish() }
                #expect(process.terminationStatus == 0, "sqlite3 failed: \(errorText)\n\(sql)")
                #expect(!text.isEmpty, "sqlite3 printed nothing for:\n\(sql)")
            }
        }
    }
}
