import Crypto
import NIOCore
import Testing
@_spi(Fuzzing) @testable import MeshTransport

@Suite struct TransportStateMachineTests {
    @Test func handshakeThenOrderedDeliveryAndConfirmation() {
        let link = InMemoryLink()
        let tokens = (0..<20).map { link.send("m\($0)") }
        #expect(link.run(until: { link.outcomesA.count == 20 }))
        #expect(link.payloadsAtB() == (0..<20).map { "m\($0)" })
        #expect(tokens.allSatisfy { link.outcomesA[$0] == .confirmed })
        #expect(link.eventsA.contains { if case .peerUp = $0 { true } else { false } })
    }

    /// The idle spin's signal: a sender awaits an acknowledgement from the data's transmission until the peer's
    /// acknowledgement arrives, and not once everything is acknowledged.
    @Test func aSenderAwaitsAnAcknowledgementUntilItArrives() {
        let link = InMemoryLink()
        #expect(!link.a.timers().awaitsAcknowledgement)
        link.send("warm-up")
        #expect(link.run(until: { link.outcomesA.count == 1 }))
        link.run(for: .milliseconds(50))
        #expect(!link.a.timers().awaitsAcknowledgement, "everything acknowledged")
        link.drop = { fromA, _, _ in !fromA }  // nothing comes back
        link.send("unanswered")
        link.run(for: .milliseconds(1))
        #expect(link.a.timers().awaitsAcknowledgement)
        link.drop = { _, _, _ in false }
        #expect(link.run(until: { link.outcomesA.count == 2 }, limit: .seconds(3)))
        link.run(for: .milliseconds(50))
        #expect(!link.a.timers().awaitsAcknowledgement)
    }

    @Test func outcomeWaitsForTheReceiversConfirmation() {
        let link = InMemoryLink()
        link.autoConfirm = false
        let token = link.send("durable?")
        link.run(for: .milliseconds(50))
        #expect(link.payloadsAtB() == ["durable?"])
        #expect(link.outcomesA[token] == nil)  // delivered, acked at packet level, but not yet durable
        link.b.confirm(link.deliveredToB[0].token)
        #expect(link.run(until: { link.outcomesA[token] != nil }))
        #expect(link.outcomesA[token] == .confirmed)
    }

    @Test func lostPacketIsFastRetransmittedAndOrderKept() {
        let link = InMemoryLink()
        link.send("warm-up")
        link.run(until: { link.outcomesA.count == 1 })
        var dropped = false
        link.drop = { fromA, _, frames in
            guard fromA, !dropped, frames.contains(where: { if case .data(let d) = $0 { String(buffer: d.payload) == "m3" } else { false } }) else { return false }
            dropped = true
            return true
        }
        for i in 0..<10 { link.send("m\(i)") }
        #expect(link.run(until: { link.outcomesA.count == 11 }, limit: .milliseconds(500)))
        #expect(dropped)
        #expect(link.payloadsAtB() == ["warm-up"] + (0..<10).map { "m\($0)" })
        #expect(link.a.counters.fastRetransmits >= 1)
        #expect(link.a.counters.retransmits >= 1)
    }

    @Test func retransmissionTimeoutBacksOffExponentially() {
        let link = InMemoryLink { $0.minRetransmitTimeout = .milliseconds(10); $0.maxRetransmitTimeout = .milliseconds(1000) }
        link.send("warm-up")
        link.run(until: { link.outcomesA.count == 1 })
        var sendTimes: [NIODeadline] = []
        link.drop = { fromA, _, frames in
            if fromA && frames.contains(where: { $0.isData }) {
                sendTimes.append(link.now)
                return true
            }
            return false
        }
        link.send("lost")
        link.run(for: .milliseconds(400), step: .milliseconds(1))
        #expect(sendTimes.count >= 4)
        let gaps = zip(sendTimes.dropFirst(), sendTimes).map { ($0 - $1).nanoseconds }
        for (later, earlier) in zip(gaps.dropFirst(), gaps) {
            #expect(later >= earlier * 2 - 2_000_000, "gaps \(gaps)")  // each timeout doubles (±1 ms step)
        }
        link.drop = { _, _, _ in false }
        #expect(link.run(until: { link.outcomesA.count == 2 }, limit: .seconds(3), step: .milliseconds(1)))
    }

    @Test func windowLimitsUnconfirmedMessages() {
        let link = InMemoryLink { $0.windowMessages = 4 }
        link.autoConfirm = false
        for i in 0..<10 { link.send("m\(i)") }
        link.run(for: .milliseconds(50))
        #expect(link.deliveredToB.count == 4)
        #expect(link.a.backlogCount(link.addressB) == 6)
        for message in link.deliveredToB { link.b.confirm(message.token) }
        link.run(for: .milliseconds(50))
        #expect(link.deliveredToB.count == 8)
    }

    @Test func unconfirmedMessageTimesOutAndItsLaneMovesOn() {
        let link = InMemoryLink { $0.retryTimeout = .milliseconds(300) }
        link.send("first")
        link.run(until: { link.outcomesA.count == 1 })
        // Drop every copy of "stuck": it can never arrive.
        link.drop = { fromA, _, frames in
            fromA && frames.contains(where: { if case .data(let d) = $0 { String(buffer: d.payload) == "stuck" } else { false } })
        }
        let stuck = link.send("stuck")
        let after = link.send("after")
        #expect(link.run(until: { link.outcomesA[stuck] != nil }, limit: .seconds(2), step: .milliseconds(1)))
        guard case .failed(let error) = link.outcomesA[stuck] else {
            Issue.record("expected a failure, got \(String(describing: link.outcomesA[stuck]))")
            return
        }
        #expect(error.code == .timeout)
        // The receiver skips the abandoned message; "after" is delivered and confirmed.
        #expect(link.run(until: { link.outcomesA[after] == .confirmed }, limit: .seconds(2), step: .milliseconds(1)))
        #expect(link.payloadsAtB() == ["first", "after"])
    }

    @Test func silentPeerIsReportedDownAndItsMessagesFail() {
        let link = InMemoryLink { $0.peerTimeout = .milliseconds(500); $0.retryTimeout = .seconds(10) }
        link.send("hello")
        link.run(until: { link.outcomesA.count == 1 })
        link.drop = { _, _, _ in true }
        let token = link.send("into the void")
        #expect(link.run(until: { link.outcomesA[token] != nil }, limit: .seconds(3), step: .milliseconds(1)))
        #expect(link.outcomesA[token] == .failed(TransportError(.peerDown, "\(link.addressB) sent nothing for 0.5 seconds")))
        #expect(link.eventsA.contains { if case .peerDown = $0 { true } else { false } })
        // The link heals: the peer is up again and new messages flow.
        link.drop = { _, _, _ in false }
        let later = link.send("back")
        #expect(link.run(until: { link.outcomesA[later] == .confirmed }, limit: .seconds(3), step: .milliseconds(1)))
        #expect(link.eventsA.filter { if case .peerUp = $0 { true } else { false } }.count == 2)
    }

    @Test func unreachablePeerFailsTheHandshake() {
        let link = InMemoryLink { $0.retryTimeout = .milliseconds(500) }
        link.drop = { _, _, _ in true }
        let token = link.send("anyone?")
        #expect(link.run(until: { link.outcomesA[token] != nil }, limit: .seconds(2), step: .milliseconds(1)))
        guard case .failed(let error) = link.outcomesA[token] else { Issue.record("no failure"); return }
        #expect(error.code == .unreachable)
    }

    @Test func peerRestartResendsUnconfirmedMessagesInANewSession() {
        let link = InMemoryLink()
        link.autoConfirm = false
        link.send("a")
        link.send("b")
        link.run(for: .milliseconds(20))
        #expect(link.payloadsAtB() == ["a", "b"])
        // B crashes before confirming (nothing was made durable) and comes back with a new epoch.
        link.restartB(epoch: 2)
        link.autoConfirm = true
        let c = link.send("c")
        #expect(link.run(until: { link.outcomesA[c] == .confirmed }, limit: .seconds(3), step: .milliseconds(1)))
        #expect(link.outcomesA.values.allSatisfy { $0 == .confirmed })
        // The new incarnation received every unconfirmed message again, in order, then the new one.
        #expect(link.payloadsAtB() == ["a", "b", "a", "b", "c"])
        #expect(link.eventsA.contains { if case .peerRestarted(_, _, 1, 2) = $0 { true } else { false } })
    }

    /// The race behind a lost-session stall seen under CI load: B restarts; its hello reaches A first (A opens a
    /// session with the new incarnation and resends), then B's "stale" answer to a packet A had addressed to
    /// the old incarnation arrives. That stale reply is about the past and must not reset the new session;
    /// both directions keep flowing and every message reaches B's new incarnation once, in order.
    @Test func staleReplyOvertakenByThePeersHelloLeavesTheNewSessionAlone() {
        let link = InMemoryLink()
        link.autoConfirm = false
        for i in 0..<50 { link.send("m\(i)") }
        link.run(for: .milliseconds(20))
        #expect(link.payloadsAtB().count == 50)
        // A's next datagram is held back; it will reach B's next incarnation late.
        var held: [(PacketHeader, ByteBuffer)] = []
        link.drop = { fromA, header, frames in
            guard fromA, frames.contains(where: { $0.isData }) else { return false }
            var body = ByteBufferAllocator().buffer(capacity: 256)
            for f in frames { f.write(to: &body) }
            held.append((header, body))
            return true
        }
        link.send("m50")
        #expect(held.count == 1)
        // B restarts; its answer to the late packet (stale) is held back in turn.
        var stale: [(PacketHeader, ByteBuffer)] = []
        link.drop = { fromA, header, frames in
            guard !fromA, frames.contains(.stale) else { return false }
            var body = ByteBufferAllocator().buffer(capacity: 64)
            for f in frames { f.write(to: &body) }
            stale.append((header, body))
            return true
        }
        link.restartB(epoch: 2)
        link.autoConfirm = true
        let fromB = link.sendFromB("b0")  // B's new incarnation says hello first...
        for (header, body) in held { link.injectToB(header, body) }  // ...and answers the late packet: stale
        #expect(stale.count == 1)
        // A opens a session with the new incarnation and resends; B receives and confirms some of it.
        link.run(for: .milliseconds(2), step: .microseconds(50))
        #expect(link.payloadsAtB().count > 50)
        // Only now does the stale reply arrive.
        link.drop = { _, _, _ in false }
        for (header, body) in stale { link.injectToA(header, body) }
        #expect(link.run(until: { link.outcomesA.count == 51 && link.outcomesB[fromB] != nil }, limit: .seconds(5), step: .milliseconds(1)))
        #expect(link.outcomesA.values.allSatisfy { $0 == .confirmed })
        #expect(link.outcomesB[fromB] == .confirmed)
        // One new session with the new incarnation, not a second one opened by the late stale reply.
        #expect(link.eventsA.filter { if case .peerUp(_, _, 2) = $0 { true } else { false } }.isEmpty)
        #expect(Array(link.payloadsAtB().dropFirst(50)) == (0...50).map { "m\($0)" })
        // More traffic after the race still flows both ways.
        let later = link.send("m51")
        let laterFromB = link.sendFromB("b1")
        #expect(link.run(until: { link.outcomesA[later] != nil && link.outcomesB[laterFromB] != nil }, limit: .seconds(5), step: .milliseconds(1)))
        #expect(link.outcomesA[later] == .confirmed && link.outcomesB[laterFromB] == .confirmed)
        #expect(link.payloadsAtB().last == "m51")
    }

    /// A graceful shutdown (goodbye) reports the peer as having left (not down) but keeps its unconfirmed
    /// messages: the next incarnation takes them. Without one, they fail at the give-up time, not at the goodbye.
    @Test func goodbyeKeepsUnconfirmedMessagesForThePeersNextIncarnation() {
        let link = InMemoryLink()
        link.autoConfirm = false
        let first = link.send("a")
        link.send("b")
        link.run(for: .milliseconds(20))
        link.b.shutdown()
        link.run(for: .milliseconds(20))
        #expect(link.eventsA.contains { if case .peerLeft = $0 { true } else { false } })
        #expect(!link.eventsA.contains { if case .peerDown = $0 { true } else { false } })
        #expect(link.outcomesA.isEmpty)  // nothing failed at the goodbye
        link.restartB(epoch: 2)
        link.autoConfirm = true
        #expect(link.run(until: { link.outcomesA.count == 2 }, limit: .seconds(5), step: .milliseconds(1)))
        #expect(link.outcomesA.values.allSatisfy { $0 == .confirmed })
        #expect(link.payloadsAtB() == ["a", "b", "a", "b"])
        #expect(link.outcomesA[first] == .confirmed)
    }

    @Test func afterAGoodbyeWithoutReturnMessagesFailAtTheGiveUpTime() {
        let link = InMemoryLink { $0.retryTimeout = .seconds(2); $0.peerTimeout = .seconds(30) }
        link.autoConfirm = false
        let token = link.send("a")
        link.run(for: .milliseconds(20))
        link.b.shutdown()
        link.run(for: .milliseconds(20))
        link.drop = { _, _, _ in true }  // B is gone
        link.run(for: .milliseconds(1500), step: .milliseconds(1))
        #expect(link.outcomesA[token] == nil)
        #expect(link.run(until: { link.outcomesA[token] != nil }, limit: .seconds(5), step: .milliseconds(1)))
        guard case .failed(let error) = link.outcomesA[token] else { Issue.record("not failed"); return }
        #expect(error.code == .timeout)
    }

    /// A refused message is never reported confirmed: the confirm for the message after it must not cover it,
    /// even when the datagram carrying the reject is lost and the confirm arrives first.
    @Test func aRejectedMessageIsNeverCoveredByALaterConfirm() {
        let link = InMemoryLink()
        link.autoConfirm = false
        let refused = link.send("refused")
        let accepted = link.send("accepted")
        link.run(for: .milliseconds(20))
        #expect(link.deliveredToB.count == 2)
        var droppedReject = false
        link.drop = { fromA, _, frames in
            guard !fromA, !droppedReject, frames.contains(where: { if case .reject = $0 { true } else { false } }) else { return false }
            droppedReject = true
            return true
        }
        link.b.reject(link.deliveredToB[0].token, reason: "journal full")
        link.b.confirm(link.deliveredToB[1].token)
        #expect(link.run(until: { link.outcomesA.count == 2 }, limit: .seconds(5), step: .milliseconds(1)))
        #expect(droppedReject)
        guard case .failed(let error) = link.outcomesA[refused] else {
            Issue.record("the refused message was reported \(String(describing: link.outcomesA[refused]))")
            return
        }
        #expect(error.code == .rejected)
        #expect(link.outcomesA[accepted] == .confirmed)
    }

    @Test func replayedPacketsAreDropped() {
        let link = InMemoryLink()
        var captured: [(PacketHeader, ByteBuffer)] = []
        link.drop = { fromA, header, frames in
            if fromA, frames.contains(where: { $0.isData }) {
                var body = ByteBufferAllocator().buffer(capacity: 256)
                for f in frames { f.write(to: &body) }
                captured.append((header, body))
            }
            return false
        }
        link.send("once")
        link.run(until: { link.outcomesA.count == 1 })
        let replaysBefore = link.b.counters.replays
        for (header, body) in captured { link.injectToB(header, body) }
        #expect(link.payloadsAtB() == ["once"])
        #expect(link.b.counters.replays == replaysBefore + captured.count)
    }

    @Test func largeMessagesAreFragmentedAndReassembledUnderLoss() {
        let link = InMemoryLink()
        var counter = 0
        link.drop = { _, _, _ in
            counter += 1
            return counter % 7 == 0
        }
        let payload = ByteBuffer(bytes: (0..<200_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })
        let token = link.send(payload)
        #expect(link.run(until: { link.outcomesA[token] != nil }, limit: .seconds(5), step: .milliseconds(1)))
        #expect(link.outcomesA[token] == .confirmed)
        #expect(link.deliveredToB.count == 1)
        #expect(link.deliveredToB.first?.payload == payload)
    }

    @Test func oversizedMessageIsRefused() {
        let link = InMemoryLink { $0.maxMessageSize = 1000 }
        let result = link.a.send(ByteBuffer(bytes: [UInt8](repeating: 1, count: 1001)), lane: 1, reliability: .reliable,
                                 to: link.addressB, now: link.now)
        guard case .failure(let error) = result else { Issue.record("accepted"); return }
        #expect(error.code == .tooLarge)
    }

    /// Found by `Tools/fuzz.sh authenticated-body` within seconds: one authentic fragment announcing 2^28 parts
    /// made the receiver allocate a 12 GB array of slots. A fragment is now checked before anything is allocated,
    /// and the slots of a plausible one count against the reassembly caps with its payload.
    @Test func aFragmentAnnouncingTooManyPartsIsRefusedBeforeAllocating() {
        var link = TransportFuzzing.Link()
        func fragment(count: UInt32, total: UInt32) -> ByteBuffer {
            var body = ByteBuffer()
            Frame.data(DataFrame(reliable: true, lane: 3, seq: 1, fragment: .init(index: 0, count: count, totalLength: total),
                                 payload: ByteBuffer(string: "x"))).write(to: &body)
            return body
        }
        let malformed = link.b.counters.malformed
        link.inject(fragment(count: 1 << 28, total: 1 << 20))
        #expect(link.b.counters.malformed == malformed + 1)
        #expect(link.b.reassemblyByteCount == 0)
        link.inject(fragment(count: 1000, total: 100_000))
        #expect(link.b.reassemblyByteCount == 1 + 1000 * MemoryLayout<ByteBuffer?>.stride)
        link.checkInvariants()
    }

    @Test func reassemblyIsCappedPerPeer() {
        let link = InMemoryLink { $0.maxReassemblyBytesPerPeer = 50_000; $0.retryTimeout = .milliseconds(500) }
        let token = link.send(ByteBuffer(bytes: [UInt8](repeating: 9, count: 120_000)))
        #expect(link.run(until: { link.outcomesA[token] != nil }, limit: .seconds(3), step: .milliseconds(1)))
        guard case .failed = link.outcomesA[token] else { Issue.record("should not fit the receiver's reassembly cap"); return }
        #expect(link.deliveredToB.isEmpty)
        #expect(link.b.counters.droppedOverLimit > 0)
    }

    @Test func unreliableMessagesAreSentOnceAndNeverRetransmitted() {
        let link = InMemoryLink()
        link.send("hi")
        link.run(until: { link.outcomesA.count == 1 })
        link.drop = { fromA, _, frames in
            fromA && frames.contains(where: { if case .data(let d) = $0 { !d.reliable } else { false } })
        }
        let token = link.send("lost usend", reliability: .unreliable)
        link.run(for: .seconds(1), step: .milliseconds(1))
        #expect(link.outcomesA[token] == .sent)
        #expect(link.payloadsAtB() == ["hi"])
        #expect(link.a.counters.retransmits == 0)
    }

    @Test func lanesAreIndependent() {
        let link = InMemoryLink { $0.retryTimeout = .seconds(5) }
        link.send("x", lane: 1)
        link.run(until: { link.outcomesA.count == 1 })
        var blocked = true
        link.drop = { fromA, _, frames in
            blocked && fromA && frames.contains(where: { if case .data(let d) = $0 { d.lane == 7 } else { false } })
        }
        link.send("slow", lane: 7)
        for i in 0..<5 { link.send("fast\(i)", lane: 8) }
        link.run(for: .milliseconds(30))
        #expect(link.payloadsAtB(lane: 8) == (0..<5).map { "fast\($0)" })  // lane 8 is not held up by lane 7
        #expect(link.payloadsAtB(lane: 7).isEmpty)
        blocked = false
        #expect(link.run(until: { link.payloadsAtB(lane: 7) == ["slow"] }, limit: .seconds(3), step: .milliseconds(1)))
    }
}

@Suite struct ProtocolPiecesTests {
    @Test func rttEstimatorFollowsRFC6298() {
        var rtt = RTTEstimator(configuration: .init(initialRTO: .milliseconds(1000), minRTO: .milliseconds(10), maxRTO: .milliseconds(1000)))
        #expect(rtt.rto == .milliseconds(1000))
        rtt.addSample(.milliseconds(100))
        #expect(rtt.smoothed == .milliseconds(100))
        #expect(rtt.variation == .milliseconds(50))
        #expect(rtt.rto == .milliseconds(300))  // 100 + 4·50
        rtt.addSample(.milliseconds(60))
        #expect(rtt.variation == .milliseconds(47.5))  // ¾·50 + ¼·40
        #expect(rtt.smoothed == .milliseconds(95))  // ⅞·100 + ⅛·60
        rtt.timedOut()
        #expect(rtt.rto == rtt.baseRTO * 2)
        for _ in 0..<10 { rtt.timedOut() }
        #expect(rtt.rto == .milliseconds(1000))  // capped
        rtt.resetBackoff()
        var fast = RTTEstimator(configuration: .init(minRTO: .milliseconds(10)))
        fast.addSample(.microseconds(50))
        #expect(fast.rto == .milliseconds(10))  // LAN floor
    }

    @Test func ackDelayIsSubtractedOnlyWhenPlausible() {
        var rtt = RTTEstimator()
        rtt.addSample(.milliseconds(10))
        rtt.addSample(.milliseconds(12), ackDelay: .milliseconds(2))
        #expect(rtt.latest == .milliseconds(10))
        rtt.addSample(.milliseconds(11), ackDelay: .milliseconds(5))  // would go below the minimum: ignored
        #expect(rtt.latest == .milliseconds(11))
    }

    @Test func acknowledgementsWaitUpToTheMaxAckDelayForADatagramToRideOn() {
        let link = InMemoryLink.warmedUp(maxAckDelay: .milliseconds(2))

        // One packet in order: nothing goes back until the delay has passed, then the ack alone.
        link.clearLog()
        link.send("one")
        let sentAt = link.now
        #expect(link.run(until: { link.deliveredToB.count == 2 }))
        link.run(for: .milliseconds(1))
        #expect(link.framesFromB.isEmpty)
        #expect(link.run(until: { !link.framesFromB.isEmpty }, limit: .milliseconds(5)))
        let ackAt = link.sentLog.first { !$0.fromA }!.at
        #expect(ackAt - sentAt >= .milliseconds(2))
        #expect(link.framesFromB.count == 1 && link.framesFromB[0].count == 1 && link.framesFromB[0][0].isAck)
        link.b.confirm(link.deliveredToB[1].token)
        #expect(link.run(until: { link.outcomesA.count == 2 }))
        link.run(for: .milliseconds(5))

        // Confirmed within the delay: the ack rides on the confirmation (one datagram, not two).
        link.clearLog()
        link.send("two")
        #expect(link.run(until: { link.deliveredToB.count == 3 }))
        link.b.confirm(link.deliveredToB[2].token)
        link.pump()
        #expect(link.framesFromB.count == 1)
        #expect(link.framesFromB[0].contains(where: { $0.isAck }) && link.framesFromB[0].contains(where: { $0.isConfirm }))
        link.run(for: .milliseconds(5))
        #expect(link.framesFromB.count == 1)

        // Two packets waiting: acknowledged at once.
        link.clearLog()
        link.send("three")
        link.send("four")  // both arrive at the same instant
        #expect(link.run(until: { link.deliveredToB.count == 5 && link.framesFromB.contains { $0.contains(where: { $0.isAck }) } },
                         limit: .microseconds(500)))

        // Out of order (a gap): acknowledged at once, so the sender's loss detection hears of it.
        link.run(for: .milliseconds(5))
        link.clearLog()
        var dropped = false
        link.drop = { fromA, _, frames in
            guard fromA, !dropped, frames.contains(where: { $0.isData }) else { return false }
            dropped = true
            return true
        }
        link.send("lost")
        link.send("after the gap")
        #expect(link.run(until: { link.deliveredToB.count == 5 && !link.framesFromB.isEmpty }, limit: .milliseconds(1)))
        #expect(link.framesFromB[0].contains(where: { $0.isAck }))
    }

    @Test func aConfirmationThatMayWaitRidesOnTheNextDatagramOrLeavesAtTheMaxAckDelay() {
        let link = InMemoryLink.warmedUp(maxAckDelay: .milliseconds(2))

        // A request's confirmation waits; the reply carries it and the acknowledgement: one datagram.
        link.clearLog()
        let request = link.send("request")
        #expect(link.run(until: { link.deliveredToB.count == 2 }))
        link.b.confirmWhenConvenient(link.deliveredToB[1].token, now: link.now)
        link.pump()
        link.run(for: .milliseconds(1))
        #expect(link.framesFromB.isEmpty)
        #expect(link.outcomesA[request] == nil)
        _ = link.sendFromB("response")
        link.pump()
        #expect(link.framesFromB.count == 1)
        #expect(link.framesFromB.first.map { $0.contains(where: { $0.isAck }) && $0.contains(where: { $0.isConfirm }) && $0.contains(where: { $0.isData }) } == true)
        #expect(link.run(until: { link.outcomesA[request] != nil }, limit: .milliseconds(1)))
        link.run(for: .milliseconds(5))

        // Nothing to ride on: it leaves on its own once the delay has passed, not before.
        link.clearLog()
        let lonely = link.send("lonely")
        #expect(link.run(until: { link.deliveredToB.count == 3 }))
        let confirmedAt = link.now
        link.b.confirmWhenConvenient(link.deliveredToB[2].token, now: link.now)
        link.run(for: .milliseconds(1))
        #expect(!link.framesFromB.contains { $0.contains(where: { $0.isConfirm }) })
        #expect(link.run(until: { link.framesFromB.contains { $0.contains(where: { $0.isConfirm }) } }, limit: .milliseconds(5)))
        #expect(link.sentLog.first { !$0.fromA && $0.frames.contains(where: { $0.isConfirm }) }!.at - confirmedAt >= .milliseconds(2))
        #expect(link.run(until: { link.outcomesA[lonely] != nil }, limit: .milliseconds(1)))
        link.run(for: .milliseconds(5))

        // A second packet makes the acknowledgement due at once: it leaves alone, without the waiting confirmation
        // (which would make it a packet to acknowledge in turn); the confirmations ride on the reply.
        link.clearLog()
        let first = link.send("first")
        #expect(link.run(until: { link.deliveredToB.count == 4 }))
        link.b.confirmWhenConvenient(link.deliveredToB[3].token, now: link.now)
        link.pump()
        #expect(link.framesFromB.isEmpty)
        let second = link.send("second")
        #expect(link.run(until: { link.deliveredToB.count == 5 && !link.framesFromB.isEmpty }, limit: .microseconds(500)))
        #expect(link.framesFromB.count == 1 && link.framesFromB[0].allSatisfy { $0.isAck }, "\(link.framesFromB)")
        link.b.confirmWhenConvenient(link.deliveredToB[4].token, now: link.now)
        link.pump()
        #expect(link.framesFromB.count == 1)
        _ = link.sendFromB("reply")
        #expect(link.framesFromB.count == 2)
        #expect(link.framesFromB.last.map { $0.contains(where: { $0.isConfirm }) && $0.contains(where: { $0.isData }) } == true)
        #expect(link.run(until: { link.outcomesA[first] != nil && link.outcomesA[second] != nil }, limit: .milliseconds(1)))
        link.run(for: .milliseconds(5))

        // A confirmation owed at once takes a waiting one (of another lane) with it.
        link.clearLog()
        link.send("waits", lane: 1)
        link.send("urgent", lane: 2)
        #expect(link.run(until: { link.deliveredToB.count == 7 }))
        link.clearLog()
        link.b.confirmWhenConvenient(link.deliveredToB[5].token, now: link.now)
        link.b.confirm(link.deliveredToB[6].token)
        link.pump()
        #expect(link.framesFromB.count == 1)
        #expect(link.framesFromB.first.map { $0.filter { $0.isConfirm }.count } == 2)
    }

    @Test func withoutAnAckDelayAConfirmationThatMayWaitLeavesAtOnce() {
        let link = InMemoryLink { $0.maxAckDelay = .zero }
        link.autoConfirm = false
        link.send("one")
        #expect(link.run(until: { link.deliveredToB.count == 1 }))
        link.clearLog()
        link.b.confirmWhenConvenient(link.deliveredToB[0].token, now: link.now)
        link.pump()
        #expect(link.framesFromB.contains { $0.contains(where: { $0.isConfirm }) })
    }

    @Test func withoutAnAckDelayEveryPacketIsAcknowledgedAtOnce() {
        let link = InMemoryLink { $0.maxAckDelay = .zero }
        link.autoConfirm = false
        link.send("warm-up")
        link.run(until: { link.deliveredToB.count == 1 })
        link.clearLog()
        link.send("one")
        #expect(link.run(until: { link.deliveredToB.count == 2 && !link.framesFromB.isEmpty }, limit: .microseconds(300)))
    }

    @Test func ackRangesMergeAndEncode() {
        var ranges = AckRanges()
        for n: UInt64 in [1, 2, 3, 5, 6, 9, 4, 20] { ranges.insert(n) }
        #expect(ranges.ranges == [1...6, 9...9, 20...20])
        let inserted = ranges.insert(5)
        #expect(!inserted)
        let frame = Frame.ack(AckFrame(ranges: ranges.descending(limit: 32), delayMicros: 250))
        var buffer = ByteBufferAllocator().buffer(capacity: 64)
        frame.write(to: &buffer)
        #expect(buffer.readableBytes == frame.encodedSize)
        #expect(Frame.readAll(from: &buffer) == [frame])
    }

    @Test func replayWindowRejectsRepeatsAndOldPackets() {
        var window = ReplayWindow()
        #expect(window.check(1))
        window.record(1)
        #expect(!window.check(1))
        window.record(10_000)
        #expect(!window.check(2))  // below the window
        #expect(window.check(9_999))
        window.record(9_999)
        #expect(!window.check(9_999))
        #expect(!window.check(0))
    }

    @Test func malformedFramesAreRejectedNotTrapped() {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<5000 {
            var buffer = ByteBuffer(bytes: (0..<Int.random(in: 0..<40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) })
            _ = Frame.readAll(from: &buffer)
        }
        // A data frame claiming more payload than is present.
        var lying = ByteBuffer(bytes: [0x10, 1, 0, 1, 1, 200, 1, 2, 3])
        #expect(Frame.readAll(from: &lying) == nil)
    }
}

@Suite struct EpochAndKeyTests {
    @Test func packetsFromAPeersOldEpochAreDropped() {
        let link = InMemoryLink()
        var captured: [(PacketHeader, ByteBuffer)] = []
        link.drop = { fromA, header, frames in
            if fromA, frames.contains(where: { $0.isData }) {
                var body = ByteBufferAllocator().buffer(capacity: 256)
                for f in frames { f.write(to: &body) }
                captured.append((header, body))
                return true  // held back: it will arrive late
            }
            return false
        }
        link.send("late")
        link.run(for: .milliseconds(5))
        #expect(!captured.isEmpty)
        // A restarts (epoch 2) and talks to B again; then A's epoch-1 packet finally arrives.
        var config = link.a.configuration
        config.epoch = 2
        link.a = TransportStateMachine(configuration: config)
        link.drop = { _, _, _ in false }
        let token = link.send("fresh")
        #expect(link.run(until: { link.outcomesA[token] == .confirmed }, limit: .seconds(2), step: .milliseconds(1)))
        for (header, body) in captured { link.injectToB(header, body) }
        link.run(for: .milliseconds(50))
        #expect(link.payloadsAtB() == ["fresh"])  // the old incarnation's message is not delivered
    }

    @Test func sealerRejectsUnknownKeysAndTamperingAndSupportsRotation() {
        let old = ClusterKey.generate()
        let new = ClusterKey.generate()
        let header = PacketHeader(encrypted: false, keyID: 0, sender: NodeID(high: 1, low: 2), senderEpoch: 1,
                                  destinationEpoch: 0, packetNumber: 7)
        let body = ByteBuffer(bytes: Array("frames".utf8))
        let allocator = ByteBufferAllocator()
        // A sender that already switched to the new key (id 1) …
        let rotated = DatagramSealer(keyring: try! Keyring(keys: [0: old, 1: new], primary: 1), encrypt: false)
        let datagram = rotated.seal(header: header, body: body, allocator: allocator)
        // … is understood by a node that has both keys, even with the old one primary,
        let transitional = DatagramSealer(keyring: try! Keyring(keys: [0: old, 1: new], primary: 0), encrypt: false)
        guard case .success(let (opened, plaintext)) = transitional.open(datagram) else {
            Issue.record("rotation: the new key was not accepted")
            return
        }
        #expect(opened.keyID == 1 && plaintext == body)
        // … but not by a node that has only the old key.
        let oldOnly = DatagramSealer(keyring: Keyring(old), encrypt: false)
        #expect(oldOnly.open(datagram).failureValue == .unknownKey)
        // Any flipped bit fails authentication.
        for index in [0, 5, 30, datagram.readableBytes - 1] {
            var tampered = datagram
            let byte = tampered.getInteger(at: index, as: UInt8.self)!
            tampered.setInteger(byte ^ 0x10, at: index)
            #expect(transitional.open(tampered).failureValue != nil)
        }
    }

    /// The state machine writes a datagram's frames with room for the header before and the tag after; the sealer
    /// fills that room instead of copying the frames. Both forms make the same bytes, and the room can be used once
    /// only by the buffer's owner: a copy kept elsewhere keeps its frames.
    @Test func sealingInTheBodysOwnRoomMakesTheSameDatagram() throws {
        let sealer = DatagramSealer(keyring: Keyring(ClusterKey.generate()), encrypt: false)
        let header = PacketHeader(encrypted: false, keyID: 0, sender: NodeID(high: 5, low: 6), senderEpoch: 7,
                                  destinationEpoch: 8, packetNumber: 42)
        let frames = Array("frames of a datagram".utf8)
        var roomy = ByteBufferAllocator().buffer(capacity: PacketHeader.size + frames.count + PacketHeader.tagSize)
        roomy.moveWriterIndex(forwardBy: PacketHeader.size)
        roomy.moveReaderIndex(forwardBy: PacketHeader.size)
        roomy.writeBytes(frames)
        let kept = roomy
        let inPlace = sealer.seal(header: header, body: roomy, allocator: ByteBufferAllocator())
        let copied = sealer.seal(header: header, body: ByteBuffer(bytes: frames), allocator: ByteBufferAllocator())
        #expect(Array(inPlace.readableBytesView) == Array(copied.readableBytesView))
        #expect(inPlace.readableBytes == PacketHeader.size + frames.count + PacketHeader.tagSize)
        #expect(Array(kept.readableBytesView) == frames)
        guard case .success(let (opened, body)) = sealer.open(inPlace) else {
            Issue.record("a datagram sealed in place did not open")
            return
        }
        #expect(opened.packetNumber == 42 && Array(body.readableBytesView) == frames)
        // Room for less than a header: sealed by copying, the same bytes again.
        var tight = ByteBufferAllocator().buffer(capacity: PacketHeader.size + frames.count + PacketHeader.tagSize)
        tight.moveWriterIndex(forwardBy: PacketHeader.size - 1)
        tight.moveReaderIndex(forwardBy: PacketHeader.size - 1)
        tight.writeBytes(frames)
        #expect(Array(sealer.seal(header: header, body: tight, allocator: ByteBufferAllocator()).readableBytesView)
                == Array(copied.readableBytesView))
    }

    @Test func encryptionHidesTheBodyAndRoundTrips() throws {
        let key = Keyring(ClusterKey.generate())
        let header = PacketHeader(encrypted: false, keyID: 0, sender: NodeID(high: 9, low: 9), senderEpoch: 3,
                                  destinationEpoch: 4, packetNumber: 99)
        let secret = ByteBuffer(bytes: Array("myName=Jon; the schedule is secret".utf8))
        let sealer = DatagramSealer(keyring: key, encrypt: true)
        let datagram = sealer.seal(header: header, body: secret, allocator: ByteBufferAllocator())
        let bytes = Array(datagram.readableBytesView)
        #expect(!bytes.indices.contains { i in bytes[i...].starts(with: Array("Jon".utf8)) })
        let receiver = DatagramSealer(keyring: key, encrypt: false)  // decryption follows the header's flag
        guard case .success(let (opened, plaintext)) = receiver.open(datagram) else {
            Issue.record("encrypted datagram did not open")
            return
        }
        #expect(opened.encrypted && opened.packetNumber == 99)
        #expect(plaintext == secret)
        // Every bit of one ciphertext byte flipped (setting it to a constant left it unchanged one time in 256).
        var tampered = datagram
        let byte = try #require(tampered.getInteger(at: PacketHeader.size + 2, as: UInt8.self))
        tampered.setInteger(byte ^ 0xFF, at: PacketHeader.size + 2)
        #expect(receiver.open(tampered).failureValue == .badTag)
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let f) = self { f } else { nil }
    }
}

@Suite struct MACCompatibilityTests {
    /// The hand-rolled HMAC (precomputed pad states) must equal swift-crypto's HMAC-SHA256: a datagram sealed
    /// here carries exactly the first 16 bytes of the standard HMAC over header and body.
    @Test func tagIsStandardHMACSHA256() throws {
        let key = ClusterKey.generate()
        let sealer = DatagramSealer(keyring: Keyring(key), encrypt: false)
        for size in [0, 1, 63, 64, 65, 1000, 1348] {
            let header = PacketHeader(encrypted: false, keyID: 0, sender: NodeID(high: 5, low: 6), senderEpoch: 2,
                                      destinationEpoch: 1, packetNumber: UInt64(size + 1))
            let body = ByteBuffer(bytes: (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 17) })
            let datagram = sealer.seal(header: header, body: body, allocator: ByteBufferAllocator())
            let bytes = Array(datagram.readableBytesView)
            let macKey = HKDF<SHA256>.deriveKey(inputKeyMaterial: SymmetricKey(data: key.bytes), salt: Array("mesh.transport".utf8),
                                                info: Array("mesh.mac.v1".utf8), outputByteCount: 32)
            let expected = Array(HMAC<SHA256>.authenticationCode(for: bytes.dropLast(16), using: macKey)).prefix(16)
            #expect(Array(bytes.suffix(16)) == Array(expected), "size \(size)")
        }
    }
}

@Suite struct SendGateTests {
    @Test func passesWithoutWaitingOnlyWithinTheTransitLimitAndWithNothingParked() {
        let gate = SendGate(transitLimit: 10)
        #expect(gate.tryPass(6))
        #expect(!gate.tryPass(5))  // 11 would be on their way
        #expect(gate.tryPass(4))
        gate.arrived(6)
        #expect(gate.tryPass(6))
        gate.parked(1)  // something waits for window space: everyone waits for the loop
        #expect(!gate.tryPass(1))
        gate.unparked(1)
        gate.arrived(10)
        #expect(gate.tryPass(1))
        gate.close()
        #expect(gate.closed)
    }
}

/// Peers come and go (short-lived clients, restarts, replayed datagrams): sessions of peers that are not live
/// are closed after a bounded time, nothing is sent to them, their number is bounded without evicting a live
/// peer, and a peer that was forgotten but is alive resumes without losing or repeating a message.
@Suite struct PeerChurnTests {
    static func churn(_ c: inout TransportConfiguration) {
        c.keepaliveInterval = .milliseconds(100)
        c.peerTimeout = .milliseconds(500)
        c.forgetPeersAfter = .milliseconds(300)
        c.retryTimeout = .seconds(2)
    }

    /// A hello that reaches B from a new address (a replayed capture, or a client that died at once).
    static func hello(from node: NodeID, packet: UInt64 = 1, session: UInt64 = 1) -> (PacketHeader, [Frame]) {
        (PacketHeader(encrypted: false, keyID: 0, sender: node, senderEpoch: 1, destinationEpoch: 0, packetNumber: packet),
         [.hello(version: 2, session: session)])
    }

    @Test func aHelloThatNobodyFollowsUpBuysABoundedNumberOfDatagramsAndIsForgotten() throws {
        let link = InMemoryLink(configure: Self.churn)
        let stranger = try SocketAddress(ipAddress: "10.0.0.9", port: 4444)
        let (header, frames) = Self.hello(from: NodeID(high: 9, low: 9))
        link.b.receive(header: header, frames: frames, from: stranger, now: link.now)
        link.pump()
        #expect(link.b.sessions[stranger] != nil)
        link.run(for: .seconds(10), step: .milliseconds(5))
        let sent = link.strayLog.filter { !$0.fromA && $0.to == stranger }
        // A welcome, then keepalive probes until the peer timeout (5 at 100 ms in 500 ms), then nothing.
        #expect(sent.count >= 2 && sent.count <= 8, "\(sent.count) datagrams to a peer that never answered")
        #expect(link.b.sessions[stranger] == nil)
        #expect(link.b.counters.peersForgotten == 1)
        let after = link.strayLog.count
        link.run(for: .seconds(5), step: .milliseconds(5))
        #expect(link.strayLog.count == after)
    }

    @Test func aPeerThatLeftIsForgottenAndNotProbed() {
        let link = InMemoryLink(configure: Self.churn)
        link.send("a")
        #expect(link.run(until: { link.outcomesA.count == 1 }, limit: .seconds(5)))
        link.b.shutdown()
        link.run(for: .milliseconds(20))
        #expect(link.eventsA.contains { if case .peerLeft = $0 { true } else { false } })
        link.drop = { _, _, _ in true }  // B is gone
        link.run(for: .seconds(2), step: .milliseconds(5))
        #expect(link.a.sessions.isEmpty)
        link.clearLog()
        link.run(for: .seconds(5), step: .milliseconds(5))
        #expect(link.sentLog.filter(\.fromA).isEmpty, "A still sends to a peer that left")
    }

    /// A forgets B (B's answers were lost, so A saw it down) while B keeps its session. B's next message makes
    /// A open a new session; B resets its side at the hello and sends again: delivered once, in order, confirmed.
    @Test func aForgottenSessionResumesWhenTheOtherSideSendsFirst() {
        let link = InMemoryLink(configure: Self.churn)
        link.sendFromB("b0")
        #expect(link.run(until: { link.outcomesB.count == 1 }, limit: .seconds(5)))
        link.drop = { fromA, _, _ in !fromA }  // B → A lost: A sees B go quiet; B hears A's probes
        #expect(link.run(until: { link.a.sessions.isEmpty }, limit: .seconds(5), step: .milliseconds(5)))
        #expect(link.b.sessions[link.addressA]?.phase == .established)
        link.drop = { _, _, _ in false }
        let tokens = (1...3).map { link.sendFromB("b\($0)") }
        #expect(link.run(until: { tokens.allSatisfy { link.outcomesB[$0] != nil } }, limit: .seconds(5), step: .milliseconds(1)))
        #expect(tokens.allSatisfy { link.outcomesB[$0] == .confirmed })
        #expect(link.deliveredToA.map { String(buffer: $0.payload) } == ["b0", "b1", "b2", "b3"])
    }

    /// The same, but the side that forgot sends first: its new session's packets are above every number it used
    /// (not replays to B), B resets at the hello, and traffic flows both ways.
    @Test func aForgottenSessionResumesWhenItsSideSendsFirst() {
        let link = InMemoryLink(configure: Self.churn)
        link.send("a0")
        #expect(link.run(until: { link.outcomesA.count == 1 }, limit: .seconds(5)))
        link.drop = { fromA, _, _ in !fromA }
        #expect(link.run(until: { link.a.sessions.isEmpty }, limit: .seconds(5), step: .milliseconds(5)))
        link.drop = { _, _, _ in false }
        let next = link.send("a1")
        let back = link.sendFromB("b1")
        #expect(link.run(until: { link.outcomesA[next] != nil && link.outcomesB[back] != nil }, limit: .seconds(5), step: .milliseconds(1)))
        #expect(link.outcomesA[next] == .confirmed && link.outcomesB[back] == .confirmed)
        #expect(link.payloadsAtB() == ["a0", "a1"])
        #expect(link.deliveredToA.map { String(buffer: $0.payload) } == ["b1"])
        #expect(link.b.counters.replays == 0)
    }

    /// At the limit, a stranger's hello is dropped rather than evicting a live peer; a session that is not live
    /// makes room; a send to a new address fails with `tooManyPeers` while every held peer is live.
    @Test func theNumberOfSessionsIsBoundedWithoutEvictingLivePeers() throws {
        let link = InMemoryLink { Self.churn(&$0); $0.maxPeers = 2 }
        link.send("a")
        #expect(link.run(until: { link.outcomesA.count == 1 }, limit: .seconds(5)))
        // B holds A (live) and one more peer, which answers B's probes.
        let friend = try SocketAddress(ipAddress: "10.0.0.7", port: 7777)
        let (h1, f1) = Self.hello(from: NodeID(high: 7, low: 7))
        link.b.receive(header: h1, frames: f1, from: friend, now: link.now)
        #expect(link.b.sessions.count == 2)
        // A stranger at the limit while both are live: refused, nothing sent to it.
        let stranger = try SocketAddress(ipAddress: "10.0.0.9", port: 9999)
        let (h2, f2) = Self.hello(from: NodeID(high: 9, low: 9))
        link.b.receive(header: h2, frames: f2, from: stranger, now: link.now)
        link.pump()
        #expect(link.b.counters.peersRefused == 1)
        #expect(link.b.sessions[stranger] == nil && link.b.sessions[link.addressA] != nil)
        #expect(!link.strayLog.contains { $0.to == stranger })
        let refused = link.b.send(ByteBuffer(string: "x"), lane: 1, reliability: .reliable, to: stranger, now: link.now)
        guard case .failure(let error) = refused else { Issue.record("a send beyond maxPeers was taken"); return }
        #expect(error.code == .tooManyPeers)
        // The friend never answers: once it is down (and quiet), a newcomer takes its place. A stays.
        link.run(for: .seconds(1), step: .milliseconds(5))
        link.b.receive(header: h2, frames: f2, from: stranger, now: link.now)
        #expect(link.b.sessions[stranger] != nil && link.b.sessions[link.addressA] != nil && link.b.sessions[friend] == nil)
    }
}
