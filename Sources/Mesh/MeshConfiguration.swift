import MeshCore
import MeshJournal
import MeshTransport

/// How a ``MeshNode`` runs. Diarkis `mesh.json` keys map as: `address`/`port` → ``address``, `retryInterval` →
/// ``retryInterval``, `retryTimeout` (alias `reliableRetryTimeout`) → ``retryTimeout``.
public struct MeshConfiguration: Sendable {
    /// Where the node listens, `host:port` with a numeric host (`127.0.0.1:8000`, `[::1]:8000`). Port 0 picks one.
    public var address: String
    /// The node's type (Diarkis `SetNodeType`), e.g. `"UDP"`.
    public var nodeType: String
    /// The journal file (created if missing).
    public var journalPath: String
    /// The keys every node of the cluster shares: one key, or several during a rotation (see ``Keyring``).
    public var keyring: Keyring
    /// The cluster key every node shares: the keyring's primary key. Setting it replaces the keyring with that
    /// one key.
    public var clusterKey: ClusterKey {
        get { keyring.primary }
        set { keyring = Keyring(newValue) }
    }
    /// What a journal commit survives. Default `.normal`.
    public var durability: JournalConfiguration.Durability
    /// Retransmission timeout before any RTT sample (Diarkis `retryInterval`). Default 1000 ms.
    public var retryInterval: Duration
    /// Give-up time of a reliable message (Diarkis `retryTimeout`). Default 3000 ms.
    public var retryTimeout: Duration
    /// Silence after which a peer is reported down and its unconfirmed messages fail. Default 3000 ms.
    public var peerTimeout: Duration
    /// Most peers the node holds a session with at once (members, clients, relays). A new peer beyond it takes the
    /// place of one that is not live, never of a live one. Default 4096.
    public var maxPeers: Int
    /// How long after a peer went quiet (down, gone, or never answering) with nothing unconfirmed its session is
    /// closed and its state freed; nothing is sent to it in between. Default 10 s.
    public var forgetPeersAfter: Duration
    /// How long ``MeshNode/shutdown()`` waits for running handlers before cancelling them (what did not finish
    /// stays open in the journal and is dispatched again at the next start). Default 10 s.
    public var shutdownTimeout: Duration
    /// Attempts at a message whose handler throws before it is dead-lettered. Default 3.
    public var maxHandlerAttempts: Int
    /// Encrypt message bodies on the wire. Default `false` (authenticated only).
    public var encrypt: Bool
    /// Addresses (`host:port`) of nodes to join through. Any one reachable member is enough; a node restarted
    /// on the same journal also rejoins through the members it remembers. Default none (a cluster of one
    /// until another node names this one as a seed). A host may be a DNS name (a Kubernetes headless service, a
    /// VM group): it is resolved at start and at every membership round, and every address it yields is a seed;
    /// a name that does not resolve is logged once per change and never stops the node.
    public var seeds: [String]
    /// The node's role (Diarkis: the protocol it serves clients with). Default `"UDP"`.
    public var nodeRole: String
    /// The address other nodes should use, when it differs from ``address`` (a NAT, or binding `0.0.0.0`).
    /// Default `nil`: ``address`` with the actual port; an unspecified host is replaced by the address the
    /// gossip arrived from.
    public var advertisedAddress: String?
    /// A guest (Diarkis `Guest`): a process that sends, requests and gets responses but is not a member — never
    /// listed by the members, never a heartbeat target. It asks its seeds (only) for their view every heartbeat
    /// interval, so ``MeshNode/members()`` still lists the cluster. `mesh send`, `mesh replay` and `mesh cluster`
    /// run as guests. Default `false`.
    public var guest: Bool
    /// Limits of the cluster's shared data (``MeshNode/setShared(_:_:ifVersion:)``): keys, bytes per value, bytes
    /// in all, bytes per key. Writes beyond them fail with `limitExceeded`. Every node of a cluster should use the
    /// same limits. Default ``SharedDataLimits/init(maxKeys:maxValueBytes:maxTotalBytes:maxKeyBytes:)``.
    public var sharedDataLimits: SharedDataLimits
    /// The public address this node's clients use (Diarkis `SetEndPoint`), `host:port` with a numeric host or
    /// a DNS name, gossiped with the node's record (``Member/endpoint``); ``MeshNode/setEndpoint(_:)`` changes
    /// it at run time. Default `nil` (none published).
    public var endpoint: String?
    /// How often the node sends membership heartbeats to each member and seed. Default 500 ms.
    public var heartbeatInterval: Duration
    /// Silence after which a member is reported down. Default 3 s.
    public var memberTimeout: Duration
    /// How long finished messages stay in the journal: acked/failed outbound and handled inbound rows (with
    /// their invocations) that completed longer ago are pruned in the background, in small batches. Pending,
    /// open and dead messages are never pruned. `nil` keeps everything. Default 7 days.
    public var retention: Duration?
    /// How often retention runs. Default 60 s.
    public var pruneInterval: Duration
    /// Below this much free space on the journal's file system, sends fail with `diskFull` instead of
    /// journaling (checked every second; 0 disables the check). Default 64 MiB.
    public var minFreeDiskBytes: Int64
    /// Values published about this node from the start (Diarkis `SetNodeValue`). Default none.
    public var nodeValues: MeshData
    /// Store each message's JSON rendering in the journal's `payload_json` (for `json_extract` in audits).
    /// Default `true`; turning it off roughly halves the bytes journaled for payload-heavy messages.
    public var storesPayloadJSON: Bool
    /// Start an async handler (``MeshNode/handleCommand(_:_:)``) on the thread that hands it its message — the
    /// node's own, for a received message — and run it there until its first suspension (`Task.immediate`): a
    /// handler that returns without suspending then costs no thread handoff, and a request's response is journaled
    /// and sent from the node's thread. What follows a suspension runs on Swift's cooperative pool (an `await` whose
    /// result is already there does not suspend: the handler goes on where it was). Default `true`.
    /// Turn it off when async handlers compute for long before their first `await`: while one computes there, the
    /// node neither reads its socket nor commits; off, every async handler starts on the pool (one thread handoff
    /// per message, each way).
    public var startsAsyncHandlersInline: Bool
    /// How long the node's thread keeps polling its socket, in microseconds, after each exchange (a read, a send)
    /// before it sleeps: a reply (an acknowledgement, a response) or a caller's next message that comes meanwhile is
    /// taken by a running thread instead of one the kernel wakes, which on a virtual machine saves tens of
    /// microseconds per hop (``TransportConfiguration/idleSpinMicroseconds``). The poll steps aside for work handed
    /// to the node, ends at the first datagram or the node's next transport timer, and yields the core between
    /// checks; it lasts three times as long while the node awaits an acknowledgement of what it sent (a request's
    /// response comes later than an acknowledgement would). What it costs is CPU time of an otherwise idle thread, at
    /// most that long after each exchange. Timers of
    /// the journal (a deferred commit) may run up to this much late. 0 sleeps at once (the lowest CPU use, for many
    /// nodes per core). 0...10000. Default: ``defaultIdleSpinMicroseconds(for:)`` of ``durability`` (300 under
    /// `.normal`, 0 under `.full`) until set.
    public var idleSpinMicroseconds: Int {
        get { idleSpinSetting ?? Self.defaultIdleSpinMicroseconds(for: durability) }
        set { idleSpinSetting = newValue }
    }
    /// The value ``idleSpinMicroseconds`` was given, if it was: otherwise it follows ``durability``.
    private var idleSpinSetting: Int?
    /// The default of ``idleSpinMicroseconds`` under `.normal` durability.
    public static let defaultIdleSpinMicroseconds = 300
    /// The default of ``idleSpinMicroseconds`` under `durability`: ``defaultIdleSpinMicroseconds`` under `.normal`;
    /// 0 under `.full`, where each exchange waits for an fsync on both nodes, longer than a poll would last: polling
    /// then spends a core per node while the disk works and shortens no wait (the benchmarks in the README).
    public static func defaultIdleSpinMicroseconds(for durability: JournalConfiguration.Durability) -> Int {
        switch durability {
        case .normal: defaultIdleSpinMicroseconds
        case .full: 0
        }
    }
    /// Send the datagrams of one flush that go to the same peer at one size (each at most 1,452 bytes) as one buffer
    /// the kernel cuts into those datagrams (UDP segmentation offload: ``TransportConfiguration/segmentationOffload``):
    /// peers receive the same datagrams, and the node's network stack runs once per such run instead of once per
    /// datagram. Should a segmented write fail (a network device without checksum offload on an older kernel, a path
    /// MTU below the datagrams), the node logs it once, goes on datagram by datagram, and retransmits what that write
    /// carried. Default: on where the kernel supports it (Linux 4.18 and later).
    public var segmentationOffload: Bool

    /// A configuration with the defaults above.
    public init(address: String, nodeType: String = "UDP", journalPath: String, clusterKey: ClusterKey) {
        self.address = address
        self.nodeType = nodeType
        self.journalPath = journalPath
        self.keyring = Keyring(clusterKey)
        self.durability = .normal
        self.retryInterval = .milliseconds(1000)
        self.retryTimeout = .milliseconds(3000)
        self.peerTimeout = .milliseconds(3000)
        self.maxPeers = 4096
        self.forgetPeersAfter = .seconds(10)
        self.shutdownTimeout = .seconds(10)
        self.maxHandlerAttempts = 3
        self.encrypt = false
        self.storesPayloadJSON = true
        self.startsAsyncHandlersInline = true
        self.segmentationOffload = TransportConfiguration.defaultSegmentationOffload
        self.seeds = []
        self.nodeRole = "UDP"
        self.advertisedAddress = nil
        self.guest = false
        self.sharedDataLimits = SharedDataLimits()
        self.heartbeatInterval = .milliseconds(500)
        self.memberTimeout = .seconds(3)
        self.nodeValues = [:]
        self.retention = .seconds(7 * 24 * 3600)
        self.pruneInterval = .seconds(60)
        self.minFreeDiskBytes = 64 << 20
    }

    /// Checks every setting.
    public func validate() throws(MeshError) {
        _ = try MeshAddress.parse(address)
        guard !journalPath.isEmpty else { throw MeshError(.invalidConfiguration, "journalPath is empty") }
        for seed in seeds {
            do {
                _ = try Seed.parse(seed)
            } catch {
                throw MeshError(.invalidConfiguration, "seed \"\(seed)\": \(error.message)")
            }
        }
        if let advertisedAddress { _ = try MeshAddress.parse(advertisedAddress) }
        if let endpoint { try Self.validateEndpoint(endpoint) }
        let limits = sharedDataLimits
        guard limits.maxKeys >= 1, (1...60_000).contains(limits.maxValueBytes), limits.maxTotalBytes >= limits.maxValueBytes,
              (1...4096).contains(limits.maxKeyBytes) else {
            throw MeshError(.invalidConfiguration, """
                sharedDataLimits: need maxKeys ≥ 1, maxValueBytes 1...60000 (an entry travels in one gossip datagram),                 maxTotalBytes ≥ maxValueBytes, maxKeyBytes 1...4096 (got \(limits))
                """)
        }
        guard heartbeatInterval >= .milliseconds(10), memberTimeout >= heartbeatInterval * 2 else {
            throw MeshError(.invalidConfiguration,
                "heartbeatInterval must be at least 10 ms and memberTimeout at least twice it (got \(heartbeatInterval), \(memberTimeout))")
        }
        if let retention, retention < .seconds(1) {
            throw MeshError(.invalidConfiguration, "retention must be at least 1 s (got \(retention))")
        }
        guard pruneInterval >= .milliseconds(10), minFreeDiskBytes >= 0 else {
            throw MeshError(.invalidConfiguration, "pruneInterval must be at least 10 ms and minFreeDiskBytes not negative")
        }
        guard (0...10_000).contains(idleSpinMicroseconds) else {
            throw MeshError(.invalidConfiguration, "idleSpinMicroseconds must be 0...10000 (got \(idleSpinMicroseconds))")
        }
        guard maxPeers >= 1, forgetPeersAfter > .zero else {
            throw MeshError(.invalidConfiguration, "maxPeers must be at least 1 and forgetPeersAfter positive (got \(maxPeers), \(forgetPeersAfter))")
        }
        guard (1...100).contains(maxHandlerAttempts) else {
            throw MeshError(.invalidConfiguration, "maxHandlerAttempts must be 1...100 (got \(maxHandlerAttempts))")
        }
    }
}

extension MeshConfiguration {
    /// Checks a public endpoint: `host:port`, the host numeric or a DNS name, the port 1...65535.
    static func validateEndpoint(_ endpoint: String) throws(MeshError) {
        do {
            _ = try Seed.parse(endpoint)
        } catch {
            throw MeshError(.invalidConfiguration, "endpoint \"\(endpoint)\": \(error.message)")
        }
    }
}
