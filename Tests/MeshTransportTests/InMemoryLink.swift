import NIOCore
import Testing
@testable import MeshTransport

/// Two transport state machines joined by an in-memory network with a manual clock: every datagram is
/// encoded, optionally dropped, delayed by `latency`, then decoded and delivered. No sockets, no real time.
final class InMemoryLink {
    let addressA = try! SocketAddress(ipAddress: "10.0.0.1", port: 1000)
    let addressB = try! SocketAddress(ipAddress: "10.0.0.2", port: 2000)
    var a: TransportStateMachine
    var b: TransportStateMachine
    var now = NIODeadline.uptimeNanoseconds(1_000_000_000_000)
    var latency: TimeAmount = .microseconds(100)
    /// Return true to drop a datagram (from A when `fromA`).
    var drop: (_ fromA: Bool, _ header: PacketHeader, _ frames: [Frame]) -> Bool = { _, _, _ in false }
    /// Confirm reliable deliveries automatically.
    var autoConfirm = true
    /// When set, the network's fate for each datagram not dropped: one delivery per delay returned (none: lost, two:
    /// duplicated; different delays reorder). Replaces `latency`.
    var network: ((_ fromA: Bool) -> [TimeAmount])?
    /// Which B machine (0 for the first, +1 at each restart or replacement) received each of ``deliveredToB``.
    private(set) var deliveredToBGeneration: [Int] = []
    private(set) var bGeneration = 0

    private(set) var deliveredToB: [ReceivedMessage] = []
    private(set) var deliveredToA: [ReceivedMessage] = []
    private(set) var outcomesA: [UInt64: MessageOutcome] = [:]
    private(set) var outcomesB: [UInt64: MessageOutcome] = [:]
    private(set) var eventsA: [TransportEvent] = []
    private(set) var eventsB: [TransportEvent] = []
    private(set) var datagramsFromA = 0
    /// Every datagram sent (dropped ones too): when, by whom, and its frames.
    private(set) var sentLog: [(fromA: Bool, at: NIODeadline, frames: [Frame])] = []
    /// Datagrams sent to addresses other than A's and B's (not delivered): who sent, to where, its frames.
    private(set) var strayLog: [(fromA: Bool, to: SocketAddress, frames: [Frame])] = []
    private var inFlight: [(toB: Bool, at: NIODeadline, header: PacketHeader, body: ByteBuffer)] = []

    init(configure: (inout TransportConfiguration) -> Void = { _ in }) {
        let key = Keyring(ClusterKey.generate())
        var ca = TransportConfiguration(bindAddress: addressA, nodeID: NodeID(high: 1, low: 1), epoch: 1, keyring: key)
        var cb = TransportConfiguration(bindAddress: addressB, nodeID: NodeID(high: 2, low: 2), epoch: 1, keyring: key)
        configure(&ca)
        configure(&cb)
        a = TransportStateMachine(configuration: ca)
        b = TransportStateMachine(configuration: cb)
    }

    /// Replaces B with a fresh machine (a restart) with the given epoch. Datagrams on their way to B are lost,
    /// unless `keepInFlight` (a network that held them: they reach the new machine).
    func restartB(epoch: UInt32, keepInFlight: Bool = false) {
        var config = b.configuration
        config.epoch = epoch
        installB(config, keepInFlight: keepInFlight)
    }

    /// Replaces B with another node (`node`) at B's address: a different process took the port. The outcomes of
    /// B's sends are forgotten (the new machine numbers its tokens from 1 again).
    func replaceB(node: NodeID, epoch: UInt32, keepInFlight: Bool = false) {
        var config = b.configuration
        config.nodeID = node
        config.epoch = epoch
        installB(config, keepInFlight: keepInFlight)
        outcomesB = [:]
    }

    /// B becomes a fresh machine with `config`, the next generation.
    private func installB(_ config: TransportConfiguration, keepInFlight: Bool) {
        b = TransportStateMachine(configuration: config)
        if !keepInFlight { inFlight.removeAll { $0.toB } }
        bGeneration += 1
    }

    @discardableResult
    func send(_ text: String, lane: UInt16 = 1, reliability: Reliability = .reliable) -> UInt64 {
        send(ByteBuffer(string: text), lane: lane, reliability: reliability)
    }

    @discardableResult
    func send(_ payload: ByteBuffer, lane: UInt16 = 1, reliability: Reliability = .reliable) -> UInt64 {
        let token = try! a.send(payload, lane: lane, reliability: reliability, to: addressB, now: now).get()
        pump()
        return token
    }

    /// Sends from B to A (B opens its own session when it has none).
    @discardableResult
    func sendFromB(_ text: String, lane: UInt16 = 1) -> UInt64 {
        let token = try! b.send(ByteBuffer(string: text), lane: lane, reliability: .reliable, to: addressA, now: now).get()
        pump()
        return token
    }

    /// Flushes both sides and routes their actions until nothing more happens at this instant.
    func pump() {
        for _ in 0..<10_000 {
            a.flush(now: now)
            b.flush(now: now)
            let actionsA = a.takeActions()
            let actionsB = b.takeActions()
            if actionsA.isEmpty && actionsB.isEmpty { break }
            route(actionsA, fromA: true)
            route(actionsB, fromA: false)
            deliverDue()
        }
    }

    private func route(_ actions: [TransportAction], fromA: Bool) {
        for action in actions {
            switch action {
            case .transmit(let address, let header, let body):
                var copy = body
                let frames = Frame.readAll(from: &copy) ?? []
                guard address == (fromA ? addressB : addressA) else {
                    strayLog.append((fromA, address, frames))
                    continue
                }
                if fromA { datagramsFromA += 1 }
                sentLog.append((fromA, now, frames))
                if drop(fromA, header, frames) { continue }
                for delay in network?(fromA) ?? [latency] {
                    inFlight.append((toB: fromA, at: now + delay, header: header, body: body))
                }
            case .deliver(let message):
                if fromA {
                    deliveredToA.append(message)
                } else {
                    deliveredToB.append(message)
                    deliveredToBGeneration.append(bGeneration)
                }
                if autoConfirm && message.token.needsConfirmation {
                    if fromA { a.confirm(message.token) } else { b.confirm(message.token) }
                }
            case .outcome(let token, let outcome):
                if fromA { outcomesA[token] = outcome } else { outcomesB[token] = outcome }
            case .event(let event):
                if fromA { eventsA.append(event) } else { eventsB.append(event) }
            }
        }
    }

    private func deliverDue() {
        let due = inFlight.filter { $0.at <= now }
        inFlight.removeAll { $0.at <= now }
        for packet in due {
            var body = packet.body
            let frames = Frame.readAll(from: &body)!
            if packet.toB {
                b.receive(header: packet.header, frames: frames, from: addressA, now: now)
            } else {
                a.receive(header: packet.header, frames: frames, from: addressB, now: now)
            }
        }
    }

    /// Advances the clock in `step`s for `duration`, delivering packets and running timers.
    func run(for duration: TimeAmount, step: TimeAmount = .microseconds(100)) {
        let end = now + duration
        while now < end {
            now = now + step
            deliverDue()
            a.tick(now: now)
            b.tick(now: now)
            pump()
        }
    }

    /// Advances until `condition` holds or `limit` passes. Returns whether it held.
    @discardableResult
    func run(until condition: () -> Bool, limit: TimeAmount = .seconds(30), step: TimeAmount = .microseconds(100)) -> Bool {
        let end = now + limit
        while now < end {
            if condition() { return true }
            now = now + step
            deliverDue()
            a.tick(now: now)
            b.tick(now: now)
            pump()
        }
        return condition()
    }

    func injectToB(_ header: PacketHeader, _ body: ByteBuffer) {
        var copy = body
        b.receive(header: header, frames: Frame.readAll(from: &copy)!, from: addressA, now: now)
        pump()
    }

    func injectToA(_ header: PacketHeader, _ body: ByteBuffer) {
        var copy = body
        a.receive(header: header, frames: Frame.readAll(from: &copy)!, from: addressB, now: now)
        pump()
    }

    /// Forgets the datagrams logged so far.
    func clearLog() { sentLog.removeAll() }

    /// The frames of each datagram B sent since the log was cleared.
    var framesFromB: [[Frame]] { sentLog.filter { !$0.fromA }.map(\.frames) }

    func payloadsAtB(lane: UInt16? = nil) -> [String] {
        deliveredToB.filter { lane == nil || $0.commandID == lane }.map { String(buffer: $0.payload) }
    }
}

extension InMemoryLink {
    /// A link with the given `maxAckDelay` whose B confirms only when a test tells it to, after one warm-up message
    /// (the handshake done, a round trip measured) and a quiet spell, so the next datagrams are the test's alone.
    static func warmedUp(maxAckDelay: Duration) -> InMemoryLink {
        let link = InMemoryLink { $0.maxAckDelay = maxAckDelay }
        link.autoConfirm = false
        link.send("warm-up")
        link.run(until: { link.deliveredToB.count == 1 })
        link.b.confirm(link.deliveredToB[0].token)
        #expect(link.run(until: { link.outcomesA.count == 1 }))
        link.run(for: .milliseconds(5))
        return link
    }
}

/// What kind of frame it is, for tests that look at what a datagram carried.
extension Frame {
    var isAck: Bool { if case .ack = self { true } else { false } }
    var isConfirm: Bool { if case .confirm = self { true } else { false } }
    var isData: Bool { if case .data = self { true } else { false } }
}
