import Foundation
import MeshCore
import MeshJournal
import MeshTransport
import Testing
@testable import Mesh

@Suite struct ReplayTests {
    @Test func replayComparesNewHandlersWithRecordedResponses() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        try b.handleCommand(50) { data in
            let n = try data.getInt("n")
            if n == 3 { throw MeshError(.handlerError, "three is unlucky") }
            return ["double": .int64(Int64(n * 2))]
        }
        // The live requests the replay compares with: answered, or (n = 3) refused with the handler's error.
        for n in 1...4 {
            do {
                let answer = try await a.sendRequest(50, to: b.address, ["n": .int64(Int64(n))], timeout: .seconds(30))
                #expect(n != 3 && answer == ["double": .int64(Int64(n * 2))], "n = \(n): \(answer)")
            } catch let error as MeshError {
                #expect(n == 3 && error.code == .handlerError, "n = \(n): \(error)")
            }
        }
        let bAddress = b.address
        try await eventually { try await b.journal.rows("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND status IN ('handled', 'dead')") == [["4"]] }
        await b.shutdown()

        // New handler code, same journal: n=1 unchanged, n=2 changed, n=3 now succeeds, n=4 now fails.
        let port = Int(bAddress.split(separator: ":").last!)!
        let replayer = try await fixture.start("b", port: port)
        let seenReplayRuns = Recorder<Int64?>()
        try replayer.handleCommand(50) { data, info in
            await seenReplayRuns.add(info.replayRun)
            let n = try data.getInt("n")
            if n == 4 { throw MeshError(.handlerError, "four is worse") }
            return ["double": .int64(n == 2 ? 5 : Int64(n * 2))]
        }
        let report = try await replayer.replay(commandID: 50)
        #expect(report.entries.map(\.verdict) == [.same, .different, .nowSucceeding, .nowFailing])
        #expect(report.counts[.same] == 1 && report.regressions.count == 3)
        #expect(await seenReplayRuns.items.allSatisfy { $0 == report.runID })
        // Recorded as a replay run, distinguishable from live invocations; nothing was sent.
        let rows = try await replayer.journal.rows("SELECT count(*) FROM mesh_invocations WHERE replay_run = \(report.runID)")
        #expect(rows == [["4"]])
        #expect(try await replayer.journal.rows("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND correlation_id IS NOT NULL AND created_at_ms > (SELECT started_at FROM mesh_replay_run WHERE id = \(report.runID))") == [["0"]])
        #expect(try await replayer.journal.rows("SELECT finished_at IS NOT NULL FROM mesh_replay_run WHERE id = \(report.runID)") == [["1"]])
        // A time window that excludes everything replays nothing.
        let empty = try await replayer.replay(commandID: 50, from: Date().addingTimeInterval(3600))
        #expect(empty.entries.isEmpty)
        await #expect(throws: MeshError.self) { _ = try await replayer.replay(commandID: 51) }
        await replayer.shutdown()
        await a.shutdown()
    }

    @Test func deadLettersCanBeRequeuedAndThenSucceed() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b") { $0.maxHandlerAttempts = 2 }
        let healthy = Recorder<Bool>()
        try b.handleCommand(60) { _ in
            if await healthy.count == 0 { throw MeshError(.handlerError, "database down") }
            return nil
        }
        #expect(await (try a.send(60, to: b.address, ["k": 1])).outcome() == .confirmed)
        try await eventually { try await b.journal.rows("SELECT status FROM mesh_messages WHERE direction = 'in'") == [["dead"]] }
        let dead = try await b.deadLetters(commandID: 60)
        #expect(dead.first?.error?.contains("database down") == true)
        #expect(try await b.deadLetters(commandID: 61).isEmpty)
        await healthy.add(true)
        #expect(try await b.requeueDead(dead.map(\.id) + [999_999]) == 1)
        try await eventually { try await b.journal.rows("SELECT status FROM mesh_messages WHERE direction = 'in'") == [["handled"]] }
        #expect(try await b.deadLetters().isEmpty)
        await a.shutdown()
        await b.shutdown()
    }

    @Test func codableHandlersAndRequests() async throws {
        struct Move: Codable, Sendable, Equatable { var player: String; var x: Int; var y: Int }
        struct Ack: Codable, Sendable, Equatable { var accepted: Bool }
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b") { $0.maxHandlerAttempts = 1 }
        try b.handleCommand(70, as: Move.self) { move, _ in try MeshDataEncoder().encode(Ack(accepted: move.x >= 0)) }
        // A generous timeout: this is about the Codable path, and the first exchange of two fresh nodes once took
        // longer than the default 3 s in a fully loaded parallel run.
        let ack = try await a.sendRequest(70, to: b.address, Move(player: "jon", x: 1, y: 2), as: Ack.self, timeout: .seconds(30))
        #expect(ack == Ack(accepted: true))
        // Data that is not a Move: the handler fails with a decode error that the requester sees.
        let refused = await #expect(throws: MeshError.self) { _ = try await a.sendRequest(70, to: b.address, ["player": "x"], timeout: .seconds(30)) }
        #expect(refused?.code == .handlerError)
        await #expect(throws: MeshError.self) { try await a.sendToAnyOnline(70, ofType: "NOBODY", [:]) }
        await a.shutdown()
        await b.shutdown()
    }
}
