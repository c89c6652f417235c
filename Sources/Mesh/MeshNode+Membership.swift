import Foundation
import Logging
import MeshCore
import Metrics
import MeshJournal
import MeshTransport
import NIOConcurrencyHelpers
import NIOCore

/// Membership and discovery: no directory server. Nodes find each other through any seed address, exchange
/// records (id, address, type, role, status, values, incarnation) by heartbeat gossip over the authenticated
/// transport, mark silent members down, and persist what they know in the journal's `mesh_peer` table so a
/// restarted node rejoins without seeds. Gossip is control traffic: it is not journaled as messages.
extension MeshNode {
    /// The reserved command ID membership gossip travels on.
    public static let membershipCommand: UInt16 = 65000

    /// Bytes of shared-data values per gossip datagram (at least one entry goes each time): a write is in the
    /// next datagram to every member; the rest of the map follows in rotation.
    static let sharedBytesPerGossip = 16 * 1024

    /// Every member this node knows, itself first (reachable or not; see ``Member/isReachable``).
    public func members() -> [Member] { membership.withLockedValue { $0.members } }

    /// Addresses of reachable members of `nodeType`, this node included when it matches (Diarkis
    /// `GetNodeAddressesByType`; like Diarkis the list includes members that declared themselves offline or
    /// taken — ``onlineNodeAddresses(ofType:)`` does not). Empty, never a crash, when there is none.
    public func nodeAddresses(ofType nodeType: String) -> [String] {
        members().filter { $0.isReachable && $0.nodeType == nodeType }.map(\.address).sorted()
    }

    /// Addresses of reachable members declared online, of `nodeType`: where new work may go.
    public func onlineNodeAddresses(ofType nodeType: String) -> [String] {
        members().filter { $0.isOnline && $0.nodeType == nodeType }.map(\.address).sorted()
    }

    /// Addresses of reachable members of `nodeRole` (Diarkis `GetNodeAddressesByRole`).
    public func nodeAddresses(ofRole nodeRole: String) -> [String] {
        members().filter { $0.isReachable && $0.nodeRole == nodeRole }.map(\.address).sorted()
    }

    /// Addresses of every reachable member except those in `ignored` (Diarkis `GetNodeAddresses`).
    public func nodeAddresses(excluding ignored: [String] = []) -> [String] {
        let skip = Set(ignored)
        return members().filter { $0.isReachable && !skip.contains($0.address) }.map(\.address).sorted()
    }

    /// A random online member of `nodeType` other than this node, or `nil` when there is none.
    public func randomOnlineNodeAddress(ofType nodeType: String) -> String? {
        members().filter { $0.isOnline && !$0.isSelf && $0.nodeType == nodeType }.randomElement()?.address
    }

    /// The member at `address` (Diarkis `GetNode`), or `nil`.
    public func member(at address: String) -> Member? { membership.withLockedValue { $0.member(address: address) } }

    /// This node's declared status.
    public var status: MemberStatus { membership.withLockedValue { $0.me.status } }

    /// Declares this node online, offline or taken (Diarkis `SetStatus`) and gossips it at once.
    public func setStatus(_ status: MemberStatus) {
        membership.withLockedValue { $0.updateSelf { $0.status = status } }
        gossipNow()
    }

    /// Publishes a value about this node (Diarkis `SetNodeValue`), e.g. its player count; `nil` removes it.
    public func setNodeValue(_ name: String, _ value: MeshValue?) {
        membership.withLockedValue { $0.updateSelf { $0.values[name] = value } }
        gossipNow()
    }

    /// Publishes the public address this node's clients use (Diarkis `SetEndPoint`), `host:port` (numeric or a
    /// DNS name), or withdraws it with `nil`; gossiped at once.
    /// - Throws: ``MeshError`` (`invalidConfiguration`) for an endpoint that is not `host:port`.
    public func setEndpoint(_ endpoint: String?) throws(MeshError) {
        if let endpoint { try MeshConfiguration.validateEndpoint(endpoint) }
        membership.withLockedValue { $0.updateSelf { $0.endpoint = endpoint } }
        gossipNow()
    }

    /// This node's public endpoint (Diarkis `GetMyNodeEndPoint`), or `nil`.
    public var endpoint: String? { membership.withLockedValue { $0.me.endpoint } }

    /// The public endpoint of the member at mesh address `address` (Diarkis `GetNodeEndPoint`), or `nil`.
    public func endpoint(at address: String) -> String? { member(at: address)?.endpoint }

    /// The member whose public endpoint is `endpoint` (Diarkis `GetNodeByEndPoint`), or `nil`; a reachable one
    /// first if several published it.
    public func member(atEndpoint endpoint: String) -> Member? {
        let matching = members().filter { $0.endpoint == endpoint }
        return matching.first(where: \.isReachable) ?? matching.first
    }

    /// A value published by the member at `address` (Diarkis `GetNodeValue`), this node's own included.
    public func nodeValue(_ name: String, at address: String) -> MeshValue? { member(at: address)?.values[name] }

    /// Every value published by the member at `address` (Diarkis `GetNodeValues`).
    public func nodeValues(at address: String) -> MeshData? { member(at: address)?.values }

    /// Membership changes from now on: joined, updated, down, left. Each call returns a new stream; it buffers
    /// the newest 1024 events if not consumed, and ends when the node shuts down.
    public func membershipEvents() -> AsyncStream<MembershipEvent> { membershipBroadcaster.stream() }

    // MARK: - Internals

    static func makeMembershipTable(configuration: MeshConfiguration, identity: JournalIdentity, address: String) -> MembershipTable {
        let me = Member(nodeID: identity.nodeID, address: configuration.advertisedAddress ?? address, nodeType: configuration.nodeType,
                        nodeRole: configuration.nodeRole, status: .online, values: configuration.nodeValues, endpoint: configuration.endpoint,
                        incarnation: UInt64(UInt32(truncatingIfNeeded: identity.bootEpoch)) << 32)
        return MembershipTable(me: me, memberTimeout: configuration.memberTimeout, isGuest: configuration.guest)
    }

    /// Loads the members the journal remembers (heard from within a day) as heartbeat targets.
    func loadKnownPeers() async {
        do {
            let peers = try await journal.knownPeers(maxAgeMs: 24 * 3600 * 1000)
            let now = ContinuousClock.now
            membership.withLockedValue { table in
                for peer in peers {
                    table.remember(Member(nodeID: peer.nodeID, address: peer.address, nodeType: peer.nodeType, nodeRole: peer.nodeRole,
                                          status: MemberStatus(rawValue: peer.status) ?? .online,
                                          values: (try? MeshCodec.decode(peer.values)) ?? [:], incarnation: peer.incarnation),
                                   now: now)
                }
            }
        } catch {
            logger.warning("could not load known peers from the journal", metadata: ["mesh.error": "\(error)"])
        }
    }

    /// Heartbeats until shutdown: expire silent members, gossip to every target, persist changes.
    func membershipLoop() async {
        var tick = 0
        while !isStopped {
            let (events, reachable) = membership.withLockedValue { ($0.expire(now: .now), $0.members.filter(\.isReachable).count) }
            publish(events)
            metrics.members.record(reachable)
            await gossipRound()
            tick += 1
            if tick % 60 == 0 { await persistMembers(members().filter { $0.isReachable && !$0.isSelf }) }
            try? await Task.sleep(for: configuration.heartbeatInterval)
        }
    }

    /// Sends one gossip datagram to every heartbeat target — the whole gossip (rumours, shared data) to the seeds
    /// and a few others in rotation, a heartbeat (this node's record) to the rest; returns the receipts.
    /// - Parameter urgent: a local change (status, values, a shared write) goes out now to every target: this
    ///   node's record and the recent shared writes, no rumours — small, so every member has it within one
    ///   datagram instead of after a few rounds of spreading.
    @discardableResult
    func gossipRound(leaving: Bool = false, urgent: Bool = false) async -> [MeshTransport.Receipt] {
        // Names are resolved again every round (a headless service gains and loses pods); a slow DNS delays the
        // round by at most a heartbeat interval, then the last addresses known are used.
        let seeds = leaving ? self.seeds.current : await self.seeds.addresses(waitingAtMost: configuration.heartbeatInterval)
        var plan = membership.withLockedValue { $0.planRound(leaving ? .leaving : urgent ? .urgent : .periodic, seeds: seeds) }
        switch plan.kind {
        case .urgent: plan.rich.shared = sharedData.withLockedValue { $0.takeRecent(maxBytes: Self.sharedBytesPerGossip) }
        case .periodic: plan.rich.shared = sharedData.withLockedValue { $0.nextGossip(maxBytes: Self.sharedBytesPerGossip) }
        case .leaving: break
        }
        guard !plan.targets.isEmpty, let richBytes = try? plan.rich.encode() else { return [] }
        // Encoded only if some target gets it (an urgent round sends everyone the rich one).
        let beatBytes = plan.richTargets.count < plan.targets.count ? try? plan.heartbeat.encode() : nil
        var receipts: [MeshTransport.Receipt] = []
        for target in plan.targets {
            guard let address = try? MeshAddress.parse(target),
                  let bytes = plan.richTargets.contains(target) ? richBytes : beatBytes else { continue }
            if let receipt = try? await transport.send(bytes, commandID: Self.membershipCommand, to: address, reliability: .unreliable) {
                receipts.append(receipt)
            }
        }
        return receipts
    }

    func gossipNow() {
        guard !isStopped else { return }
        Task { await gossipRound(urgent: true) }
    }

    /// Handles a datagram on a reserved command ID (never journaled, never dispatched to handlers).
    func receiveControl(_ message: ReceivedMessage) {
        if message.token.needsConfirmation { transport.confirm(message.token) }
        guard message.commandID == Self.membershipCommand,
              let gossip = MembershipTable.Gossip.decode(Array(message.payload.readableBytesView)) else { return }
        // A record must come from the node it describes (the transport authenticated the sender's id).
        guard gossip.sender.nodeID == message.node.description else { return }
        switch membership.withLockedValue({ $0.admission(of: gossip) }) {
        case .apply:
            mergeShared(gossip.shared)
        case .ignore: return
        case .answerGuest:
            // A guest's writes spread through the members it asks.
            mergeShared(gossip.shared)
            answerGuest(at: message.address)
            return
        }
        let events = membership.withLockedValue { $0.receive(gossip, observedHost: message.address.ipAddress, now: .now) }
        synced.fire()
        publish(events)
        if !events.isEmpty {
            let members = events.map(\.member)
            Task { await persistMembers(members) }
        }
    }

    /// Sends a guest this node's whole view (it is never added as a member).
    private func answerGuest(at address: SocketAddress) {
        var view = membership.withLockedValue { $0.fullView() }
        view.shared = sharedData.withLockedValue { $0.nextGossip(maxBytes: Self.sharedBytesPerGossip) }
        guard let bytes = try? view.encode() else { return }
        // Unreliable and never waiting: under backpressure this answer is skipped, the guest asks again next round.
        _ = transport.trySend(ByteBuffer(bytes: bytes), commandID: Self.membershipCommand, to: address, reliability: .unreliable)
    }

    /// The transport saw a peer stop answering (down) or say goodbye (left): mark it so without waiting for the
    /// member timeout. The goodbye is the transport's half of a graceful shutdown, so it reports `.left` whether
    /// it is handled before or after the node's leaving gossip (they race: events and deliveries take
    /// different paths).
    func watchTransportEvents() async {
        for await event in transport.events {
            switch event {
            case .peerDown(_, let node?, _): publish(membership.withLockedValue { $0.markDown(nodeID: node.description) })
            case .peerLeft(_, let node): publish(membership.withLockedValue { $0.markLeft(nodeID: node.description) })
            default: continue
            }
        }
    }

    func publish(_ events: [MembershipEvent]) {
        guard !events.isEmpty else { return }
        for event in events {
            logger.info("membership", metadata: [
                "mesh.event": "\(Self.eventName(event))", "mesh.peer": "\(event.member.address)", "mesh.peer.node": "\(event.member.nodeID)",
            ])
        }
        membershipBroadcaster.yield(events)
    }

    func finishMembershipEvents() { membershipBroadcaster.finish() }

    /// Announces the shutdown (status offline, leaving) and waits for the datagrams to go out — at most a second,
    /// which a loaded machine can need before its event loop writes them (the transport closes next, and a datagram
    /// not yet written is lost: the other nodes would wait for the member timeout to report this one gone).
    func announceLeaving() async {
        membership.withLockedValue { $0.updateSelf { $0.status = .offline } }
        let receipts = await gossipRound(leaving: true)
        _ = await Self.race(timeout: .seconds(1)) {
            for receipt in receipts { _ = await receipt.outcome() }
        }
    }

    func persistMembers(_ members: [Member]) async {
        let records = members.filter { !$0.isSelf }.map {
            PeerRecord(nodeID: $0.nodeID, address: $0.address, nodeType: $0.nodeType, nodeRole: $0.nodeRole, status: $0.status.rawValue,
                       incarnation: $0.incarnation, values: (try? MeshCodec.encode($0.values)) ?? [])
        }
        do {
            try await journal.savePeers(records)
        } catch {
            logger.warning("could not persist members", metadata: ["mesh.error": "\(error)"])
        }
    }

    static func eventName(_ event: MembershipEvent) -> String {
        switch event {
        case .joined: "joined"
        case .updated: "updated"
        case .down: "down"
        case .left: "left"
        }
    }
}
