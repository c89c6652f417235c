import MeshCore
import MeshJournal
import MeshTransport
import Testing
@testable import Mesh

@Suite struct RetentionTests {
    @Test func pruningRemovesOnlyFinishedMessagesAndKeepsDeadAndPendingOnes() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { $0.retention = nil }
        let b = try await fixture.start("b") { $0.retention = nil; $0.maxHandlerAttempts = 1 }
        let beforeAnything = WallClock.nowMs() - 1
        try b.handleCommand(1) { data in
            if data.int64("n") == 0 { throw MeshError(.handlerError, "poison") }
            return nil
        }
        for n in 0..<20 { #expect(await (try a.send(1, to: b.address, ["n": .int64(Int64(n))])).outcome() == .confirmed) }
        try await eventually { try await b.journal.rows("SELECT count(*) FROM mesh_messages WHERE status IN ('handled', 'dead')") == [["20"]] }
        try await eventually { try await a.journal.rows("SELECT count(*) FROM mesh_messages WHERE status = 'acked'") == [["20"]] }
        // A message to nowhere stays pending at A.
        _ = try await a.send(1, to: "127.0.0.1:9", ["n": 99])
        // A cutoff before any message completed prunes nothing, though everything is finished: the cutoff counts.
        #expect(try await a.prune(completedBeforeMs: beforeAnything) == PruneResult(outbound: 0, inbound: 0))
        #expect(try await b.prune(completedBeforeMs: beforeAnything) == PruneResult(outbound: 0, inbound: 0))
        #expect(try await b.journal.rows("SELECT count(*) FROM mesh_messages") == [["20"]])
        let future = WallClock.nowMs() + 60_000
        let prunedA = try await a.prune(completedBeforeMs: future)
        let prunedB = try await b.prune(completedBeforeMs: future)
        #expect(prunedA == PruneResult(outbound: 20, inbound: 0))
        #expect(prunedB == PruneResult(outbound: 0, inbound: 19))
        #expect(try await a.journal.rows("SELECT status FROM mesh_messages") == [["pending"]])
        #expect(try await b.journal.rows("SELECT status FROM mesh_messages") == [["dead"]])
        #expect(try await b.journal.rows("SELECT count(*) FROM mesh_invocations") == [["1"]])  // the dead one's
        #expect(try await b.journal.rows("SELECT count(*) FROM mesh_inbound_state") == [["1"]])
        #expect(try await b.journal.read { db in try db.scalarText("PRAGMA integrity_check") } == "ok")
        await a.shutdown()
        await b.shutdown()
    }

    @Test func backgroundRetentionPrunesOnItsOwn() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a") { $0.retention = .seconds(1); $0.pruneInterval = .milliseconds(100) }
        let b = try await fixture.start("b") { $0.retention = .seconds(1); $0.pruneInterval = .milliseconds(100) }
        try b.handleCommand(1) { _ in nil }
        for n in 0..<5 { #expect(await (try a.send(1, to: b.address, ["n": .int64(Int64(n))])).outcome() == .confirmed) }
        try await eventually(60) { try await a.journal.rows("SELECT count(*) FROM mesh_messages") == [["0"]] }
        try await eventually(60) { try await b.journal.rows("SELECT count(*) FROM mesh_messages") == [["0"]] }
        // Sequence numbers are never reused after pruning.
        let next = try await a.send(1, to: b.address, ["n": 5])
        #expect(next.messageID.hasSuffix(":6"))
        await a.shutdown()
        await b.shutdown()
    }

    @Test func theMaintenanceLoopRecordsTheFloorsOfUnsettledMessages() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        try b.handleCommand(1) { _ in nil }
        for n in 0..<3 { #expect(await (try a.send(1, to: b.address, ["n": .int64(Int64(n))])).outcome() == .confirmed) }
        try await eventually { try await b.journal.rows("SELECT count(*) FROM mesh_messages WHERE status = 'handled'") == [["3"]] }
        // Recorded within about ten seconds: A's above its three acknowledged messages, B's above its three handled ones.
        try await eventually(60) { try await a.journal.rows("SELECT outbound_floor > 3 FROM mesh_node") == [["1"]] }
        try await eventually(60) { try await b.journal.rows("SELECT inbound_floor > 3 FROM mesh_node") == [["1"]] }
        await a.shutdown()
        await b.shutdown()
    }

    @Test func lowDiskRefusesSendsWithAClearError() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        // Demand more free space than any disk has: the guard trips at start.
        let a = try await fixture.start("a") { $0.minFreeDiskBytes = .max }
        let error = await #expect(throws: MeshError.self) { try await a.send(1, to: "127.0.0.1:9", ["x": 1]) }
        #expect(error?.code == .diskFull)
        #expect(try await a.journal.rows("SELECT count(*) FROM mesh_messages") == [["0"]])
        await a.shutdown()
    }
}
