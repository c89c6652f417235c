import MeshCore
import MeshJournal

/// The membership protocol as a pure state machine: it takes gossip and the current time and returns events;
/// ``MeshNode`` carries out the sends on a timer. Unit-tested with a manual clock.
///
/// Protocol: every heartbeat interval a node sends each known member (and each seed) one unreliable gossip
/// datagram on reserved command ``MeshNode/membershipCommand``: its own record plus up to ``fanout`` records of
/// members it currently hears from, rotating through them. A member becomes *reachable* only when its own
/// gossip arrives directly (a rumour about a third node makes it a heartbeat target, never reachable by
/// hearsay), and *down* after ``memberTimeout`` without one. A node's record is authoritative when it comes
/// from the node itself; rumours apply only with a higher incarnation.
///
/// A *guest* (Diarkis `Guest`: a process that sends and requests but is not a member) marks its gossip `guest`:
/// members never add it (it is never listed, never a heartbeat target) and answer it with their whole view, a
/// `full` gossip, whose records the guest takes as reachable. A guest gossips to its seeds only.
struct MembershipTable: Sendable {
    struct Entry: Sendable {
        var member: Member
        var lastHeard: ContinuousClock.Instant
    }

    /// One gossip datagram.
    struct Gossip: Sendable, Equatable {
        var sender: Member
        var leaving: Bool
        var members: [Member]
        /// The sender is a guest: answer with a ``full`` gossip, do not add it.
        var guest = false
        /// The sender's whole view of reachable members (an answer to a guest).
        var full = false
        /// Shared-data entries (see ``SharedDataTable/nextGossip(maxBytes:)``), merged by every receiver.
        var shared: [SharedEntry] = []
    }

    /// What to do with a gossip datagram, before ``receive(_:observedHost:now:)``.
    enum Admission: Equatable {
        /// Apply it.
        case apply
        /// A guest's: answer it with ``fullView()``, add nothing.
        case answerGuest
        /// Nothing to do (a guest's gossip reaching a guest, or this node's own).
        case ignore
    }

    private(set) var me: Member
    private var entries: [String: Entry] = [:]
    let memberTimeout: Duration
    /// Members never heard from directly (or down) are forgotten after this long.
    let forgetAfter: Duration
    /// Third-party records per gossip datagram.
    let fanout: Int
    private var rotation = 0
    /// Targets that get the whole gossip (rumours and shared data) each round, rotating through the members; the
    /// others get a heartbeat, this node's record only. Keeps a node's gossip bytes O(members) with a small
    /// constant instead of O(members × fanout): rumours and shared data still spread epidemically.
    let richFanout: Int
    private var richRotation = 0
    /// This node is a guest (``MeshConfiguration/guest``).
    let isGuest: Bool

    init(me: Member, memberTimeout: Duration, forgetAfter: Duration = .seconds(3600), fanout: Int = 32, richFanout: Int = 3,
         isGuest: Bool = false) {
        self.isGuest = isGuest
        self.richFanout = richFanout
        var me = me
        me.isSelf = true
        me.isReachable = true
        self.me = me
        self.memberTimeout = memberTimeout
        self.forgetAfter = forgetAfter
        self.fanout = fanout
    }

    /// Every member, this node first, then by address.
    var members: [Member] { [me] + entries.values.map(\.member).sorted { ($0.address, $0.nodeID) < ($1.address, $1.nodeID) } }

    func member(nodeID: String) -> Member? { nodeID == me.nodeID ? me : entries[nodeID]?.member }

    /// The member at `address`, preferring a reachable one (a replaced node can leave a stale record behind).
    func member(address: String) -> Member? {
        if me.address == address { return me }
        let candidates = entries.values.map(\.member).filter { $0.address == address }
        return candidates.first(where: \.isReachable) ?? candidates.max { $0.incarnation < $1.incarnation }
    }

    /// Changes this node's own record and bumps its incarnation so the change wins everywhere.
    mutating func updateSelf(_ change: (inout Member) -> Void) {
        change(&me)
        me.incarnation += 1
    }

    /// Adds a member known from elsewhere (the journal's peer table) as a heartbeat target, not reachable
    /// until it answers.
    mutating func remember(_ member: Member, now: ContinuousClock.Instant) {
        guard member.nodeID != me.nodeID, entries[member.nodeID] == nil else { return }
        var m = member
        m.isReachable = false
        m.isSelf = false
        entries[m.nodeID] = Entry(member: m, lastHeard: now)
    }

    /// How to take `gossip`: a member answers a guest and adds nothing; a guest ignores other guests.
    func admission(of gossip: Gossip) -> Admission {
        guard gossip.sender.nodeID != me.nodeID else { return .ignore }
        guard gossip.guest else { return .apply }
        return isGuest || gossip.leaving ? .ignore : .answerGuest
    }

    /// The answer to a guest: this node's record and every reachable member's (at most 255), marked `full`.
    func fullView() -> Gossip {
        let reachable = entries.values.map(\.member).filter(\.isReachable).sorted { $0.nodeID < $1.nodeID }
        return Gossip(sender: me, leaving: false, members: Array(reachable.prefix(255)), full: true)
    }

    /// Applies a gossip datagram received from `observedHost` (the datagram's source IP, used when the
    /// sender advertises an unspecified host such as `0.0.0.0`).
    mutating func receive(_ gossip: Gossip, observedHost: String?, now: ContinuousClock.Instant) -> [MembershipEvent] {
        guard gossip.sender.nodeID != me.nodeID else { return [] }
        var events: [MembershipEvent] = []
        var sender = gossip.sender
        sender.isSelf = false
        if let observedHost, let fixed = Self.replacingUnspecifiedHost(sender.address, with: observedHost) { sender.address = fixed }
        if var entry = entries[sender.nodeID] {
            // A record older than the one held (a heartbeat overtaken by the same node's goodbye or status
            // change: gossip datagrams may be reordered) says nothing new, and must not revive a node that left.
            guard sender.incarnation >= entry.member.incarnation else { return gossipRumours(gossip, from: sender, now: now) }
            let wasReachable = entry.member.isReachable
            let changed = sender.incarnation > entry.member.incarnation && !Self.sameDeclaration(entry.member, sender)
            entry.member = sender
            entry.lastHeard = now
            entry.member.isReachable = !gossip.leaving
            entries[sender.nodeID] = entry
            if gossip.leaving {
                if wasReachable { events.append(.left(entry.member)) }
            } else if !wasReachable {
                events.append(.joined(entry.member))
            } else if changed {
                events.append(.updated(entry.member))
            }
        } else {
            sender.isReachable = !gossip.leaving
            entries[sender.nodeID] = Entry(member: sender, lastHeard: now)
            if !gossip.leaving { events.append(.joined(sender)) }
        }
        if gossip.full && isGuest { return events + takeFullView(gossip, from: sender, now: now) }
        return events + gossipRumours(gossip, from: sender, now: now)
    }

    /// A guest takes a member's whole view as it is: those records are reachable (the member hears from them).
    private mutating func takeFullView(_ gossip: Gossip, from sender: Member, now: ContinuousClock.Instant) -> [MembershipEvent] {
        var events: [MembershipEvent] = []
        for var record in gossip.members where record.nodeID != me.nodeID && record.nodeID != sender.nodeID {
            record.isSelf = false
            record.isReachable = true
            if let entry = entries[record.nodeID] {
                guard record.incarnation >= entry.member.incarnation else { continue }
                if !entry.member.isReachable { events.append(.joined(record)) }
                else if !Self.sameDeclaration(entry.member, record) { events.append(.updated(record)) }
            } else {
                events.append(.joined(record))
            }
            entries[record.nodeID] = Entry(member: record, lastHeard: now)
        }
        return events
    }

    /// What a gossip datagram says about other members: newer records replace older ones (never making a member
    /// reachable: only its own gossip does that); unknown members are noted as heartbeat targets.
    private mutating func gossipRumours(_ gossip: Gossip, from sender: Member, now: ContinuousClock.Instant) -> [MembershipEvent] {
        var events: [MembershipEvent] = []
        for var rumour in gossip.members where rumour.nodeID != me.nodeID && rumour.nodeID != sender.nodeID {
            rumour.isSelf = false
            if var entry = entries[rumour.nodeID] {
                guard rumour.incarnation > entry.member.incarnation else { continue }
                let changed = !Self.sameDeclaration(entry.member, rumour)
                rumour.isReachable = entry.member.isReachable
                entry.member = rumour
                entries[rumour.nodeID] = entry
                if changed && rumour.isReachable { events.append(.updated(rumour)) }
            } else {
                rumour.isReachable = false
                entries[rumour.nodeID] = Entry(member: rumour, lastHeard: now)
            }
        }
        return events
    }

    /// Marks members silent for longer than the member timeout down, and forgets long-gone ones.
    mutating func expire(now: ContinuousClock.Instant) -> [MembershipEvent] {
        var events: [MembershipEvent] = []
        for (id, entry) in entries {
            let silence = now - entry.lastHeard
            if entry.member.isReachable, silence > memberTimeout {
                entries[id]?.member.isReachable = false
                events.append(.down(entries[id]!.member))
            } else if !entry.member.isReachable, silence > forgetAfter {
                entries[id] = nil
            }
        }
        return events.sorted { $0.member.address < $1.member.address }
    }

    /// Marks a member down at once (the transport saw it stop answering).
    mutating func markDown(nodeID: String) -> [MembershipEvent] {
        guard var entry = entries[nodeID], entry.member.isReachable else { return [] }
        entry.member.isReachable = false
        entries[nodeID] = entry
        return [.down(entry.member)]
    }

    /// Marks a member as having left at once (its transport said goodbye: a graceful shutdown).
    mutating func markLeft(nodeID: String) -> [MembershipEvent] {
        guard var entry = entries[nodeID], entry.member.isReachable else { return [] }
        entry.member.isReachable = false
        entries[nodeID] = entry
        return [.left(entry.member)]
    }

    /// Addresses to send heartbeats to: every remembered member (reachable or not, so a down member that comes
    /// back is noticed), plus the seeds that are not already a known member's address.
    func heartbeatTargets(seeds: [String]) -> [String] {
        // A guest asks its seeds only (each answers with its whole view).
        if isGuest { return seeds.filter { $0 != me.address }.sorted() }
        var targets = Set(entries.values.map(\.member.address))
        for seed in seeds where seed != me.address { targets.insert(seed) }
        return targets.sorted()
    }

    /// The kind of a gossip round.
    enum RoundKind: Sendable {
        /// Every heartbeat interval.
        case periodic
        /// A local change to announce now: this node's record to every target, no rumours.
        case urgent
        /// The shutdown's goodbye to every target.
        case leaving
    }

    /// What one gossip round sends; the shell adds the shared data to ``rich``, encodes and sends.
    struct RoundPlan: Sendable {
        /// For the targets in ``richTargets``: this node's record and its rumours.
        var rich: Gossip
        /// For the other targets: this node's record alone.
        var heartbeat: Gossip
        /// Every target, in order.
        var targets: [String]
        var richTargets: Set<String>
        /// Whether the shared data goes out: recent writes only (urgent), a share of the map (periodic), none
        /// (leaving).
        var kind: RoundKind
    }

    /// Plans one gossip round to `seeds` and the members.
    mutating func planRound(_ kind: RoundKind, seeds: [String]) -> RoundPlan {
        let targets = heartbeatTargets(seeds: seeds)
        switch kind {
        case .urgent:
            let record = Gossip(sender: me, leaving: false, members: [], guest: isGuest)
            return RoundPlan(rich: record, heartbeat: record, targets: targets, richTargets: Set(targets), kind: kind)
        case .leaving, .periodic:
            let gossip = nextGossip(leaving: kind == .leaving)
            var heartbeat = gossip
            heartbeat.members = []
            let rich = kind == .leaving ? [] : richTargets(targets, seeds: seeds)
            return RoundPlan(rich: gossip, heartbeat: heartbeat, targets: targets, richTargets: rich, kind: kind)
        }
    }

    /// Which of `targets` get the whole gossip this round: every seed (a joining node learns the cluster from
    /// them) and the next ``richFanout`` of the others in rotation.
    mutating func richTargets(_ targets: [String], seeds: [String]) -> Set<String> {
        let seedSet = Set(seeds)
        var rich = seedSet.intersection(targets)
        let others = targets.filter { !seedSet.contains($0) }
        guard !others.isEmpty else { return rich }
        let count = min(richFanout, others.count)
        for i in 0..<count { rich.insert(others[(richRotation + i) % others.count]) }
        richRotation = (richRotation + count) % others.count
        return rich
    }

    /// The next gossip datagram: this node's record plus a rotating window of reachable members.
    mutating func nextGossip(leaving: Bool = false) -> Gossip {
        let reachable = entries.values.map(\.member).filter(\.isReachable).sorted { $0.nodeID < $1.nodeID }
        var window: [Member] = []
        if !reachable.isEmpty {
            let count = min(fanout, reachable.count)
            for i in 0..<count { window.append(reachable[(rotation + i) % reachable.count]) }
            rotation = (rotation + count) % reachable.count
        }
        return Gossip(sender: me, leaving: leaving, members: isGuest ? [] : window, guest: isGuest)
    }

    static func sameDeclaration(_ a: Member, _ b: Member) -> Bool {
        a.address == b.address && a.nodeType == b.nodeType && a.nodeRole == b.nodeRole && a.status == b.status && a.values == b.values
            && a.endpoint == b.endpoint
    }

    /// `0.0.0.0:8000` seen from 10.0.0.5 → `10.0.0.5:8000`; `nil` when the host is already specific.
    static func replacingUnspecifiedHost(_ address: String, with host: String) -> String? {
        guard let colon = address.lastIndex(of: ":") else { return nil }
        let advertisedHost = address[..<colon]
        guard advertisedHost == "0.0.0.0" || advertisedHost == "[::]" || advertisedHost == "::" else { return nil }
        let port = address[address.index(after: colon)...]
        return host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
    }
}

// MARK: - Wire form

extension MembershipTable.Gossip {
    /// `{"v":1, "from": record, "leaving": bool, "members": [record], "guest": true?, "full": true?}` in ``MeshCodec``.
    func encode() throws -> [UInt8] {
        var data: MeshData = [
            "v": .uint8(1), "from": .map(Self.record(sender)), "leaving": .bool(leaving),
            "members": .array(members.map { .map(Self.record($0)) }),
        ]
        // Only when set: a member's gossip is unchanged, and readers that know neither flag ignore them.
        if guest { data["guest"] = .bool(true) }
        if full { data["full"] = .bool(true) }
        if !shared.isEmpty { data["shared"] = .array(shared.map { .map(Self.sharedRecord($0)) }) }
        return try MeshCodec.encode(data)
    }

    static func decode(_ bytes: [UInt8]) -> Self? {
        guard let data = try? MeshCodec.decode(bytes), data.uint8("v") == 1, let from = data.map("from").flatMap(member),
              let leaving = data.bool("leaving"), let list = data.array("members") else { return nil }
        var members: [Member] = []
        for value in list.prefix(256) {
            guard let record = value.mapValue, let member = member(record) else { return nil }
            members.append(member)
        }
        var shared: [SharedEntry] = []
        for value in (data.array("shared") ?? []).prefix(4096) {
            guard let record = value.mapValue, let entry = sharedEntry(record) else { return nil }
            shared.append(entry)
        }
        return Self(sender: from, leaving: leaving, members: members, guest: data.bool("guest") ?? false, full: data.bool("full") ?? false,
                    shared: shared)
    }

    /// A member's record; `ep` (its public endpoint) only when it has one, so the record is unchanged for nodes
    /// without one (and readers that know no `ep` ignore it).
    private static func record(_ m: Member) -> MeshData {
        var record: MeshData = ["id": .string(m.nodeID), "addr": .string(m.address), "type": .string(m.nodeType), "role": .string(m.nodeRole),
                                "status": .uint8(UInt8(m.status.rawValue)), "inc": .uint64(m.incarnation), "values": .map(m.values)]
        if let endpoint = m.endpoint { record["ep"] = .string(endpoint) }
        return record
    }

    /// `{"k": key, "v": value (absent: removed), "ver": version, "w": writer, "t": ms}`.
    private static func sharedRecord(_ e: SharedEntry) -> MeshData {
        var record: MeshData = ["k": .string(e.key), "ver": .uint64(e.version), "w": .string(e.writer), "t": .int64(e.updatedAtMs)]
        if let value = e.value { record["v"] = value }
        return record
    }

    private static func sharedEntry(_ d: MeshData) -> SharedEntry? {
        guard let key = d.string("k"), !key.isEmpty, let version = d.uint64("ver"), version >= 1, let writer = d.string("w"),
              writer.utf8.count == 32, let time = d.int64("t") else { return nil }
        return SharedEntry(key: key, value: d["v"], version: version, writer: writer, updatedAtMs: time)
    }

    private static func member(_ d: MeshData) -> Member? {
        guard let id = d.string("id"), id.utf8.count == 32, let addr = d.string("addr"), let type = d.string("type"),
              let role = d.string("role"), let status = d.uint8("status").flatMap({ MemberStatus(rawValue: Int($0)) }),
              let inc = d.uint64("inc"), let values = d.map("values") else { return nil }
        return Member(nodeID: id, address: addr, nodeType: type, nodeRole: role, status: status, values: values,
                      endpoint: d.string("ep"), incarnation: inc)
    }
}
