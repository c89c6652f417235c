import NIOCore

/// Settings of a ``MeshTransport``. Every value has a documented default; ``validate()`` rejects nonsense
/// with a message naming the setting.
public struct TransportConfiguration: Sendable {
    /// Where to bind, e.g. `127.0.0.1:8000`. Port 0 picks a free port.
    public var bindAddress: SocketAddress
    /// This node's id (the journal's node id) and boot epoch (incremented at every start).
    public var nodeID: NodeID
    /// This start's boot epoch; must grow at every start of the same node id (the journal guarantees it).
    public var epoch: UInt32
    /// The keys datagrams are authenticated with.
    public var keyring: Keyring
    /// Encrypt message bodies (ChaCha20-Poly1305) as well as authenticating them. Default `false`.
    public var encrypt: Bool

    /// Largest datagram sent, header and tag included. Default 1400 bytes (Diarkis `MaxPacketSize`).
    public var maxDatagramSize: Int
    /// Largest message accepted by `send` and by reassembly. Default 10,000,000 bytes (Diarkis `MaxMessageSize`).
    public var maxMessageSize: Int
    /// Retransmission timeout before any RTT sample (Diarkis `retryInterval`). Default 1000 ms. After the first
    /// acknowledgement the timeout follows the measured RTT (RFC 6298), between ``minRetransmitTimeout`` and
    /// ``maxRetransmitTimeout``, doubling on each consecutive timeout.
    public var retryInterval: Duration
    /// Lower bound of the adaptive retransmission timeout. Default 10 ms (a LAN floor).
    public var minRetransmitTimeout: Duration
    /// Cap of the retransmission timeout and its backoff. Default 1000 ms.
    public var maxRetransmitTimeout: Duration
    /// A reliable message not confirmed by the receiver within this time fails with `timeout` (Diarkis
    /// `retryTimeout`). Default 3000 ms.
    public var retryTimeout: Duration
    /// Longest a receiver holds an acknowledgement hoping to carry it on a datagram going the same way (a reply,
    /// a confirmation) instead of sending it alone. Default 2 ms. Two unacknowledged packets, a duplicate or a
    /// packet out of order are acknowledged at once (QUIC's rules, RFC 9000 §13.2.1); the sender adds this delay
    /// to its retransmission timeout, so peers should share the setting. `.zero` acknowledges every batch at once.
    public var maxAckDelay: Duration
    /// Interval of handshake retries while a peer has not answered. Default 100 ms (doubling up to 1 s).
    public var helloInterval: Duration
    /// An idle session is probed this often. Default 1000 ms.
    public var keepaliveInterval: Duration
    /// A peer that sends nothing authentic for this long is reported down and its unconfirmed messages fail.
    /// Default 3000 ms.
    public var peerTimeout: Duration
    /// Most peer sessions held at once. A new peer beyond it takes the place of a session that is not live (down,
    /// or never answered) — never of a live one: a hello from a stranger is then dropped, and a send to a new
    /// address fails with `tooManyPeers`. Default 4096.
    public var maxPeers: Int
    /// A peer that is not live — silent for ``peerTimeout``, gone with a goodbye, never answering the handshake —
    /// and has nothing unconfirmed is forgotten this long after it went quiet: its session is closed and its
    /// state freed, and nothing more is sent to it (a live peer is probed every ``keepaliveInterval``; a peer that
    /// is down is not). Its next packet, or the next send to it, opens a new session. Default 10 s.
    public var forgetPeersAfter: Duration
    /// Most reliable messages per peer sent but not yet confirmed; `send` waits beyond it. Default 4096.
    public var windowMessages: Int
    /// Most unacknowledged datagram bytes per peer (keeps bursts within the receiver's socket buffer).
    /// Default 2 MiB.
    public var windowBytes: Int
    /// Most bytes of partly reassembled messages per peer. Default 32 MiB.
    public var maxReassemblyBytesPerPeer: Int
    /// Most bytes of partly reassembled messages in total. Default 128 MiB.
    public var maxReassemblyBytes: Int
    /// Socket receive and send buffer size requested. Default 4 MiB (the OS may cap it at `rmem_max`).
    public var socketBufferBytes: Int
    /// Datagrams read per system call (recvmmsg). Default 32; the receive allocator is sized to match. A readable
    /// socket gets one call while reads come back short (it was drained) and up to four while they come back full.
    public var readBatch: Int
    /// Delivery batches ``MeshTransport/inbound`` holds for a slow consumer. Beyond it new batches are dropped
    /// and counted (`dropped_over_limit`); their reliable messages are never confirmed, so their senders see
    /// them fail rather than vanish. Default 4096.
    public var maxPendingDeliveryBatches: Int
    /// How long the event loop keeps polling the socket, in microseconds, after each flush (of what a read brought,
    /// of what was sent), before it goes back to sleep: a reply, or a caller's next message, that comes meanwhile is
    /// taken at once, without the wake-up of a sleeping thread (tens of microseconds on a virtual machine). The poll
    /// runs behind the work the loop already has, steps aside for work handed to it, and ends at the first readable
    /// datagram, at the next timer, or when its time is up (counted from the last flush, and three times as long
    /// while a datagram awaits its acknowledgement); it yields the core between checks. It holds the loop
    /// while it lasts, so only a loop the transport's owner runs alone may poll (``MeshNode`` does, on its own
    /// thread); never one an application shares. Default 0: sleep at once.
    public var idleSpinMicroseconds: Int
    /// Hand the datagrams of one flush that go to the same peer, one size each (at most 1,452 bytes, an Ethernet
    /// MTU's worth), to the kernel in one buffer that it cuts into those datagrams (UDP segmentation offload,
    /// `UDP_SEGMENT`; Linux 4.18 and later): the receiver sees the same datagrams, and the sender's network stack
    /// runs once per such run instead of once per datagram. If a segmented write fails (a network device without
    /// checksum offload on a kernel that needs it, a path MTU below the datagrams), the transport logs it once and
    /// sends datagram by datagram from then on; what that write carried is retransmitted. Default: on where the
    /// kernel supports it (`System.supportsUDPSegmentationOffload`), else off.
    public var segmentationOffload: Bool
    /// The default of ``segmentationOffload``: whether this kernel supports UDP segmentation offload.
    public static let defaultSegmentationOffload = System.supportsUDPSegmentationOffload

    /// A configuration with the defaults above.
    public init(bindAddress: SocketAddress, nodeID: NodeID = .random(), epoch: UInt32 = 1, keyring: Keyring) {
        self.bindAddress = bindAddress
        self.nodeID = nodeID
        self.epoch = epoch
        self.keyring = keyring
        self.encrypt = false
        self.maxDatagramSize = 1400
        self.maxMessageSize = 10_000_000
        self.retryInterval = .milliseconds(1000)
        self.minRetransmitTimeout = .milliseconds(10)
        self.maxRetransmitTimeout = .milliseconds(1000)
        self.retryTimeout = .milliseconds(3000)
        self.maxAckDelay = .milliseconds(2)
        self.helloInterval = .milliseconds(100)
        self.keepaliveInterval = .milliseconds(1000)
        self.peerTimeout = .milliseconds(3000)
        self.maxPeers = 4096
        self.forgetPeersAfter = .seconds(10)
        self.windowMessages = 4096
        self.windowBytes = 2 << 20
        self.maxReassemblyBytesPerPeer = 32 << 20
        self.maxReassemblyBytes = 128 << 20
        self.socketBufferBytes = 4 << 20
        self.readBatch = 32
        self.maxPendingDeliveryBatches = 4096
        self.idleSpinMicroseconds = 0
        self.segmentationOffload = Self.defaultSegmentationOffload
    }

    /// Checks every setting.
    /// - Throws: ``TransportError`` with code `invalidConfiguration`, naming the setting.
    public func validate() throws(TransportError) {
        func fail(_ message: String) -> TransportError { TransportError(.invalidConfiguration, message) }
        guard (256...65_507).contains(maxDatagramSize) else { throw fail("maxDatagramSize must be 256...65507 (got \(maxDatagramSize))") }
        guard (1...1_000_000_000).contains(maxMessageSize) else { throw fail("maxMessageSize must be 1...1000000000 (got \(maxMessageSize))") }
        guard epoch > 0 else { throw fail("epoch must be at least 1") }
        guard minRetransmitTimeout > .zero, minRetransmitTimeout <= maxRetransmitTimeout else {
            throw fail("need 0 < minRetransmitTimeout ≤ maxRetransmitTimeout")
        }
        guard retryInterval > .zero, retryTimeout > .zero, helloInterval > .zero, keepaliveInterval > .zero, peerTimeout > .zero else {
            throw fail("retryInterval, retryTimeout, helloInterval, keepaliveInterval and peerTimeout must be positive")
        }
        guard maxAckDelay >= .zero, maxAckDelay < minRetransmitTimeout else {
            throw fail("maxAckDelay must be at least 0 and below minRetransmitTimeout (got \(maxAckDelay))")
        }
        guard maxPeers >= 1 else { throw fail("maxPeers must be at least 1 (got \(maxPeers))") }
        guard forgetPeersAfter > .zero else { throw fail("forgetPeersAfter must be positive") }
        guard windowMessages >= 1, windowBytes >= maxDatagramSize else { throw fail("windowMessages ≥ 1 and windowBytes ≥ maxDatagramSize") }
        guard maxReassemblyBytesPerPeer >= 0, maxReassemblyBytes >= maxReassemblyBytesPerPeer else {
            throw fail("need 0 ≤ maxReassemblyBytesPerPeer ≤ maxReassemblyBytes")
        }
        guard (1...1024).contains(readBatch) else { throw fail("readBatch must be 1...1024") }
        guard maxPendingDeliveryBatches >= 1 else { throw fail("maxPendingDeliveryBatches must be at least 1") }
        guard (0...10_000).contains(idleSpinMicroseconds) else {
            throw fail("idleSpinMicroseconds must be 0...10000 (got \(idleSpinMicroseconds))")
        }
    }

    /// Payload bytes per fragment: the datagram minus header, tag, and room for a data frame header and an ack.
    var fragmentPayloadSize: Int { maxDatagramSize - PacketHeader.size - PacketHeader.tagSize - 96 }
}
