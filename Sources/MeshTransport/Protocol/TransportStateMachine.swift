import NIOCore

/// What the state machine asks its driver (the NIO handler) to do.
enum TransportAction {
    /// Seal and send a datagram.
    case transmit(address: SocketAddress, header: PacketHeader, body: ByteBuffer)
    /// Hand a message to the application.
    case deliver(ReceivedMessage)
    /// A message handed to `send` reached its final outcome.
    case outcome(token: UInt64, MessageOutcome)
    /// A peer event.
    case event(TransportEvent)
}

/// Counters the driver exports as metrics.
struct TransportCounters: Sendable, Equatable {
    var datagramsIn = 0
    var datagramsOut = 0
    var retransmits = 0
    var fastRetransmits = 0
    var timeouts = 0
    var duplicates = 0
    var replays = 0
    var stale = 0
    var droppedOverLimit = 0
    var authFailures = 0
    var malformed = 0
    /// Authentic datagrams from new addresses dropped because ``TransportConfiguration/maxPeers`` live peers are held.
    var peersRefused = 0
    /// Sessions closed because their peer was quiet for ``TransportConfiguration/forgetPeersAfter``.
    var peersForgotten = 0
}

/// The transport protocol as a pure state machine: no sockets, no clock of its own. Every entry point takes
/// `now`; the effects accumulate as ``TransportAction``s, drained with ``takeActions()``. Authentication happens
/// before ``receive(header:frames:from:now:)`` is called.
///
/// Confined to one event loop (or one test), hence not `Sendable`.
final class TransportStateMachine {
    let configuration: TransportConfiguration
    private(set) var sessions: [SocketAddress: Session] = [:]
    private var replayWindows: [ReplayKey: ReplayWindow] = [:]
    private var replayOrder: [ReplayKey] = []
    private var nextToken: UInt64 = 1
    /// The next session number (hello/welcome); grows for the transport's life (one epoch).
    private var nextSessionNumber: UInt64 = 1
    /// The highest packet number sent to anyone: a new session starts above it, so a peer whose replay window
    /// remembers a closed session's numbers never takes the new session's packets for replays.
    private var highestPacketNumber: UInt64 = 0
    private var reassemblyBytes = 0
    private var actions: [TransportAction] = []
    /// The frames of the datagram a flush is filling, kept between flushes so that filling one allocates nothing.
    private var framesScratch: [Frame] = []
    /// An emptied array of actions handed back by ``recycle(_:)``: ``takeActions()`` collects the next actions into
    /// it, so that taking actions allocates nothing in steady state. The machine keeps no reference to an array it
    /// returned: a datagram's buffer in it has one owner, which lets the sealer write into it without a copy. A large
    /// array (a burst's datagrams) is not kept: the spare holds room for at most ``recycledActions`` actions.
    private var spareActions: [TransportAction] = []
    static let recycledActions = 64
    private let rttConfiguration: RTTEstimator.Configuration
    private let fragmentSize: Int
    var counters = TransportCounters()

    private struct ReplayKey: Hashable {
        let node: NodeID
        let epoch: UInt32
    }

    init(configuration: TransportConfiguration) {
        self.configuration = configuration
        self.rttConfiguration = .init(initialRTO: configuration.retryInterval, minRTO: configuration.minRetransmitTimeout,
                                      maxRTO: configuration.maxRetransmitTimeout)
        self.fragmentSize = configuration.fragmentPayloadSize
    }

    /// The actions collected since the last call, in order; the machine keeps no reference to them.
    func takeActions() -> [TransportAction] {
        guard !actions.isEmpty else { return [] }
        var taken = spareActions
        spareActions = []
        swap(&taken, &actions)
        return taken
    }

    /// Hands back an array ``takeActions()`` returned, once its actions are done, for the next actions to reuse.
    func recycle(_ done: consuming [TransportAction]) {
        var done = done
        guard done.capacity <= Self.recycledActions else { return }
        done.removeAll(keepingCapacity: true)
        spareActions = done
    }

    /// The session with `address`, opened if there is none — `nil` when ``TransportConfiguration/maxPeers``
    /// sessions are held and none of them may be closed (every peer is live).
    private func session(_ address: SocketAddress, now: NIODeadline) -> Session? {
        if let s = sessions[address] { return s }
        if sessions.count >= configuration.maxPeers {
            // Make room by closing the session quiet the longest; a live peer is never evicted.
            let candidate = sessions.values.filter(\.isForgettable).min { $0.quietSince! < $1.quietSince! }
            guard let evicted = candidate else { return nil }
            forget(evicted)
        }
        let s = Session(address: address, rtt: rttConfiguration, helloInterval: configuration.helloInterval,
                        maxAckDelay: configuration.maxAckDelay)
        s.nextPacketNumber = highestPacketNumber + 1
        s.localSession = nextSessionNumber
        nextSessionNumber += 1
        s.quietSince = now
        sessions[address] = s
        return s
    }

    /// Closes a session and frees its state. Its packet numbers stay used (``highestPacketNumber``).
    private func forget(_ s: Session) {
        reassemblyBytes -= s.reassemblyBytes
        sessions[s.address] = nil
        counters.peersForgotten += 1
    }

    /// Bytes of partly reassembled messages, all peers.
    var reassemblyByteCount: Int { reassemblyBytes }

    /// Messages waiting for window space toward `address`.
    func backlogCount(_ address: SocketAddress) -> Int { sessions[address]?.backlogCount ?? 0 }

    // MARK: - Sending

    /// Queues a message. Returns its token, whose outcome arrives later as an action.
    func send(_ payload: ByteBuffer, lane: UInt16, reliability: Reliability, to address: SocketAddress,
              now: NIODeadline) -> Result<UInt64, TransportError> {
        guard payload.readableBytes <= configuration.maxMessageSize else {
            return .failure(TransportError(.tooLarge,
                "message of \(payload.readableBytes) bytes exceeds maxMessageSize \(configuration.maxMessageSize)"))
        }
        guard let s = session(address, now: now) else {
            return .failure(TransportError(.tooManyPeers, """
                cannot open a session with \(address): \(configuration.maxPeers) sessions with live peers are held (maxPeers)
                """))
        }
        let token = nextToken
        nextToken += 1
        let entry = OutboundEntry(token: token, lane: lane, reliable: reliability == .reliable, payload: payload,
                                  fragmentSize: fragmentSize, now: now)
        s.backlog.append(entry)
        if s.phase == .connecting && s.connectStartedAt == nil { startHandshake(s, now: now) }
        admit(s, now: now)
        return .success(token)
    }

    /// Moves backlog into the window once the session is established.
    private func admit(_ s: Session, now: NIODeadline) {
        guard s.phase == .established else { return }
        while s.backlogHead < s.backlog.count {
            let entry = s.backlog[s.backlogHead]
            if entry.reliable {
                guard s.outstandingCount < configuration.windowMessages else { break }
                let seq = s.nextSeq[entry.lane, default: 1]
                s.nextSeq[entry.lane] = seq + 1
                entry.seq = seq
                s.outstanding[entry.lane, default: []].append(entry)
                s.outstandingCount += 1
            } else {
                entry.seq = s.nextUnreliableID
                s.nextUnreliableID += 1
            }
            s.backlogHead += 1
            for i in 0..<entry.fragmentCount {
                entry.queued[i] = true
                s.freshQueue.append((entry, i))
            }
        }
        s.compactSentOrder()
    }

    /// Fails every message still waiting in the backlog. Returns whether there was any.
    @discardableResult
    private func failBacklog(_ s: Session, _ error: TransportError) -> Bool {
        let any = s.backlogHead < s.backlog.count
        while s.backlogHead < s.backlog.count {
            finish(s, s.backlog[s.backlogHead], .failed(error))
            s.backlogHead += 1
        }
        return any
    }

    private func finish(_ s: Session, _ entry: OutboundEntry, _ outcome: MessageOutcome) {
        guard !entry.finished else { return }
        entry.finished = true
        if entry.reliable && entry.seq > 0 { s.outstandingCount -= 1 }
        actions.append(.outcome(token: entry.token, outcome))
    }

    // MARK: - Receiving

    /// Whether a datagram with this header would be new (not replayed). Checked before frames are parsed.
    func isFresh(_ header: PacketHeader) -> Bool {
        replayWindows[ReplayKey(node: header.sender, epoch: header.senderEpoch)]?.check(header.packetNumber) ?? (header.packetNumber > 0)
    }

    private func recordReplay(_ header: PacketHeader) {
        let key = ReplayKey(node: header.sender, epoch: header.senderEpoch)
        if replayWindows[key] == nil {
            replayOrder.append(key)
            if replayOrder.count > 4096 {
                replayWindows[replayOrder.removeFirst()] = nil
            }
        }
        replayWindows[key, default: ReplayWindow()].record(header.packetNumber)
    }

    /// Processes an authenticated datagram.
    func receive(header: PacketHeader, frames: [Frame], from address: SocketAddress, now: NIODeadline) {
        counters.datagramsIn += 1
        guard isFresh(header) else {
            counters.replays += 1
            return
        }
        guard let s = session(address, now: now) else {
            // A new address while every held session is live: a stranger cannot evict a live peer.
            counters.peersRefused += 1
            return
        }
        var helloSession: UInt64?
        var helloVersion: UInt8 = 0
        var welcomeSession: UInt64?
        var welcomeAnswering: UInt64?
        for frame in frames {
            switch frame {
            case .hello(let version, let session):
                helloSession = session
                helloVersion = version
            case .welcome(let session, let answering):
                welcomeSession = session
                welcomeAnswering = answering
            default: break
            }
        }
        let hasHello = helloSession != nil
        let hasStale = frames.contains { $0 == .stale }

        if hasStale && !hasHello {
            // "You addressed an epoch of mine that is gone." Honoured only when addressed to this incarnation,
            // and only when it comes from an incarnation newer than the one this session talks to: a stale
            // reply from the incarnation already in session answers packets sent to its predecessor before
            // the new session opened (its hello overtook it). Resetting then would leave the peer's session
            // (its lanes, its replay window) out of step with ours.
            recordReplay(header)
            guard header.destinationEpoch == configuration.epoch else { return }
            if s.phase == .established {
                if let known = s.peerNode, known == header.sender, header.senderEpoch <= s.peerEpoch {
                    counters.stale += 1
                    return
                }
                restartHandshake(s, now: now)
            } else if s.connectStartedAt != nil {
                restartHandshake(s, now: now)
            }
            return
        }
        if let helloSession {
            guard adoptPeer(s, node: header.sender, epoch: header.senderEpoch, session: helloSession,
                            packetNumber: header.packetNumber, now: now) else {
                recordReplay(header)
                return
            }
            s.peerReadsAnswering = helloVersion >= 3
            s.welcomeOwed = true
        } else if header.destinationEpoch != configuration.epoch {
            // Addressed to an earlier incarnation of this node: tell the sender to open a new session.
            recordReplay(header)
            counters.stale += 1
            oweStale(s, epoch: header.senderEpoch, now: now)
            return
        } else if let welcomeSession {
            // A welcome to a hello this side has given up (it opened a newer session since) is about the past: the
            // peer resets again at the newer hello, and answers it with a welcome of its own.
            if let answering = welcomeAnswering, answering != s.localSession {
                recordReplay(header)
                counters.stale += 1
                return
            }
            guard adoptPeer(s, node: header.sender, epoch: header.senderEpoch, session: welcomeSession,
                            packetNumber: header.packetNumber, now: now) else {
                recordReplay(header)
                return
            }
        } else if s.phase != .established || s.peerNode != header.sender || s.peerEpoch != header.senderEpoch {
            recordReplay(header)
            if s.phase == .connecting {
                // The sender holds a session with this incarnation of ours that this side no longer has (it was
                // closed as idle): open a new one. The sender resets its side at the hello and sends again what
                // this side never confirmed. While a handshake is already under way, its hello is on its way.
                if s.connectStartedAt == nil { startHandshake(s, now: now) }
                return
            }
            counters.stale += 1
            oweStale(s, epoch: header.senderEpoch, now: now)
            return
        } else if header.packetNumber < s.peerFloor {
            // Sent before the handshake that opened this session (see ``Session/peerFloor``): held up in the network.
            recordReplay(header)
            counters.stale += 1
            return
        }
        recordReplay(header)
        s.lastReceivedAt = now
        s.quietSince = nil
        if s.down {
            s.down = false
            actions.append(.event(.peerUp(address: address, node: header.sender, epoch: header.senderEpoch)))
        }

        var accepted = true
        var ackEliciting = false
        for frame in frames {
            if frame.isAckEliciting { ackEliciting = true }
            switch frame {
            case .ack(let ack): onAck(s, ack, now: now)
            case .confirm(let lane, let upTo): onConfirm(s, lane: lane, upTo: upTo)
            case .reject(let lane, let seq, let reason): onReject(s, lane: lane, seq: seq, reason: reason)
            case .abandon(let lane, let from, let to): onAbandon(s, lane: lane, from: from, to: to)
            case .goodbye: peerLeft(s, now: now)
            case .data(let data): if !onData(s, data, now: now) { accepted = false }
            case .ping, .hello, .welcome, .stale: break
            }
        }
        if accepted {
            let previousLargest = s.received.largest
            let fresh = s.received.insert(header.packetNumber)
            if ackEliciting {
                s.ackOwed = true
                s.largestReceivedAt = now
                s.unackedEliciting += 1
                // Delayed acknowledgement (QUIC's rules, RFC 9000 §13.2): the ack waits up to maxAckDelay for a
                // datagram going the same way (a reply, a confirmation) to ride on, unless two ack-eliciting
                // packets are waiting, or this one is a duplicate or arrived out of order (the sender's loss
                // detection needs to hear about a gap at once).
                let inOrder = fresh && header.packetNumber == (previousLargest ?? 0) + 1
                if !inOrder || s.unackedEliciting >= 2 || s.maxAckDelay == .zero {
                    s.ackDueAt = now
                } else if s.ackDueAt == nil {
                    s.ackDueAt = now + s.maxAckDelay
                }
            }
        } else {
            counters.droppedOverLimit += 1
        }
        admit(s, now: now)
    }

    /// Records the peer's identity and session number from a hello or welcome. Returns false for a stale one (an
    /// older epoch, or an older session of the same epoch).
    private func adoptPeer(_ s: Session, node: NodeID, epoch: UInt32, session: UInt64, packetNumber: UInt64,
                           now: NIODeadline) -> Bool {
        if s.phase == .established, let known = s.peerNode {
            if known == node && epoch == s.peerEpoch {
                // The same session again (a retransmitted hello, or a version-1 peer without numbers).
                if session == 0 || session == s.peerSession { return true }
                // An older session's hello or welcome, overtaken by the current one.
                if session < s.peerSession { return false }
                // The peer closed its session with us (idle) and opened a new one: start afresh too; what this side
                // had not seen confirmed is sent again in the new session.
                let wasDown = s.down
                resetSession(s, now: now)
                s.peerSession = session
                s.peerFloor = packetNumber
                s.lastReceivedAt = now
                s.quietSince = nil
                if wasDown { actions.append(.event(.peerUp(address: s.address, node: node, epoch: epoch))) }
                admit(s, now: now)
                return true
            }
            if known == node && epoch < s.peerEpoch { return false }
            let old = s.peerEpoch
            if known != node { failUnconfirmed(s, addressChanged(s, from: known, to: node)) }
            resetSession(s, now: now)
            s.phase = .established
            s.peerNode = node
            s.peerEpoch = epoch
            s.peerSession = session
            s.peerFloor = packetNumber
            s.lastReceivedAt = now
            s.quietSince = nil
            if known == node {
                actions.append(.event(.peerRestarted(address: s.address, node: node, oldEpoch: old, newEpoch: epoch)))
            } else {
                actions.append(.event(.peerUp(address: s.address, node: node, epoch: epoch)))
            }
            admit(s, now: now)
            return true
        }
        // The same when the session was being opened again (after a "stale"): what waits was sent to the previous node.
        if let previous = s.previousPeer, previous.node != node { failUnconfirmed(s, addressChanged(s, from: previous.node, to: node)) }
        s.phase = .established
        s.peerNode = node
        s.peerEpoch = epoch
        s.peerSession = session
        s.peerFloor = packetNumber
        s.connectStartedAt = nil
        s.nextHelloAt = nil
        s.lastReceivedAt = now
        s.quietSince = nil
        s.down = false
        if let previous = s.previousPeer, previous.node == node, previous.epoch < epoch {
            actions.append(.event(.peerRestarted(address: s.address, node: node, oldEpoch: previous.epoch, newEpoch: epoch)))
        } else {
            actions.append(.event(.peerUp(address: s.address, node: node, epoch: epoch)))
        }
        s.previousPeer = nil
        admit(s, now: now)
        return true
    }

    /// Another node has the address now (the previous one is gone): what was sent while the previous one held it
    /// and is not confirmed fails with this, rather than reach the new one.
    private func addressChanged(_ s: Session, from previous: NodeID, to node: NodeID) -> TransportError {
        TransportError(.peerDown, "the node at \(s.address) is now another node (\(node)); \(previous), to which this was sent, is gone from there")
    }

    /// Starts a new session with the same address: unconfirmed reliable messages go back to the backlog (in
    /// their order) to be sent again; receive state is dropped.
    private func resetSession(_ s: Session, now: NIODeadline) {
        var resend: [OutboundEntry] = []
        for lane in s.outstanding.keys.sorted() {
            for entry in s.outstanding[lane]! where !entry.finished {
                let fresh = OutboundEntry(token: entry.token, lane: entry.lane, reliable: true, payload: entry.payload,
                                          fragmentSize: fragmentSize, now: entry.enqueuedAt)
                resend.append(fresh)
                entry.finished = true
            }
        }
        resend.append(contentsOf: s.backlog[s.backlogHead...])
        s.backlog = resend
        s.backlogHead = 0
        s.outstanding = [:]
        s.outstandingCount = 0
        s.clearInFlight()
        s.largestAcked = 0
        // Packet numbers keep counting: the peer's replay window is per (node, epoch), not per session, so a
        // number used before the reset must never be used again in this epoch.
        s.nextSeq = [:]
        s.nextUnreliableID = 1
        s.rejectsOwed = []
        s.abandonsOwed = []
        s.rtt = RTTEstimator(configuration: rttConfiguration)
        s.received = AckRanges(maxRanges: 32)
        s.ackSent()
        s.lanes = [:]
        s.confirmsDueAt = nil
        reassemblyBytes -= s.reassemblyBytes
        s.reassembly = [:]
        s.reassemblyBytes = 0
        s.down = false
    }

    private func restartHandshake(_ s: Session, now: NIODeadline) {
        if let node = s.peerNode { s.previousPeer = (node, s.peerEpoch) }
        resetSession(s, now: now)
        s.phase = .connecting
        s.peerNode = nil
        s.peerEpoch = 0
        s.peerSession = 0
        s.localSession = nextSessionNumber
        nextSessionNumber += 1
        startHandshake(s, now: now)
    }

    /// Starts sending hellos (now, then backing off) until a welcome arrives or the give-up time passes.
    private func startHandshake(_ s: Session, now: NIODeadline) {
        s.connectStartedAt = now
        s.nextHelloAt = now
        s.helloBackoff = configuration.helloInterval
    }

    private func oweStale(_ s: Session, epoch: UInt32, now: NIODeadline) {
        if let last = s.lastStaleSentAt, now - last < .milliseconds(100) { return }
        s.lastStaleSentAt = now
        s.staleOwed = true
        s.staleEpoch = epoch
    }

    private func onAck(_ s: Session, _ ack: AckFrame, now: NIODeadline) {
        guard !ack.ranges.isEmpty else { return }
        let ascending = ack.ranges.reversed()
        func acked(_ n: UInt64) -> Bool { ascending.contains { $0.contains(n) } }
        var largestNewly: SentPacket?
        var i = s.sentOrderHead
        while i < s.sentOrder.count {
            let pn = s.sentOrder[i]
            i += 1
            if pn > ack.largest { break }
            guard let packet = s.sent[pn], acked(pn) else { continue }
            s.sent[pn] = nil
            s.bytesInFlight -= packet.size
            for item in packet.items {
                switch item {
                case .fragment(let entry, let index) where !entry.acked[index]:
                    entry.acked[index] = true
                    entry.ackedCount += 1
                case .reject(let lane, let seq, _):
                    _ = s.lanes[lane]?.settle(seq)  // the sender has the reject: confirms may now pass it
                default:
                    break
                }
            }
            if largestNewly == nil || packet.number > largestNewly!.number { largestNewly = packet }
        }
        guard let newest = largestNewly else { return }
        s.largestAcked = max(s.largestAcked, newest.number)
        if newest.number == ack.largest && newest.ackEliciting {
            s.rtt.addSample(nanos: (now - newest.sentAt).nanoseconds, ackDelayNanos: Int64(min(ack.delayMicros, 1_000_000)) * 1000)
        }
        s.rtt.resetBackoff()
        s.lastTimeoutAt = nil
        // Loss detection (RFC 9002 §6.1): 3 packets past, or older than 9/8 of the RTT.
        let rttNanos = max(s.rtt.smoothedNanos ?? configuration.retryInterval.nanosecondsValue, s.rtt.latestNanos ?? 0)
        let lossDelay = TimeAmount.nanoseconds(max(rttNanos * 9 / 8, 1_000_000))
        var lost: [SentPacket] = []
        i = s.sentOrderHead
        while i < s.sentOrder.count {
            let pn = s.sentOrder[i]
            i += 1
            if pn >= s.largestAcked { break }
            guard let packet = s.sent[pn] else { continue }
            if s.largestAcked - pn >= 3 || packet.sentAt <= now - lossDelay { lost.append(packet) }
        }
        for packet in lost {
            counters.fastRetransmits += 1
            declareLost(s, packet)
        }
        s.compactSentOrder()
    }

    private func declareLost(_ s: Session, _ packet: SentPacket) {
        guard s.sent.removeValue(forKey: packet.number) != nil else { return }
        s.bytesInFlight -= packet.size
        for item in packet.items {
            switch item {
            case .fragment(let entry, let index):
                if entry.reliable && !entry.finished && !entry.acked[index] && !entry.queued[index] {
                    entry.queued[index] = true
                    s.retransmitQueue.append((entry, index))
                    counters.retransmits += 1
                }
            case .confirm(let lane):
                s.lanes[lane]?.confirmOwed = true
                s.confirmsDueAt = nil
            case .reject(let lane, let seq, let reason): s.rejectsOwed.append((lane, seq, reason))
            case .abandon(let lane, let from, let to): s.abandonsOwed.append((lane, from, to))
            case .control: break
            }
        }
    }

    private func onConfirm(_ s: Session, lane: UInt16, upTo: UInt64) {
        let done = s.outstanding[lane].map { entries in
            var done = 0
            for entry in entries {
                guard entry.seq <= upTo else { break }
                finish(s, entry, .confirmed)
                done += 1
            }
            return done
        } ?? 0
        guard done > 0 else { return }
        // In place, once the entries read above are let go: a copy taken out and stored back would copy (and retain)
        // every outstanding entry of the lane.
        s.outstanding[lane]!.removeFirst(done)
        if s.outstanding[lane]!.isEmpty { s.outstanding[lane] = nil }
    }

    private func onReject(_ s: Session, lane: UInt16, seq: UInt64, reason: String) {
        guard let entry = s.outstanding[lane]?.first(where: { $0.seq == seq }) else { return }
        finish(s, entry, .failed(TransportError(.rejected, reason)))
        s.outstanding[lane]?.removeAll { $0 === entry }
    }

    private func onAbandon(_ s: Session, lane laneID: UInt16, from: UInt64, to: UInt64) {
        guard from <= to, to - from < 1 << 20 else { return }
        let lane = s.lane(laneID)
        for seq in from...to where seq >= lane.nextExpected {
            if let r = s.reassembly.removeValue(forKey: ReassemblyKey(reliable: true, lane: laneID, seq: seq)) {
                s.reassemblyBytes -= r.charged
                reassemblyBytes -= r.charged
            }
            lane.buffered[seq] = nil
            lane.abandonedAhead.insert(seq)
            _ = lane.settle(seq)
        }
        drainLane(s, laneID)
    }

    /// Takes a data frame. Returns false if it cannot be held now (limits): the packet is then not acknowledged
    /// and the sender will retransmit it.
    private func onData(_ s: Session, _ frame: DataFrame, now: NIODeadline) -> Bool {
        let key = ReassemblyKey(reliable: frame.reliable, lane: frame.lane, seq: frame.seq)
        if frame.reliable {
            let lane = s.lanes[frame.lane]
            let nextExpected = lane?.nextExpected ?? 1
            if frame.seq < nextExpected || lane?.buffered[frame.seq] != nil || lane?.abandonedAhead.contains(frame.seq) == true {
                counters.duplicates += 1
                return true
            }
            if frame.seq - nextExpected > UInt64(configuration.windowMessages) * 2 { return false }
        }
        var complete: ByteBuffer?
        if let fragment = frame.fragment {
            // An authenticated peer can still be buggy or compromised: a fragment is checked before anything is
            // allocated for it (a count of 2^28 once asked for a 12 GB array of slots).
            guard Int(fragment.totalLength) <= configuration.maxMessageSize,
                  Int(fragment.count) <= Reassembly.maxFragments(totalLength: Int(fragment.totalLength),
                                                                 maxMessageSize: configuration.maxMessageSize) else {
                counters.malformed += 1
                return true
            }
            let existing = s.reassembly[key]
            if let existing, existing.parts.count != Int(fragment.count) || existing.totalLength != Int(fragment.totalLength) {
                return true
            }
            let size = frame.payload.readableBytes
            let slots = existing == nil ? Int(fragment.count) * MemoryLayout<ByteBuffer?>.stride : 0
            guard s.reassemblyBytes + size + slots <= configuration.maxReassemblyBytesPerPeer,
                  reassemblyBytes + size + slots <= configuration.maxReassemblyBytes else { return false }
            var r = existing ?? Reassembly(parts: Array(repeating: nil, count: Int(fragment.count)),
                                           totalLength: Int(fragment.totalLength), startedAt: now)
            if r.parts[Int(fragment.index)] != nil {
                counters.duplicates += 1
                return true
            }
            r.parts[Int(fragment.index)] = frame.payload
            r.received += 1
            r.bytes += size
            s.reassemblyBytes += size + slots
            reassemblyBytes += size + slots
            if r.received == r.parts.count {
                s.reassembly[key] = nil
                s.reassemblyBytes -= r.charged
                reassemblyBytes -= r.charged
                guard r.bytes == r.totalLength else { return true }  // inconsistent fragments: drop the message
                var whole = ByteBufferAllocator().buffer(capacity: r.totalLength)
                for part in r.parts {
                    var part = part!
                    whole.writeBuffer(&part)
                }
                complete = whole
            } else {
                s.reassembly[key] = r
            }
        } else {
            complete = frame.payload
        }
        guard let message = complete else { return true }
        guard let node = s.peerNode else { return true }
        if !frame.reliable {
            actions.append(.deliver(ReceivedMessage(
                address: s.address, node: node, epoch: s.peerEpoch, commandID: frame.lane, reliability: .unreliable,
                payload: message, token: DeliveryToken(address: s.address, node: node, epoch: s.peerEpoch, lane: frame.lane,
                                                        seq: frame.seq, needsConfirmation: false))))
            return true
        }
        s.lane(frame.lane).buffered[frame.seq] = message
        drainLane(s, frame.lane)
        return true
    }

    /// Delivers whatever is now in order on a lane.
    private func drainLane(_ s: Session, _ laneID: UInt16) {
        guard let lane = s.lanes[laneID], let node = s.peerNode else { return }
        let address = s.address
        let epoch = s.peerEpoch
        lane.takeInOrder { seq, message in
            actions.append(.deliver(ReceivedMessage(
                address: address, node: node, epoch: epoch, commandID: laneID, reliability: .reliable, payload: message,
                token: DeliveryToken(address: address, node: node, epoch: epoch, lane: laneID, seq: seq, needsConfirmation: true))))
        }
    }

    // MARK: - Confirmation by the application

    /// The application made a delivered reliable message durable: it may be reported to the sender, at the next
    /// flush.
    func confirm(_ token: DeliveryToken) { settle(token, mayWaitFrom: nil) }

    /// Like ``confirm(_:)``, but the confirmation may wait up to the session's `maxAckDelay` (from `now`) for a
    /// datagram going to the sender anyway — a request's confirmation for its response, which the sender waits for
    /// instead — rather than leave alone at the next flush. A confirmation owed at once on the same session takes
    /// the waiting ones with it.
    func confirmWhenConvenient(_ token: DeliveryToken, now: NIODeadline) { settle(token, mayWaitFrom: now) }

    private func settle(_ token: DeliveryToken, mayWaitFrom now: NIODeadline?) {
        guard token.needsConfirmation, let s = sessions[token.address], s.peerNode == token.node, s.peerEpoch == token.epoch else { return }
        let owedBefore = s.confirmsOwed
        guard s.lanes[token.lane]?.settle(token.seq) == true else { return }
        if let now, s.maxAckDelay != .zero {
            if !owedBefore { s.confirmsDueAt = now + s.maxAckDelay }
        } else {
            s.confirmsDueAt = nil
        }
    }

    /// The application refuses a delivered reliable message: the sender's send fails with `rejected`.
    ///
    /// The sequence is settled in the lane (so cumulative confirms may pass it) only once the packet carrying
    /// the reject is acknowledged: a confirm covering it could otherwise reach the sender first (the reject
    /// lost and resent) and report a refused message as confirmed.
    func reject(_ token: DeliveryToken, reason: String) {
        guard token.needsConfirmation, let s = sessions[token.address], s.peerNode == token.node, s.peerEpoch == token.epoch else { return }
        s.rejectsOwed.append((token.lane, token.seq, reason))
    }

    // MARK: - Time

    /// Runs timers: handshake retries, retransmission timeouts, give-ups, peer liveness, keepalives.
    func tick(now: NIODeadline) {
        var forgotten: [Session] = []
        for s in sessions.values {
            if let quiet = s.quietSince, now - quiet >= configuration.forgetPeersAfter, s.isForgettable {
                forgotten.append(s)
                continue
            }
            if s.phase == .connecting {
                guard let started = s.connectStartedAt else { continue }
                if now - started >= configuration.retryTimeout {
                    let error = TransportError(.unreachable, """
                        \(s.address) did not answer the handshake within \(configuration.retryTimeout): nothing listens there, \
                        a firewall drops the datagrams, or the node there has another cluster key (it then logs \
                        authentication failures)
                        """)
                    let failed = failBacklog(s, error)
                    s.connectStartedAt = nil
                    s.nextHelloAt = nil
                    s.quietSince = s.quietSince ?? now
                    s.compactSentOrder()
                    if failed { actions.append(.event(.peerDown(address: s.address, node: nil, reason: error))) }
                }
                continue
            }
            // Retransmission timeout: like QUIC's probe timeout, retransmit only the oldest unacknowledged packet
            // and back off. Its acknowledgement (an ack range) settles everything behind it; declaring the whole
            // flight lost would flood a receiver that is merely slow.
            if let due = s.retransmitDeadline, now >= due, let oldest = s.oldestUnacked {
                declareLost(s, oldest)
                s.rtt.timedOut()
                s.lastTimeoutAt = now
                counters.timeouts += 1
            }
            // Give up on messages not confirmed in time. A message the receiver already holds (every fragment
            // acknowledged) is only waiting for an earlier one or for the receiver's journal: it gets twice as
            // long, and is not abandoned with the others.
            for lane in s.outstanding.keys {
                guard let entries = s.outstanding[lane], let first = entries.first?.firstSentAt,
                      now - first >= configuration.retryTimeout else { continue }
                var kept: [OutboundEntry] = []
                var abandoned: [UInt64] = []
                for entry in entries {
                    guard let sentAt = entry.firstSentAt else {
                        kept.append(entry)
                        continue
                    }
                    let age = now - sentAt
                    let received = entry.ackedCount == entry.fragmentCount
                    if age >= configuration.retryTimeout * 2 || (!received && age >= configuration.retryTimeout) {
                        finish(s, entry, .failed(TransportError(.timeout,
                            "not confirmed by \(s.address) within \(received ? configuration.retryTimeout * 2 : configuration.retryTimeout)")))
                        abandoned.append(entry.seq)
                    } else {
                        kept.append(entry)
                    }
                }
                guard !abandoned.isEmpty else { continue }
                var from = abandoned[0]
                var to = from
                for seq in abandoned.dropFirst() {
                    if seq == to + 1 {
                        to = seq
                    } else {
                        s.abandonsOwed.append((lane, from, to))
                        from = seq
                        to = seq
                    }
                }
                s.abandonsOwed.append((lane, from, to))
                s.outstanding[lane] = kept.isEmpty ? nil : kept
            }
            // Liveness.
            let lastReceived = s.lastReceivedAt ?? now
            if !s.down, let lastSent = s.lastSentAt, lastSent > lastReceived, now - lastReceived >= configuration.peerTimeout {
                markDown(s, reason: TransportError(.peerDown, "\(s.address) sent nothing for \(configuration.peerTimeout)"), now: now)
            }
            let lastActivity = max(s.lastSentAt ?? now, lastReceived)
            if s.isProbed, now - lastActivity >= configuration.keepaliveInterval
                || (now - lastReceived >= configuration.keepaliveInterval && s.sent.isEmpty) {
                s.pingOwed = true
            }
            // Partly reassembled messages that can no longer complete.
            if !s.reassembly.isEmpty {
                for (key, r) in s.reassembly where now - r.startedAt >= configuration.retryTimeout * 2 {
                    s.reassembly[key] = nil
                    s.reassemblyBytes -= r.charged
                    reassemblyBytes -= r.charged
                }
            }
        }
        for s in forgotten { forget(s) }
    }

    /// The peer shut down gracefully. It is reported as having left, but its unconfirmed messages are kept: a
    /// node that restarts (a deploy) comes back within seconds, and its new incarnation takes them (the session
    /// resets and resends them, in order). If it does not come back, they fail at the give-up time like any
    /// unconfirmed message. Failing them at once would turn every graceful restart into failed sends.
    private func peerLeft(_ s: Session, now: NIODeadline) {
        guard !s.down, let node = s.peerNode else { return }
        s.down = true
        s.quietSince = now
        actions.append(.event(.peerLeft(address: s.address, node: node)))
    }

    private func markDown(_ s: Session, reason: TransportError, now: NIODeadline) {
        guard !s.down else { return }
        s.down = true
        s.quietSince = s.quietSince ?? now
        failUnconfirmed(s, reason)
        actions.append(.event(.peerDown(address: s.address, node: s.peerNode, reason: reason)))
    }

    /// Fails every unconfirmed message (in the window and waiting behind it) and tells the peer to skip them.
    private func failUnconfirmed(_ s: Session, _ reason: TransportError) {
        for lane in s.outstanding.keys.sorted() {
            let entries = s.outstanding[lane]!.filter { !$0.finished }
            for entry in entries { finish(s, entry, .failed(reason)) }
            if let first = entries.first, let last = entries.last { s.abandonsOwed.append((lane, first.seq, last.seq)) }
        }
        s.outstanding = [:]
        s.outstandingCount = 0
        failBacklog(s, reason)
        s.clearInFlight()
        s.compactSentOrder()
    }

    /// What one walk of the sessions finds, at each flush: when ``tick(now:)`` next has work (`nil` when nothing is
    /// pending), and whether a datagram that asks for an acknowledgement (data, a confirmation) is unacknowledged by
    /// its peer — the transport's idle spin lasts longer while one is (``IdleSpin/awaitingFactor``).
    func timers() -> (deadline: NIODeadline?, awaitsAcknowledgement: Bool) {
        var earliest: NIODeadline?
        var awaitsAcknowledgement = false
        func consider(_ d: NIODeadline?) {
            guard let d else { return }
            if earliest == nil || d < earliest! { earliest = d }
        }
        for s in sessions.values {
            if s.bytesInFlight > 0 { awaitsAcknowledgement = true }
            if let quiet = s.quietSince, s.isForgettable { consider(quiet + configuration.forgetPeersAfter) }
            if s.phase == .connecting {
                if let started = s.connectStartedAt {
                    consider(s.nextHelloAt)
                    consider(started + configuration.retryTimeout)
                }
                continue
            }
            consider(s.retransmitDeadline)
            if s.ackOwed { consider(s.ackDueAt) }
            if s.confirmsDueAt != nil, s.confirmsOwed { consider(s.confirmsDueAt) }
            for entries in s.outstanding.values {
                if let first = entries.first?.firstSentAt { consider(first + configuration.retryTimeout) }
            }
            let lastReceived = s.lastReceivedAt ?? .now()
            if !s.down, let lastSent = s.lastSentAt, lastSent > lastReceived { consider(lastReceived + configuration.peerTimeout) }
            if s.isProbed {
                consider(max(s.lastSentAt ?? lastReceived, lastReceived) + configuration.keepaliveInterval)
            }
            for r in s.reassembly.values { consider(r.startedAt + configuration.retryTimeout * 2) }
        }
        return (earliest, awaitsAcknowledgement)
    }

    /// Announces a graceful shutdown to every established peer.
    func shutdown() {
        for s in sessions.values where s.phase == .established { s.goodbyeOwed = true }
    }

    // MARK: - Packing

    /// Builds the datagrams owed to every peer: acknowledgements, handshake and control frames, and data up to
    /// the window, coalescing frames into datagrams of at most `maxDatagramSize`.
    func flush(now: NIODeadline) {
        for s in sessions.values { flush(s, now: now) }
    }

    private func flush(_ s: Session, now: NIODeadline) {
        if s.phase == .connecting, let due = s.nextHelloAt, due <= now {
            emit(s, frames: [.hello(version: 3, session: s.localSession)], items: [.control], now: now)
            s.nextHelloAt = now + s.helloBackoff
            s.helloBackoff = min(s.helloBackoff * 2, .seconds(1))
        }
        if s.staleOwed {
            s.staleOwed = false
            emit(s, frames: [.stale], items: [.control], now: now, destinationEpoch: s.staleEpoch)
        }
        let holdConfirms = s.confirmsMayWait(now: now)
        let budget = configuration.maxDatagramSize - PacketHeader.size - PacketHeader.tagSize
        var frames = framesScratch
        framesScratch = []
        defer {
            frames.removeAll(keepingCapacity: true)
            framesScratch = frames
        }
        while true {
            frames.removeAll(keepingCapacity: true)
            var items: [SentItem] = []
            var size = 0
            func add(_ frame: Frame, _ item: SentItem) -> Bool {
                let n = frame.encodedSize
                guard size + n <= budget else { return false }
                frames.append(frame)
                items.append(item)
                size += n
                return true
            }
            if s.welcomeOwed {
                s.welcomeOwed = false
                _ = add(.welcome(session: s.localSession, answering: s.peerReadsAnswering ? s.peerSession : nil), .control)
            }
            if s.phase == .established {
                if s.ackOwed {
                    let delay = s.largestReceivedAt.map { UInt64(max(0, (now - $0).nanoseconds / 1000)) } ?? 0
                    _ = add(.ack(AckFrame(ranges: s.received.descending(limit: 32), delayMicros: delay)), .control)
                }
                if s.goodbyeOwed {
                    s.goodbyeOwed = false
                    _ = add(.goodbye, .control)
                }
                if !holdConfirms {
                    for (laneID, lane) in s.lanes where lane.confirmOwed {
                        guard add(.confirm(lane: laneID, upTo: lane.confirmedUpTo), .confirm(laneID)) else { break }
                        lane.confirmOwed = false
                    }
                    // Whatever did not fit goes in the next datagram of this flush.
                    s.confirmsDueAt = nil
                }
                while let (lane, seq, reason) = s.rejectsOwed.first, add(.reject(lane: lane, seq: seq, reason: reason), .reject(lane, seq, reason)) {
                    s.rejectsOwed.removeFirst()
                }
                while let (lane, from, to) = s.abandonsOwed.first, add(.abandon(lane: lane, from: from, to: to), .abandon(lane, from, to)) {
                    s.abandonsOwed.removeFirst()
                }
                // Data, retransmissions first, within the byte window.
                while s.bytesInFlight + size < configuration.windowBytes {
                    let next: (OutboundEntry, Int)
                    let fromRetransmit: Bool
                    if let first = s.retransmitQueue.first {
                        next = first
                        fromRetransmit = true
                    } else if s.freshHead < s.freshQueue.count {
                        next = s.freshQueue[s.freshHead]
                        fromRetransmit = false
                    } else {
                        break
                    }
                    let (entry, index) = next
                    if entry.finished || entry.acked[index] {
                        entry.queued[index] = false
                        if fromRetransmit { s.retransmitQueue.removeFirst() } else { s.freshHead += 1 }
                        continue
                    }
                    guard add(.data(entry.fragment(index, size: fragmentSize)), .fragment(entry, index)) else { break }
                    entry.queued[index] = false
                    if entry.firstSentAt == nil { entry.firstSentAt = now }
                    if fromRetransmit { s.retransmitQueue.removeFirst() } else { s.freshHead += 1 }
                    if !entry.reliable && index == entry.fragmentCount - 1 {
                        entry.finished = true
                        actions.append(.outcome(token: entry.token, .sent))
                    }
                }
                if s.pingOwed && frames.allSatisfy({ !$0.isAckEliciting }) {
                    _ = add(.ping, .control)
                }
                s.pingOwed = false
            }
            guard !frames.isEmpty else { break }
            if s.ackOwed {
                // An acknowledgement alone waits until it is due; with anything else it goes now.
                if frames.count == 1, let due = s.ackDueAt, due > now { break }
                s.ackSent()
            }
            emit(s, frames: frames, items: items, now: now)
        }
        s.compactSentOrder()
    }

    private func emit(_ s: Session, frames: [Frame], items: [SentItem], now: NIODeadline, destinationEpoch: UInt32? = nil) {
        let number = s.nextPacketNumber
        s.nextPacketNumber += 1
        highestPacketNumber = max(highestPacketNumber, number)
        let header = PacketHeader(encrypted: false, keyID: 0, sender: configuration.nodeID, senderEpoch: configuration.epoch,
                                  destinationEpoch: destinationEpoch ?? (s.phase == .established ? s.peerEpoch : 0),
                                  packetNumber: number)
        // The frames are written behind room for the header and ahead of room for the tag, so that the sealer can
        // make the datagram in this buffer (``DatagramSealer/seal(header:body:allocator:)``) instead of a copy.
        let framesSize = frames.reduce(0) { $0 + $1.encodedSize }
        var body = ByteBufferAllocator().buffer(capacity: PacketHeader.size + framesSize + PacketHeader.tagSize)
        body.moveWriterIndex(forwardBy: PacketHeader.size)
        body.moveReaderIndex(forwardBy: PacketHeader.size)
        for frame in frames { frame.write(to: &body) }
        let ackEliciting = frames.contains { $0.isAckEliciting }
        let size = PacketHeader.size + body.readableBytes + PacketHeader.tagSize
        if ackEliciting && s.phase == .established {
            s.sent[number] = SentPacket(number: number, sentAt: now, size: size, ackEliciting: true, items: items)
            s.sentOrder.append(number)
            s.bytesInFlight += size
        }
        s.lastSentAt = now
        counters.datagramsOut += 1
        actions.append(.transmit(address: s.address, header: header, body: body))
    }
}
