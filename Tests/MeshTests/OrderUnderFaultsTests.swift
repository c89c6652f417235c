import MeshCore
import MeshFaultProxy
import MeshJournal
import MeshTransport
import NIOCore
import Testing
@testable import Mesh

/// Per-(sender, command ID) order between two nodes through a real UDP fault proxy (loss, duplication,
/// reordering, jitter), across a graceful restart of the receiver in the middle of the stream.
@Suite struct OrderUnderFaultsTests {
    @Test func orderPerCommandHoldsThroughLossAndAReceiverRestart() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let total = 1500
        let seen = Recorder<Int64>()
        func startReceiver(port: Int) async throws -> MeshNode {
            let node = try await fixture.start("b", port: port)
            try node.handleCommand(77) { data in
                await seen.add(try data.getInt64("i"))
                return nil
            }
            return node
        }
        var b = try await startReceiver(port: 0)
        let bPort = Int(b.address.split(separator: ":").last!)!
        let proxy = try await FaultProxy.start(
            listen: try SocketAddress(ipAddress: "127.0.0.1", port: 0), forward: try SocketAddress(ipAddress: "127.0.0.1", port: bPort),
            faults: .init(loss: 0.05, duplicate: 0.03, reorder: 0.05, delay: .milliseconds(0) ... .milliseconds(2)), seed: 1234)
        let target = "127.0.0.1:\(proxy.listenAddress.port!)"
        let a = try await fixture.start("a")
        let sender = Task {
            var deliveries: [MeshNode.Delivery] = []
            for i in 0..<total { deliveries.append(try await a.send(77, to: target, ["i": .int64(Int64(i))])) }
            return deliveries
        }
        let began = ContinuousClock.now
        try await eventually(60) { await seen.count >= total / 3 }
        let stopping = ContinuousClock.now
        await b.shutdown()  // graceful restart of the receiver mid-stream, same journal and port
        b = try await startReceiver(port: bPort)
        let restartedAfter = "\(stopping - began) of streaming, down for \(ContinuousClock.now - stopping)"
        // Every message is accounted for: confirmed, or failed with an error the sender saw. The receiver's
        // goodbye at its graceful shutdown does not fail what was in flight to it: its next incarnation (back
        // well within the 30 s give-up time) takes those messages.
        var confirmed: Set<Int64> = []
        var failed = 0
        var firstFailure = ""
        for (i, delivery) in try await sender.value.enumerated() {
            switch await delivery.outcome() {
            case .confirmed: confirmed.insert(Int64(i))
            case .failed(let error):
                if failed == 0 { firstFailure = "message \(i): \(error)" }
                failed += 1
            case .sent: Issue.record("a reliable message reported .sent")
            }
        }
        // Named so that a failure can be told apart: the give-up time, the peer declared down, a refusal; with what
        // each side's transport and the proxy counted (did the restarted receiver hear the sender, answer it stale?).
        if failed > 0 {
            let counts = "sender \((try? await a.transportStatistics()) ?? [:]); receiver \((try? await b.transportStatistics()) ?? [:]); "
                + "proxy \(proxy.statistics)"
            Issue.record("\(failed) failed, the first: \(firstFailure); receiver restarted after \(restartedAfter); \(counts)")
        }
        let expectedSeen = confirmed.count
        try await eventually(60) { await seen.count >= expectedSeen }
        let order = await seen.items
        // In order per (sender, command ID), nothing twice, nothing confirmed missing.
        #expect(zip(order, order.dropFirst()).allSatisfy { $0 < $1 }, "out of order: \(zip(order, order.dropFirst()).first { $0 >= $1 }.map { "\($0)" } ?? "")")
        #expect(confirmed.isSubset(of: Set(order)))
        #expect(proxy.statistics.dropped > 0 && proxy.statistics.duplicated > 0)
        // Journaled once each, by content: exactly the numbers sent (a resend journaled under a new id would show).
        let journaled = try await b.journal.rows("SELECT json_extract(payload_json, '$.i') FROM mesh_messages WHERE direction = 'in'")
            .compactMap { $0[0].flatMap { Int64($0) } }
        #expect(journaled.count == total && Set(journaled) == Set(0..<Int64(total)))
        await proxy.close()
        await a.shutdown()
        await b.shutdown()
    }
}
