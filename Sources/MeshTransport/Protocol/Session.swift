import NIOCore

/// A message handed to the transport, from admission until its outcome.
final class OutboundEntry {
    let token: UInt64
    let lane: UInt16
    let reliable: Bool
    let payload: ByteBuffer
    let fragmentCount: Int
    let enqueuedAt: NIODeadline
    /// When its first fragment went on the wire: the give-up clock (`retryTimeout`) starts here, so time spent
    /// queued behind the window (backpressure) does not count.
    var firstSentAt: NIODeadline?
    var seq: UInt64 = 0
    var acked: FragmentFlags
    var ackedCount = 0
    /// Fragments waiting in a send queue (so a fragment is never queued twice).
    var queued: FragmentFlags
    var finished = false

    init(token: UInt64, lane: UInt16, reliable: Bool, payload: ByteBuffer, fragmentSize: Int, now: NIODeadline) {
        self.token = token
        self.lane = lane
        self.reliable = reliable
        self.payload = payload
        self.fragmentCount = max(1, (payload.readableBytes + fragmentSize - 1) / fragmentSize)
        self.enqueuedAt = now
        self.acked = FragmentFlags(count: fragmentCount)
        self.queued = FragmentFlags(count: fragmentCount)
    }

    func fragment(_ index: Int, size: Int) -> DataFrame {
        if fragmentCount == 1 {
            return DataFrame(reliable: reliable, lane: lane, seq: seq, fragment: nil, payload: payload)
        }
        let start = index * size
        let length = min(size, payload.readableBytes - start)
        let slice = payload.getSlice(at: payload.readerIndex + start, length: length)!
        return DataFrame(reliable: reliable, lane: lane, seq: seq,
                         fragment: .init(index: UInt32(index), count: UInt32(fragmentCount), totalLength: UInt32(payload.readableBytes)),
                         payload: slice)
    }
}

/// What a sent packet carried, so its loss can be repaired and its acknowledgement credited.
enum SentItem {
    case fragment(OutboundEntry, Int)
    case confirm(UInt16)
    case reject(UInt16, UInt64, String)
    case abandon(UInt16, UInt64, UInt64)
    case control
}

struct SentPacket {
    let number: UInt64
    let sentAt: NIODeadline
    let size: Int
    let ackEliciting: Bool
    let items: [SentItem]
}

/// Receive-side state of one ordering lane (one command ID) of a session.
///
/// A class, owned by its session's ``Session/lanes`` and run, as its session is, on the transport's event loop: the
/// state machine changes it in place through the reference it looks up. As a struct value in that dictionary, every change went through the dictionary's modify accessor
/// (a heap-allocated accessor frame for a value this size) or through a copy written back (which copied
/// ``buffered`` and the sets in it first, since the dictionary still held them) — for every message received.
final class InboundLane {
    /// The next reliable sequence to deliver.
    var nextExpected: UInt64 = 1
    /// Complete messages that arrived ahead of order.
    var buffered: [UInt64: ByteBuffer] = [:]
    /// Sequences the sender abandoned ahead of `nextExpected`.
    var abandonedAhead: Set<UInt64> = []
    /// Every sequence up to here is confirmed (durable), rejected or abandoned.
    var confirmedUpTo: UInt64 = 0
    /// Settled (confirmed/rejected/abandoned) sequences above `confirmedUpTo`.
    var settledAhead: Set<UInt64> = []
    /// A CONFIRM frame with `confirmedUpTo` is owed to the sender.
    var confirmOwed = false

    /// Marks `seq` settled; returns whether ``confirmedUpTo`` advanced (a confirmation is then owed).
    func settle(_ seq: UInt64) -> Bool {
        guard seq > confirmedUpTo else { return false }
        settledAhead.insert(seq)
        var advanced = false
        while settledAhead.remove(confirmedUpTo + 1) != nil {
            confirmedUpTo += 1
            advanced = true
        }
        if advanced { confirmOwed = true }
        return advanced
    }

    /// Takes every message now deliverable in order — skipping sequences the sender abandoned — and advances
    /// ``nextExpected`` past them, calling `deliver` with each one's sequence.
    func takeInOrder(_ deliver: (UInt64, ByteBuffer) -> Void) {
        while true {
            if abandonedAhead.remove(nextExpected) != nil {
                nextExpected += 1
                continue
            }
            guard let message = buffered.removeValue(forKey: nextExpected) else { return }
            deliver(nextExpected, message)
            nextExpected += 1
        }
    }
}

/// A message being reassembled from fragments.
struct Reassembly {
    var parts: [ByteBuffer?]
    var received = 0
    /// Payload bytes received so far.
    var bytes = 0
    let totalLength: Int
    let startedAt: NIODeadline

    /// Memory the slots for the parts take, charged to the reassembly caps with the payload: a fragment that
    /// announces a large count costs its slots before any payload arrives.
    var slotBytes: Int { parts.count * MemoryLayout<ByteBuffer?>.stride }
    /// What this reassembly counts against the per-peer and global caps.
    var charged: Int { bytes + slotBytes }

    /// Most fragments a message of `totalLength` bytes may announce: one per byte at most (no empty fragments),
    /// and no more than a sender with 64-byte fragments would need for the largest message allowed.
    static func maxFragments(totalLength: Int, maxMessageSize: Int) -> Int {
        max(1, min(totalLength, maxMessageSize / 64 + 1))
    }
}

struct ReassemblyKey: Hashable {
    let reliable: Bool
    let lane: UInt16
    let seq: UInt64
}

/// The protocol state shared with one peer address: one session = (our epoch and session number, peer node,
/// peer epoch and session number). Lanes restart when an epoch or a session number changes — a peer that
/// closed an idle session opens the next one with a higher number, and both sides start afresh — while packet
/// numbers never repeat within an epoch (a new session starts above every number used before), so a
/// receiver's replay window never mistakes it for a replay.
final class Session {
    enum Phase: Equatable {
        /// No answer yet; hellos are retried.
        case connecting
        /// The peer's identity is known.
        case established
    }

    let address: SocketAddress
    var phase: Phase = .connecting
    var peerNode: NodeID?
    var peerEpoch: UInt32 = 0
    /// Who answered before a STALE forced a new handshake, to report a restart rather than a new peer.
    var previousPeer: (node: NodeID, epoch: UInt32)?
    /// The peer stopped answering (reported once); cleared by any authentic packet.
    var down = false
    /// This side's session number, sent in hellos and welcomes (grows within the epoch).
    var localSession: UInt64 = 0
    /// The peer's session number from its hello or welcome (0: not known).
    var peerSession: UInt64 = 0
    /// The number of the peer's datagram (its hello or welcome) that opened this session. The peer's other datagrams
    /// numbered below it belong to an earlier session — before a reset, or with another node that had this address
    /// with the same epoch (short-lived clients on fresh journals behind one NAT or proxy) — and are dropped:
    /// their acknowledgements and confirmations describe packets and sequence numbers of that earlier session.
    /// Packet numbers toward one address only grow within a sender's epoch, so the rule drops nothing of this session.
    var peerFloor: UInt64 = 0
    /// The peer's hellos are version 3 or later: welcomes to it name the hello they answer.
    var peerReadsAnswering = false
    /// Since when the peer has not proven itself alive: from the session's creation until an authentic packet
    /// of the session arrives, and again from the moment it is down (silent, gone, or the handshake gave up).
    /// A session quiet for ``TransportConfiguration/forgetPeersAfter`` with nothing unconfirmed is closed.
    var quietSince: NIODeadline?

    // Handshake.
    var connectStartedAt: NIODeadline?
    var nextHelloAt: NIODeadline?
    var helloBackoff: Duration
    var welcomeOwed = false
    var staleOwed = false
    /// The epoch the stale packet claimed; the STALE reply is addressed to it.
    var staleEpoch: UInt32 = 0
    var lastStaleSentAt: NIODeadline?
    var goodbyeOwed = false
    var pingOwed = false

    // Sending.
    var nextPacketNumber: UInt64 = 1
    var nextSeq: [UInt16: UInt64] = [:]
    var nextUnreliableID: UInt64 = 1
    /// Admitted to the window, not finished: reliable by lane in sequence order, plus unreliable.
    var outstanding: [UInt16: [OutboundEntry]] = [:]
    var outstandingCount = 0
    /// Waiting for window space or for the handshake.
    var backlog: [OutboundEntry] = []
    var backlogHead = 0
    var retransmitQueue: [(OutboundEntry, Int)] = []
    var freshQueue: [(OutboundEntry, Int)] = []
    var freshHead = 0
    var sent: [UInt64: SentPacket] = [:]
    var sentOrder: [UInt64] = []
    var sentOrderHead = 0
    var bytesInFlight = 0
    var largestAcked: UInt64 = 0
    var rtt: RTTEstimator
    var rejectsOwed: [(UInt16, UInt64, String)] = []
    var abandonsOwed: [(UInt16, UInt64, UInt64)] = []
    var lastSentAt: NIODeadline?
    /// When the retransmission timer last fired: the next one is due an RTO (backed off) after this, not after
    /// the oldest packet's send time, or one timeout would cascade through the whole flight.
    var lastTimeoutAt: NIODeadline?

    // Receiving.
    var received = AckRanges(maxRanges: 32)
    var ackOwed = false
    /// Ack-eliciting packets received since the last acknowledgement was sent.
    var unackedEliciting = 0
    /// When the owed acknowledgement goes out on its own if nothing else is sent to carry it (see
    /// ``TransportConfiguration/maxAckDelay``); `now` for an acknowledgement owed at once.
    var ackDueAt: NIODeadline?
    /// When the owed confirmations go out on their own if nothing else is sent to carry them: set while every
    /// owed confirmation may wait (``TransportStateMachine/confirmWhenConvenient(_:now:)``), `nil` once one must go at
    /// the next flush.
    var confirmsDueAt: NIODeadline?
    var largestReceivedAt: NIODeadline?
    var lastReceivedAt: NIODeadline?
    var lanes: [UInt16: InboundLane] = [:]
    var reassembly: [ReassemblyKey: Reassembly] = [:]
    var reassemblyBytes = 0

    /// The peer may hold an acknowledgement this long: added to the retransmission timeout.
    let maxAckDelay: TimeAmount

    init(address: SocketAddress, rtt: RTTEstimator.Configuration, helloInterval: Duration, maxAckDelay: Duration = .zero) {
        self.address = address
        self.maxAckDelay = maxAckDelay.timeAmount
        self.rtt = RTTEstimator(configuration: rtt)
        self.helloBackoff = helloInterval
    }

    var backlogCount: Int { backlog.count - backlogHead }

    /// Whether the session may be closed and its state freed: the peer is not live (down, never answered, or
    /// gave up on) and nothing of this side's is waiting on it.
    var isForgettable: Bool {
        guard quietSince != nil, outstandingCount == 0, backlogCount == 0, reassembly.isEmpty else { return false }
        return phase == .connecting ? connectStartedAt == nil : down
    }

    /// Whether keepalive probes go to the peer: while it is live, and while it is down only as long as messages to
    /// it wait for their give-up time (after a goodbye, to learn of its next incarnation). Nothing else is sent to
    /// a peer that is down: its next packet, or the application's next send, brings it back.
    var isProbed: Bool { !down || outstandingCount > 0 }

    var hasQueuedData: Bool { !retransmitQueue.isEmpty || freshHead < freshQueue.count }

    var confirmsOwed: Bool { lanes.values.contains { $0.confirmOwed } }

    /// The lane of `id`, created (empty) on first use.
    func lane(_ id: UInt16) -> InboundLane {
        if let lane = lanes[id] { return lane }
        let lane = InboundLane()
        lanes[id] = lane
        return lane
    }

    /// Whether the owed confirmations may stay behind in this flush: all of them may wait (``confirmsDueAt`` still
    /// ahead) and nothing else ack-eliciting is owed for them to ride on. An acknowledgement due now then leaves
    /// alone: with them it would become a packet the peer must acknowledge in turn, and two such packets per
    /// exchange make both sides acknowledge at once, every time.
    func confirmsMayWait(now: NIODeadline) -> Bool {
        guard let due = confirmsDueAt, due > now, phase == .established else { return false }
        return !welcomeOwed && !goodbyeOwed && !pingOwed && rejectsOwed.isEmpty && abandonsOwed.isEmpty && !hasQueuedData
    }

    /// When the retransmission timer is due, if anything is unacknowledged.
    var retransmitDeadline: NIODeadline? {
        guard let oldest = oldestUnacked else { return nil }
        let base = max(oldest.sentAt, lastTimeoutAt ?? oldest.sentAt)
        return base + rtt.rtoAmount + maxAckDelay
    }

    /// Forgets the owed acknowledgement (sent, or the session reset).
    func ackSent() {
        ackOwed = false
        unackedEliciting = 0
        ackDueAt = nil
    }

    var oldestUnacked: SentPacket? {
        var i = sentOrderHead
        while i < sentOrder.count {
            if let packet = sent[sentOrder[i]], packet.ackEliciting { return packet }
            i += 1
        }
        return nil
    }

    /// Forgets everything in flight and queued for transmission (a reset or a peer declared down).
    func clearInFlight() {
        retransmitQueue = []
        freshQueue = []
        freshHead = 0
        sent = [:]
        sentOrder = []
        sentOrderHead = 0
        bytesInFlight = 0
    }

    func compactSentOrder() {
        while sentOrderHead < sentOrder.count, sent[sentOrder[sentOrderHead]] == nil { sentOrderHead += 1 }
        if sentOrderHead > 1024 && sentOrderHead * 2 > sentOrder.count {
            sentOrder.removeFirst(sentOrderHead)
            sentOrderHead = 0
        }
        if freshHead > 1024 && freshHead * 2 > freshQueue.count {
            freshQueue.removeFirst(freshHead)
            freshHead = 0
        }
        if backlogHead > 1024 && backlogHead * 2 > backlog.count {
            backlog.removeFirst(backlogHead)
            backlogHead = 0
        }
    }
}
