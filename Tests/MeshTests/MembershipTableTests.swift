import MeshCore
import Testing
@testable import Mesh

/// The membership state machine with a manual clock: no sockets, no sleeping.
@Suite struct MembershipTableTests {
    static func member(_ n: Int, type: String = "UDP", status: MemberStatus = .online, incarnation: UInt64 = 1 << 32) -> Member {
        Member(nodeID: String(repeating: String(n, radix: 16), count: 32), address: "10.0.0.\(n):8000", nodeType: type,
               nodeRole: "UDP", status: status, incarnation: incarnation)
    }

    let t0 = ContinuousClock.now

    func table() -> MembershipTable { MembershipTable(me: Self.member(1), memberTimeout: .seconds(3), forgetAfter: .seconds(60), fanout: 2) }

    @Test func directGossipJoinsAndSilenceMarksDown() {
        var table = table()
        let b = Self.member(2)
        #expect(table.receive(.init(sender: b, leaving: false, members: []), observedHost: nil, now: t0) == [.joined(b)])
        // Heard again: no event.
        #expect(table.receive(.init(sender: b, leaving: false, members: []), observedHost: nil, now: t0 + .seconds(1)).isEmpty)
        #expect(table.expire(now: t0 + .seconds(3)).isEmpty)
        var down = b
        down.isReachable = false
        #expect(table.expire(now: t0 + .seconds(4) + .milliseconds(1)) == [.down(down)])
        #expect(table.expire(now: t0 + .seconds(5)).isEmpty)  // reported once
        // It answers again: joined again.
        #expect(table.receive(.init(sender: b, leaving: false, members: []), observedHost: nil, now: t0 + .seconds(6)) == [.joined(b)])
        // Forgotten after a long silence.
        _ = table.expire(now: t0 + .seconds(10))
        _ = table.expire(now: t0 + .seconds(100))
        #expect(table.members.map(\.nodeID) == [Self.member(1).nodeID])
    }

    @Test func aMemberAnswersAGuestWithItsWholeViewAndNeverAddsIt() throws {
        var table = table()
        let b = Self.member(2), c = Self.member(3)
        _ = table.receive(.init(sender: b, leaving: false, members: []), observedHost: nil, now: t0)
        _ = table.receive(.init(sender: c, leaving: false, members: []), observedHost: nil, now: t0)
        var guest = Self.member(9)
        guest.address = "10.0.0.9:9000"
        let ask = MembershipTable.Gossip(sender: guest, leaving: false, members: [], guest: true)
        #expect(table.admission(of: ask) == .answerGuest)
        #expect(table.admission(of: .init(sender: guest, leaving: true, members: [], guest: true)) == .ignore)
        #expect(table.admission(of: .init(sender: b, leaving: false, members: [])) == .apply)
        let view = table.fullView()
        #expect(view.full && view.sender.nodeID == Self.member(1).nodeID && view.members.map(\.nodeID) == [b.nodeID, c.nodeID])
        // The flags survive the wire; a member's own gossip carries neither.
        let decoded = try #require(MembershipTable.Gossip.decode(try view.encode()))
        #expect(decoded.full && !decoded.guest && decoded.members == view.members && decoded.sender.nodeID == view.sender.nodeID)
        #expect(try MembershipTable.Gossip.decode(ask.encode()) == ask)
        #expect(!table.nextGossip().guest && !table.nextGossip().full)
        // Never listed, never a heartbeat target.
        #expect(table.member(nodeID: guest.nodeID) == nil && !table.heartbeatTargets(seeds: []).contains(guest.address))
    }

    @Test func aGuestAsksItsSeedsOnlyAndTakesAWholeViewAsReachable() {
        var me = Self.member(9)
        me.address = "10.0.0.9:9000"
        var guest = MembershipTable(me: me, memberTimeout: .seconds(3), forgetAfter: .seconds(60), fanout: 2, isGuest: true)
        let a = Self.member(1), b = Self.member(2), c = Self.member(3)
        #expect(guest.nextGossip().guest && guest.nextGossip().members.isEmpty)
        let events = guest.receive(.init(sender: a, leaving: false, members: [b, c], full: true), observedHost: nil, now: t0)
        #expect(Set(events) == [.joined(a), .joined(b), .joined(c)])
        #expect(guest.members.filter(\.isReachable).count == 4)
        // Its seeds only, not every member it learned.
        #expect(guest.heartbeatTargets(seeds: [a.address]) == [a.address])
        // Another guest's gossip means nothing to a guest.
        #expect(guest.admission(of: .init(sender: Self.member(8), leaving: false, members: [], guest: true)) == .ignore)
        // A member's plain gossip (not a whole view) is a rumour as usual: not reachable by hearsay.
        let d = Self.member(4)
        _ = guest.receive(.init(sender: a, leaving: false, members: [d]), observedHost: nil, now: t0)
        #expect(guest.member(nodeID: d.nodeID)?.isReachable == false)
    }

    /// A round's gossip bytes from one node, with `count` reachable members: the whole gossip (record, up to 32
    /// rumours) to the rich targets, a heartbeat (its record) to the rest; and what it was when every target got
    /// the whole gossip.
    static func roundBytes(members count: Int) throws -> (bounded: Int, everyoneRich: Int) {
        var table = MembershipTable(me: member(1), memberTimeout: .seconds(3), forgetAfter: .seconds(60))
        for n in 2...count {
            let hex = String(n, radix: 16)
            let m = Member(nodeID: String(repeating: "0", count: 32 - hex.count) + hex, address: "10.0.\(n / 250).\(n % 250):8000",
                           nodeType: "ROOM", nodeRole: "UDP", status: .online, values: ["ccu": .int64(Int64(n * 7)), "rooms": 12],
                           incarnation: 1 << 32)
            _ = table.receive(.init(sender: m, leaving: false, members: []), observedHost: nil, now: ContinuousClock.now)
        }
        let targets = table.heartbeatTargets(seeds: [])
        let rich = table.richTargets(targets, seeds: [])
        let gossip = table.nextGossip()
        var heartbeat = gossip
        heartbeat.members = []
        let (richBytes, beatBytes) = (try gossip.encode().count, try heartbeat.encode().count)
        let bounded = targets.reduce(0) { $0 + (rich.contains($1) ? richBytes : beatBytes) }
        return (bounded, targets.count * richBytes)
    }

    @Test func gossipBytesPerNodeGrowWithTheMembersTimesASmallConstant() throws {
        let three = try Self.roundBytes(members: 3)
        let twenty = try Self.roundBytes(members: 20)
        let hundred = try Self.roundBytes(members: 100)
        // Up to the rich fanout every target gets everything, as before.
        #expect(three.bounded == three.everyoneRich)
        // Beyond it, heartbeats: a fraction of what sending every target 32 rumours cost.
        #expect(twenty.bounded * 3 < twenty.everyoneRich, "\(twenty)")
        #expect(hundred.bounded * 8 < hundred.everyoneRich, "\(hundred)")
        // Per member, the bounded round stays near one heartbeat.
        #expect(hundred.bounded / 99 < 2 * (twenty.bounded / 19), "\(hundred) \(twenty)")
    }

    @Test func roundsArePlannedByKind() {
        var table = MembershipTable(me: Self.member(1), memberTimeout: .seconds(3), richFanout: 1)
        for n in 2...4 { _ = table.receive(.init(sender: Self.member(n), leaving: false, members: []), observedHost: nil, now: t0) }
        let periodic = table.planRound(.periodic, seeds: [])
        #expect(periodic.targets.count == 3 && periodic.richTargets.count == 1 && !periodic.rich.members.isEmpty && periodic.heartbeat.members.isEmpty)
        let urgent = table.planRound(.urgent, seeds: [])
        #expect(urgent.richTargets == Set(urgent.targets) && urgent.rich.members.isEmpty && !urgent.rich.leaving)
        let leaving = table.planRound(.leaving, seeds: [])
        #expect(leaving.richTargets.isEmpty && leaving.heartbeat.leaving && leaving.heartbeat.members.isEmpty)
    }

    @Test func richTargetsRotateThroughTheMembersAndAlwaysIncludeTheSeeds() {
        var table = MembershipTable(me: Self.member(1), memberTimeout: .seconds(3), richFanout: 2)
        let targets = (2...7).map { "10.0.0.\($0):8000" }
        var seen = Set<String>()
        for _ in 0..<3 {
            let rich = table.richTargets(targets, seeds: ["10.0.0.2:8000"])
            #expect(rich.contains("10.0.0.2:8000") && rich.count == 3)
            seen.formUnion(rich)
        }
        #expect(seen == Set(targets))
    }

    @Test func rumoursMakeTargetsNotReachableMembers() {
        var table = table()
        let b = Self.member(2), c = Self.member(3)
        _ = table.receive(.init(sender: b, leaving: false, members: [c]), observedHost: nil, now: t0)
        #expect(table.heartbeatTargets(seeds: []) == [b.address, c.address])
        #expect(table.member(nodeID: c.nodeID)?.isReachable == false)
        #expect(table.receive(.init(sender: c, leaving: false, members: []), observedHost: nil, now: t0) == [.joined(c)])
    }

    @Test func higherIncarnationWinsAndChangesAreReported() {
        var table = table()
        let b = Self.member(2)
        _ = table.receive(.init(sender: b, leaving: false, members: []), observedHost: nil, now: t0)
        var taken = b
        taken.status = .taken
        taken.incarnation += 1
        #expect(table.receive(.init(sender: taken, leaving: false, members: []), observedHost: nil, now: t0) == [.updated(taken)])
        // A reordered older record does not undo it.
        #expect(table.receive(.init(sender: b, leaving: false, members: []), observedHost: nil, now: t0).isEmpty)
        #expect(table.member(nodeID: b.nodeID)?.status == .taken)
        // A rumour with an older incarnation is ignored; a newer one applies.
        let c = Self.member(3)
        #expect(table.receive(.init(sender: c, leaving: false, members: [b]), observedHost: nil, now: t0) == [.joined(c)])
        #expect(table.member(nodeID: b.nodeID)?.status == .taken)
        var valued = taken
        valued.values = ["ccu": .int64(10)]
        valued.incarnation += 1
        #expect(table.receive(.init(sender: c, leaving: false, members: [valued]), observedHost: nil, now: t0) == [.updated(valued)])
    }

    @Test func leavingIsReportedOnceAndRestartSupersedes() {
        var table = table()
        let b = Self.member(2)
        _ = table.receive(.init(sender: b, leaving: false, members: []), observedHost: nil, now: t0)
        var gone = b
        gone.status = .offline
        gone.incarnation += 1
        gone.isReachable = false
        #expect(table.receive(.init(sender: gone, leaving: true, members: []), observedHost: nil, now: t0) == [.left(gone)])
        #expect(table.receive(.init(sender: gone, leaving: true, members: []), observedHost: nil, now: t0).isEmpty)
        let restarted = Self.member(2, incarnation: 2 << 32)
        #expect(table.receive(.init(sender: restarted, leaving: false, members: []), observedHost: nil, now: t0) == [.joined(restarted)])
    }

    /// Gossip datagrams can be reordered: a heartbeat overtaken by the same node's goodbye must not bring it back.
    @Test func aLateHeartbeatDoesNotReviveANodeThatLeft() {
        var table = table()
        let b = Self.member(2)
        _ = table.receive(.init(sender: b, leaving: false, members: []), observedHost: nil, now: t0)
        var gone = b
        gone.status = .offline
        gone.incarnation += 1
        #expect(table.receive(.init(sender: gone, leaving: true, members: []), observedHost: nil, now: t0).count == 1)
        #expect(table.receive(.init(sender: b, leaving: false, members: []), observedHost: nil, now: t0 + .milliseconds(5)).isEmpty)
        #expect(table.members.first { $0.nodeID == b.nodeID }?.isReachable == false)
        #expect(table.members.first { $0.nodeID == b.nodeID }?.status == .offline)
    }

    @Test func unspecifiedHostIsReplacedByTheObservedOne() {
        var table = table()
        var b = Self.member(2)
        b.address = "0.0.0.0:9000"
        _ = table.receive(.init(sender: b, leaving: false, members: []), observedHost: "192.168.1.7", now: t0)
        #expect(table.member(nodeID: b.nodeID)?.address == "192.168.1.7:9000")
        #expect(MembershipTable.replacingUnspecifiedHost("[::]:9000", with: "fe80::1") == "[fe80::1]:9000")
        #expect(MembershipTable.replacingUnspecifiedHost("10.0.0.1:9000", with: "fe80::1") == nil)
    }

    @Test func gossipRotatesThroughReachableMembersWithinTheFanout() {
        var table = table()
        for n in 2...4 { _ = table.receive(.init(sender: Self.member(n), leaving: false, members: []), observedHost: nil, now: t0) }
        var seen: Set<String> = []
        for _ in 0..<3 {
            let gossip = table.nextGossip()
            #expect(gossip.members.count == 2)
            #expect(gossip.sender.nodeID == Self.member(1).nodeID)
            seen.formUnion(gossip.members.map(\.nodeID))
        }
        #expect(seen.count == 3)
    }

    @Test func ownRecordsAndSelfUpdatesBumpTheIncarnation() {
        var table = table()
        let before = table.me.incarnation
        table.updateSelf { $0.status = .taken }
        #expect(table.me.incarnation == before + 1)
        // Gossip about ourselves from others is ignored.
        var fake = table.me
        fake.status = .offline
        fake.incarnation += 10
        #expect(table.receive(.init(sender: Self.member(2), leaving: false, members: [fake]), observedHost: nil, now: t0).count == 1)
        #expect(table.me.status == .taken)
    }

    @Test func gossipRoundTripsAndMalformedIsRejected() throws {
        var b = Self.member(2)
        b.values = ["rooms": .int64(3), "name": .string("b")]
        let gossip = MembershipTable.Gossip(sender: b, leaving: true, members: [Self.member(3, status: .taken)])
        let bytes = try gossip.encode()
        #expect(MembershipTable.Gossip.decode(bytes) == gossip)
        #expect(MembershipTable.Gossip.decode(Array(bytes.dropLast())) == nil)
        #expect(MembershipTable.Gossip.decode(try MeshCodec.encode(["v": .uint8(2)])) == nil)
        #expect(MembershipTable.Gossip.decode([]) == nil)
    }
}
