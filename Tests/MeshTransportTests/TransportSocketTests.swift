import CoreMetrics
import MetricsTestKit
import MeshFaultProxy
import NIOCore
import Testing
@testable import MeshTransport

/// End-to-end tests over real UDP sockets on 127.0.0.1, faults injected by a real proxy.
@Suite(.serialized) struct TransportSocketTests {
    /// Encodes (lane, index) so the receiver can check exactly-once and per-lane order.
    static func payload(_ lane: UInt16, _ index: Int, size: Int = 64) -> ByteBuffer {
        var buffer = ByteBufferAllocator().buffer(capacity: size)
        buffer.writeInteger(lane)
        buffer.writeInteger(UInt32(index))
        buffer.writeBytes([UInt8](repeating: UInt8(truncatingIfNeeded: index), count: max(0, size - 6)))
        return buffer
    }

    static func decode(_ message: ReceivedMessage) -> (UInt16, Int) {
        var p = message.payload
        return (p.readInteger(as: UInt16.self)!, Int(p.readInteger(as: UInt32.self)!))
    }

    /// Sends `count` messages over `lanes` from `sender` to `address`, checks every outcome is confirmed, and
    /// that `inbox` got each exactly once, in order per lane.
    static func streamAndVerify(count: Int, lanes: [UInt16], from sender: MeshTransport, to address: SocketAddress,
                                inbox: Inbox, size: Int = 64, receiver: MeshTransport? = nil) async throws {
        let already = await inbox.count
        var receipts: [MeshTransport.Receipt] = []
        receipts.reserveCapacity(count)
        for i in 0..<count {
            let lane = lanes[i % lanes.count]
            receipts.append(try await sender.send(payload(lane, i / lanes.count, size: size), commandID: lane, to: address))
        }
        var failures: [MessageOutcome] = []
        for receipt in receipts {
            let outcome = await receipt.outcome()
            if outcome != .confirmed { failures.append(outcome) }
        }
        if !failures.isEmpty {
            let stats = try await sender.statistics()
            let receiverStats = try await receiver?.statistics()
            Issue.record("\(failures.count) messages not confirmed, first: \(failures.first!); sender statistics: \(stats); receiver: \(String(describing: receiverStats))")
        }
        await inbox.wait(for: already + count)
        let received = await inbox.messages.dropFirst(already).map(decode)
        #expect(received.count == count)
        for lane in lanes {
            let indexes = received.filter { $0.0 == lane }.map(\.1)
            #expect(indexes == Array(0..<indexes.count), "lane \(lane) out of order or duplicated")
            #expect(indexes.count == count / lanes.count + (lanes.firstIndex(of: lane)! < count % lanes.count ? 1 : 0))
        }
    }

    @Test func tenThousandMessagesThroughLossDuplicationReorderingAndJitter() async throws {
        // Give-up times far above what the stream needs (a few seconds), so a starved event loop on a loaded machine
        // slows the test down instead of failing it: the faults, not the load, are under test.
        try await withTimeout(900, "10,000 messages through faults") {
            let key = ClusterKey.generate()
            let receiver = try await makeTransport(key: key) { $0.retryTimeout = .seconds(600); $0.peerTimeout = .seconds(600) }
            let proxy = try await FaultProxy.start(
                listen: loopback, forward: receiver.localAddress,
                faults: .init(loss: 0.20, duplicate: 0.05, reorder: 0.10, delay: .milliseconds(1) ... .milliseconds(5)), seed: 42)
            let sender = try await makeTransport(key: key) { $0.retryTimeout = .seconds(600); $0.peerTimeout = .seconds(600) }
            let (inbox, consumer) = Inbox.collecting(receiver)
            // 1,000-byte messages: one per datagram, so each message meets the faults on its own.
            try await Self.streamAndVerify(count: 10_000, lanes: [1, 2, 1024, 65535], from: sender, to: proxy.listenAddress, inbox: inbox,
                                           size: 1000, receiver: receiver)
            // The faults were really injected, in about the proportions asked for (datagrams carry several
            // messages each, so the counts are of datagrams, not messages).
            let stats = proxy.statistics
            let seen = stats.forwarded - stats.duplicated + stats.dropped
            #expect(seen > 1000, "\(stats)")
            #expect(Double(stats.dropped) > 0.1 * Double(seen) && Double(stats.duplicated) > 0.02 * Double(seen)
                && Double(stats.reordered) > 0.05 * Double(seen), "\(stats)")
            let senderStats = try await sender.statistics()
            #expect(senderStats["retransmits"]! > 0)
            await sender.close()
            await receiver.close()
            await proxy.close()
            consumer.cancel()
        }
    }

    @Test func corruptedDatagramsAreRejectedByTheMACAndTheStreamCompletes() async throws {
        try await withTimeout(60, "stream through 1% corruption") {
            let key = ClusterKey.generate()
            let receiver = try await makeTransport(key: key)
            let proxy = try await FaultProxy.start(listen: loopback, forward: receiver.localAddress,
                                                   faults: .init(corrupt: 0.01), seed: 7)
            let sender = try await makeTransport(key: key)
            let (inbox, consumer) = Inbox.collecting(receiver)
            try await Self.streamAndVerify(count: 5000, lanes: [10, 11], from: sender, to: proxy.listenAddress, inbox: inbox, size: 300, receiver: receiver)
            #expect(proxy.statistics.corrupted > 10)
            let receiverStats = try await receiver.statistics()
            let senderStats = try await sender.statistics()
            #expect(receiverStats["auth_failures"]! + receiverStats["malformed"]! + senderStats["auth_failures"]! + senderStats["malformed"]! > 0)
            await sender.close()
            await receiver.close()
            await proxy.close()
            consumer.cancel()
        }
    }

    @Test func largeAndMaximumSizeMessagesUnderLoss() async throws {
        try await withTimeout(120, "large messages under 5% loss") {
            let key = ClusterKey.generate()
            let maxSize = 3_000_000
            let receiver = try await makeTransport(key: key) { $0.maxMessageSize = maxSize; $0.retryTimeout = .seconds(60) }
            let proxy = try await FaultProxy.start(listen: loopback, forward: receiver.localAddress, faults: .init(loss: 0.05), seed: 3)
            let sender = try await makeTransport(key: key) { $0.maxMessageSize = maxSize; $0.retryTimeout = .seconds(60) }
            let (inbox, consumer) = Inbox.collecting(receiver)
            let oneMB = ByteBuffer(bytes: (0..<1_000_000).map { UInt8(truncatingIfNeeded: $0 &* 7) })
            let maximum = ByteBuffer(bytes: (0..<maxSize).map { UInt8(truncatingIfNeeded: $0 &* 13) })
            let first = try await sender.send(oneMB, commandID: 5, to: proxy.listenAddress)
            let second = try await sender.send(maximum, commandID: 5, to: proxy.listenAddress)
            #expect(await first.outcome() == .confirmed)
            #expect(await second.outcome() == .confirmed)
            await inbox.wait(for: 2)
            let messages = await inbox.messages
            #expect(messages[0].payload == oneMB)
            #expect(messages[1].payload == maximum)
            // One byte more than the maximum is refused at once with a clear error.
            let tooBig = try await sender.send(ByteBuffer(bytes: [UInt8](repeating: 0, count: maxSize + 1)), commandID: 5, to: proxy.listenAddress)
            guard case .failed(let error) = await tooBig.outcome() else { Issue.record("oversized message accepted"); return }
            #expect(error.code == .tooLarge)
            #expect(error.message.contains("\(maxSize)"))
            await sender.close()
            await receiver.close()
            await proxy.close()
            consumer.cancel()
        }
    }

    @Test func wrongKeyDeliversNothingAndNeverGetsAnAnswer() async throws {
        try await withTimeout(30, "wrong key") {
            let receiver = try await makeTransport(key: .generate())
            let sender = try await makeTransport(key: .generate()) { $0.retryTimeout = .milliseconds(800) }
            let (inbox, consumer) = Inbox.collecting(receiver)
            let receipt = try await sender.send(Self.payload(1, 0), commandID: 1, to: receiver.localAddress)
            guard case .failed(let error) = await receipt.outcome() else { Issue.record("sent with a wrong key"); return }
            #expect(error.code == .unreachable)
            #expect(await inbox.count == 0)
            let receiverStats = try await receiver.statistics()
            let senderStats = try await sender.statistics()
            #expect(receiverStats["auth_failures"]! > 0)
            #expect(receiverStats["datagrams_out"] == 0)  // never answers an unauthenticated datagram
            #expect(senderStats["datagrams_in"] == 0)
            await sender.close()
            await receiver.close()
            consumer.cancel()
        }
    }

    @Test func replayedCaptureIsDroppedAndRandomBytesAreHarmless() async throws {
        try await withTimeout(30, "replay and random bytes") {
            let key = ClusterKey.generate()
            let receiver = try await makeTransport(key: key)
            let proxy = try await FaultProxy.start(listen: loopback, forward: receiver.localAddress, faults: .init(record: 1000), seed: 1)
            let sender = try await makeTransport(key: key)
            let (inbox, consumer) = Inbox.collecting(receiver)
            // ~900-byte messages: one per datagram, so there is plenty to replay.
            try await Self.streamAndVerify(count: 100, lanes: [3], from: sender, to: proxy.listenAddress, inbox: inbox, size: 900,
                                           receiver: receiver)
            let captured = proxy.recorded
            #expect(captured.count >= 100)

            let attacker = try await rawSocket()
            let before = try await receiver.statistics()
            for datagram in captured { try await sendRaw(attacker, datagram, to: receiver.localAddress) }
            var rng = SystemRandomNumberGenerator()
            for _ in 0..<500 {
                let junk = (0..<Int.random(in: 0..<1500, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                try await sendRaw(attacker, junk, to: receiver.localAddress)
            }
            // A datagram that is authentic in shape but 1 byte over the size limit.
            try await sendRaw(attacker, [UInt8](repeating: 0xD1, count: 1401), to: receiver.localAddress)
            // The node keeps working: a new stream completes after the attack (on a new lane, numbered from 0).
            try await Self.streamAndVerify(count: 200, lanes: [4], from: sender, to: proxy.listenAddress, inbox: inbox, receiver: receiver)
            let after = try await receiver.statistics()
            #expect(after["replays"]! - before["replays"]! >= captured.count)
            #expect(after["auth_failures"]! + after["malformed"]! - before["auth_failures"]! - before["malformed"]! >= 450)
            #expect(await inbox.count == 300)  // nothing replayed was delivered twice
            try await attacker.close()
            await sender.close()
            await receiver.close()
            await proxy.close()
            consumer.cancel()
        }
    }

    /// SwiftNIO closes a datagram socket on a send error it deems fatal (`ENETUNREACH` while the host's interface
    /// is down). The transport binds a new socket to the same address and carries on: sessions and unfinished
    /// messages survive, nothing is lost or delivered twice.
    @Test func aLostSocketIsReplacedAndTheStreamCarriesOn() async throws {
        try await withTimeout(60, "lost socket") {
            let key = ClusterKey.generate()
            let receiver = try await makeTransport(key: key) { $0.retryTimeout = .seconds(20); $0.peerTimeout = .seconds(20) }
            let sender = try await makeTransport(key: key) { $0.retryTimeout = .seconds(20); $0.peerTimeout = .seconds(20) }
            let (inbox, consumer) = Inbox.collecting(receiver)
            var receipts: [MeshTransport.Receipt] = []
            for i in 0..<600 {
                receipts.append(try await sender.send(Self.payload(5, i), commandID: 5, to: receiver.localAddress))
                if i == 200 { await receiver.loseSocket() }
                if i == 400 { await sender.loseSocket() }
            }
            for receipt in receipts { #expect(await receipt.outcome() == .confirmed) }
            await inbox.wait(for: 600)
            let indexes = await inbox.messages.map { Self.decode($0).1 }
            #expect(indexes == Array(0..<600), "lost, duplicated or out of order across the socket replacements")
            await sender.close()
            await receiver.close()
            consumer.cancel()
        }
    }

    @Test func peerRestartMidStreamResumesUnconfirmedMessages() async throws {
        try await withTimeout(60, "peer restart") {
            let key = ClusterKey.generate()
            let node = NodeID.random()
            let first = try await makeTransport(key: key, epoch: 1, node: node)
            let port = first.localAddress.port!
            let sender = try await makeTransport(key: key) { $0.retryTimeout = .seconds(20); $0.peerTimeout = .seconds(20) }
            // The first incarnation confirms only what it receives before it "crashes".
            let firstInbox = Inbox()
            let crashAfter = 300
            let firstConsumer = Task {
                for await message in first.messages {
                    if await firstInbox.count < crashAfter { first.confirm(message.token) }
                    await firstInbox.add(message)
                }
            }
            var receipts: [MeshTransport.Receipt] = []
            for i in 0..<1000 {
                receipts.append(try await sender.send(Self.payload(9, i), commandID: 9, to: first.localAddress))
                if i == 600 {
                    await firstInbox.wait(for: crashAfter)
                    await first.closeAbruptly()
                }
            }
            let second = try await makeTransport(key: key, epoch: 2, node: node, port: port)
            let (secondInbox, secondConsumer) = Inbox.collecting(second)
            var outcomes: [MessageOutcome] = []
            for receipt in receipts { outcomes.append(await receipt.outcome()) }
            #expect(outcomes.allSatisfy { $0 == .confirmed })
            // The new incarnation gets, in order, everything the old one had not confirmed (and maybe a few it had,
            // if their confirmation was in flight): together nothing is missing.
            let firstIndexes = Set(await firstInbox.messages.prefix(crashAfter).map { Self.decode($0).1 })
            let secondIndexes = await secondInbox.messages.map { Self.decode($0).1 }
            #expect(secondIndexes == secondIndexes.sorted())
            #expect(firstIndexes.union(secondIndexes) == Set(0..<1000))
            await sender.close()
            await second.close()
            firstConsumer.cancel()
            secondConsumer.cancel()
        }
    }

    @Test func encryptedStreamCompletesAndTheWireCarriesNoPlaintext() async throws {
        try await withTimeout(30, "encrypted stream") {
            let key = ClusterKey.generate()
            let receiver = try await makeTransport(key: key) { $0.encrypt = true }
            let proxy = try await FaultProxy.start(listen: loopback, forward: receiver.localAddress,
                                                   faults: .init(loss: 0.05, record: 2000), seed: 5)
            let sender = try await makeTransport(key: key) { $0.encrypt = true }
            let (inbox, consumer) = Inbox.collecting(receiver)
            let marker = Array("PLAINTEXT-MARKER".utf8)
            var receipts: [MeshTransport.Receipt] = []
            for i in 0..<300 {
                var payload = Self.payload(6, i)
                payload.writeBytes(marker)
                receipts.append(try await sender.send(payload, commandID: 6, to: proxy.listenAddress))
            }
            for receipt in receipts { #expect(await receipt.outcome() == .confirmed) }
            await inbox.wait(for: 300)
            #expect(await inbox.messages.map { Self.decode($0).1 } == Array(0..<300))
            let wire = proxy.recorded
            #expect(wire.count >= 10)  // small messages are coalesced: a few datagrams carry all 300
            #expect(!wire.contains { datagram in datagram.indices.contains { datagram[$0...].starts(with: marker) } })
            await sender.close()
            await receiver.close()
            await proxy.close()
            consumer.cancel()
        }
    }

    @Test func aStalledConsumerBoundsMemoryAndSendersSeeFailures() async throws {
        try await withTimeout(30, "stalled consumer") {
            let key = ClusterKey.generate()
            // Nobody reads `inbound`: at most 2 batches are held, the rest is dropped and counted.
            let receiver = try await makeTransport(key: key) { $0.maxPendingDeliveryBatches = 2 }
            let sender = try await makeTransport(key: key) { $0.retryTimeout = .milliseconds(500) }
            // The session first: the 500 ms give-up also bounds the handshake, which a loaded machine can exceed
            // (the messages would then fail `unreachable`, not `timeout`). An unreliable message goes out only once
            // the session is open; retry it until it does.
            var opened = false
            for _ in 0..<60 where !opened {
                opened = await (try await sender.send(ByteBuffer(string: "open"), commandID: 9, to: receiver.localAddress,
                                                      reliability: .unreliable)).outcome() == .sent
            }
            try #require(opened, "no session after 60 handshakes")
            var receipts: [MeshTransport.Receipt] = []
            for i in 0..<200 {
                receipts.append(try await sender.send(Self.payload(1, i, size: 1000), commandID: 1, to: receiver.localAddress,
                                                      reliability: i % 2 == 0 ? .reliable : .unreliable))
                if i % 10 == 9 {
                    // In waves that the receiver reads one at a time, so they make separate delivery batches.
                    let deadline = ContinuousClock.now + .seconds(10)
                    while try await receiver.statistics()["datagrams_in"]! < i / 2, ContinuousClock.now < deadline {
                        try await Task.sleep(for: .milliseconds(1))
                    }
                }
            }
            var failed = 0
            for receipt in receipts {
                if case .failed(let error) = await receipt.outcome() {
                    #expect(error.code == .timeout)
                    failed += 1
                }
            }
            #expect(failed == 100)  // no reliable message is confirmed, each one fails visibly
            #expect(try await receiver.statistics()["dropped_over_limit"]! > 0)
            await sender.close()
            await receiver.close()
        }
    }

    /// A window of four messages: nearly every send waits parked for room, whether its caller waits (`send`) or not
    /// (`trySend`, parked without a waiting sender once the window is full). Parked sends are kept in place and
    /// drained as confirmations free room: all arrive once, in order per lane, and are confirmed.
    @Test func sendsParkedByAFullWindowLeaveInOrder() async throws {
        try await withTimeout(60, "parked sends") {
            let key = ClusterKey.generate()
            let receiver = try await makeTransport(key: key)
            let sender = try await makeTransport(key: key) { $0.windowMessages = 4 }
            let (inbox, consumer) = Inbox.collecting(receiver)
            try await Self.streamAndVerify(count: 300, lanes: [1, 2, 3], from: sender, to: receiver.localAddress, inbox: inbox,
                                           receiver: receiver)
            // Without waiting: what finds the window full is parked behind the earlier sends of its peer.
            var receipts: [MeshTransport.Receipt] = []
            for i in 0..<300 {
                let lane = UInt16(1 + i % 3)
                let payload = Self.payload(lane, 100 + i / 3)
                if let receipt = sender.trySend(payload, commandID: lane, to: receiver.localAddress) {
                    receipts.append(receipt)
                } else {
                    receipts.append(try await sender.send(payload, commandID: lane, to: receiver.localAddress))
                }
            }
            for receipt in receipts { #expect(await receipt.outcome() == .confirmed) }
            await inbox.wait(for: 600)
            let received = await inbox.messages.map(Self.decode)
            for lane: UInt16 in [1, 2, 3] {
                #expect(received.filter { $0.0 == lane }.map(\.1) == Array(0..<200), "lane \(lane)")
            }
            await sender.close()
            await receiver.close()
            consumer.cancel()
        }
    }

    /// The receiver reads one recvmmsg per readable event while reads come back short and four once they come back
    /// full (`readBatch` datagrams): bursts far larger than a tiny read batch, and lone messages between them, all
    /// arrive once, in order, and are confirmed.
    @Test func burstsAndLoneMessagesThroughATinyReadBatch() async throws {
        try await withTimeout(60, "bursts") {
            let key = ClusterKey.generate()
            let receiver = try await makeTransport(key: key) { $0.readBatch = 2 }
            let sender = try await makeTransport(key: key)
            let (inbox, consumer) = Inbox.collecting(receiver)
            for _ in 0..<3 {
                try await Self.streamAndVerify(count: 400, lanes: [1, 2], from: sender, to: receiver.localAddress, inbox: inbox, receiver: receiver)
                try await Self.streamAndVerify(count: 1, lanes: [3], from: sender, to: receiver.localAddress, inbox: inbox, receiver: receiver)
            }
            #expect(await inbox.count == 3 * 401)
            await sender.close()
            await receiver.close()
            consumer.cancel()
        }
    }

    @Test func unreliableMessagesArriveAtMostOnce() async throws {
        try await withTimeout(60, "usend") {
            let key = ClusterKey.generate()
            // Generous give-up times: this test is about at-most-once delivery, and the reliable bookends must get
            // through 30% loss each way whatever the machine's load.
            let patient: (inout TransportConfiguration) -> Void = { $0.retryTimeout = .seconds(20); $0.peerTimeout = .seconds(20) }
            let receiver = try await makeTransport(key: key, configure: patient)
            let proxy = try await FaultProxy.start(listen: loopback, forward: receiver.localAddress,
                                                   faults: .init(loss: 0.3, duplicate: 0.3), seed: 11)
            let sender = try await makeTransport(key: key, configure: patient)
            let (inbox, consumer) = Inbox.collecting(receiver)
            // A reliable message first, so the session exists, then unreliable ones.
            #expect(await (try await sender.send(Self.payload(1, 0), commandID: 1, to: proxy.listenAddress)).outcome() == .confirmed)
            var receipts: [MeshTransport.Receipt] = []
            for i in 0..<500 {
                receipts.append(try await sender.send(Self.payload(2, i), commandID: 2, to: proxy.listenAddress, reliability: .unreliable))
            }
            for receipt in receipts { #expect(await receipt.outcome() == .sent) }
            // A final reliable message on the unreliable lane's neighbour marks the end of the stream.
            #expect(await (try await sender.send(Self.payload(1, 1), commandID: 1, to: proxy.listenAddress)).outcome() == .confirmed)
            let unreliable = await inbox.messages.filter { $0.reliability == .unreliable }.map { Self.decode($0).1 }
            #expect(Set(unreliable).count == unreliable.count)  // never twice, despite 30% duplication
            #expect(unreliable.count < 500 && unreliable.count > 200)  // ~30% lost, never retransmitted
            await sender.close()
            await receiver.close()
            await proxy.close()
            consumer.cancel()
        }
    }
}

/// The transport's metric values are what happened, once: a replayed datagram is one replay.
@Suite struct TransportMetricValuesTests {
    @Test func eachReplayedDatagramCountsOnce() async throws {
        let metrics = TestMetrics()
        try await withMetricsFactory(metrics) {
            try await withTimeout(60, "replay metrics") {
                let key = ClusterKey.generate()
                let receiver = try await makeTransport(key: key)
                let proxy = try await FaultProxy.start(listen: loopback, forward: receiver.localAddress, faults: .init(record: 100), seed: 1)
                let sender = try await makeTransport(key: key)
                let (inbox, consumer) = Inbox.collecting(receiver)
                defer { consumer.cancel() }
                for i in 0..<20 {
                    #expect(await (try await sender.send(ByteBuffer(string: "m\(i)"), commandID: 1, to: proxy.listenAddress)).outcome() == .confirmed)
                }
                let captured = proxy.recorded
                let attacker = try await rawSocket()
                let before = try await receiver.statistics()["replays"]!
                for datagram in captured { try await sendRaw(attacker, datagram, to: receiver.localAddress) }
                let deadline = ContinuousClock.now + .seconds(30)
                while ContinuousClock.now < deadline, try await receiver.statistics()["replays"]! - before < captured.count {
                    try await Task.sleep(for: .milliseconds(20))
                }
                let replays = try await receiver.statistics()["replays"]!
                #expect(replays - before == captured.count)
                // The counter follows the state machine's count exactly (it was once incremented twice per replay).
                _ = try await receiver.statistics()  // a flush on the loop exports the counters
                #expect(try metrics.expectCounter("mesh_transport_replays_dropped_total").totalValue == Int64(replays))
                #expect(await inbox.count == 20)
                try await attacker.close()
                await sender.close()
                await receiver.close()
                await proxy.close()
            }
        }
    }
}

/// Short-lived clients come and go through a real socket: the server's sessions return to the live count, and
/// once every client is gone nothing more is sent.
@Suite struct PeerChurnSocketTests {
    @Test func sessionsReturnToTheLiveCountAfterChurnAndDepartedPeersGetNothing() async throws {
        try await withTimeout(120, "churn") {
            let key = ClusterKey.generate()
            func churn(_ c: inout TransportConfiguration) {
                c.keepaliveInterval = .milliseconds(100)
                c.peerTimeout = .seconds(2)
                c.forgetPeersAfter = .milliseconds(300)
            }
            let server = try await makeTransport(key: key, configure: churn)
            let (inbox, collector) = Inbox.collecting(server)
            defer { collector.cancel() }
            // Only the server forgets quickly: the clients keep the default patience, so a loaded machine cannot make
            // a client give up on the server mid-test.
            let live = try await makeTransport(key: key)
            #expect(await (try await live.send(ByteBuffer(string: "live"), commandID: 1, to: server.localAddress)).outcome() == .confirmed)
            // Every client at an address of its own: a port the kernel hands out again would put a new node at a departed
            // client's address, and the server would take that session over (session boundaries) instead of
            // forgetting it — one fewer forgotten peer than the test counts.
            var ports: Set<Int> = [server.localAddress.port!, live.localAddress.port!]
            for i in 0..<40 {
                var client = try await makeTransport(key: key)
                while ports.contains(client.localAddress.port!) {
                    await client.close()
                    client = try await makeTransport(key: key)
                }
                ports.insert(client.localAddress.port!)
                #expect(await (try await client.send(ByteBuffer(string: "c\(i)"), commandID: 1, to: server.localAddress)).outcome() == .confirmed)
                // Half leave with a goodbye, half vanish as a crash would.
                if i.isMultiple(of: 2) { await client.close() } else { await client.closeAbruptly() }
            }
            await inbox.wait(for: 41)
            // The departed are forgotten; the live client is kept (it answers the probes).
            let deadline = ContinuousClock.now + .seconds(60)
            while ContinuousClock.now < deadline, try await server.statistics()["peers"] != 1 { try await Task.sleep(for: .milliseconds(50)) }
            let stats = try await server.statistics()
            #expect(stats["peers"] == 1, "\(stats)")
            // (At least: on a loaded machine the live client may have been quiet long enough to be forgotten too, and
            // came back with a new session.)
            #expect(stats["peers_forgotten"]! >= 40, "\(stats)")
            // The last one leaves too: nothing is held, and the server goes silent.
            await live.close()
            while ContinuousClock.now < deadline, try await server.statistics()["peers"] != 0 { try await Task.sleep(for: .milliseconds(50)) }
            let quiet = try await server.statistics()
            #expect(quiet["peers"] == 0)
            try await Task.sleep(for: .seconds(1))  // ten keepalive intervals: a probe would show
            #expect(try await server.statistics()["datagrams_out"] == quiet["datagrams_out"])
            await server.close()
        }
    }
}
