import MeshCore
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// A UDP proxy with real sockets that sits between a client node and a server node and injects seeded faults:
/// loss (independent or in bursts), duplication, reordering, delay with jitter, byte corruption, and full
/// partitions that can be switched on and off while it runs.
///
/// The client sends to ``listenAddress``; the proxy forwards from its own upstream socket to the server, and
/// forwards the server's replies back to the last client address it saw. The server can also send to the
/// client first, to ``upstreamAddress`` (the address it sees the client at). Both directions suffer the same
/// faults. Every decision comes from a seeded generator, so a run can be repeated.
public final class FaultProxy: Sendable {
    /// What to inject. Probabilities are per datagram, in 0...1.
    public struct Faults: Sendable, Equatable {
        /// Drop a datagram.
        public var loss: Double
        /// Once a datagram is dropped, drop the next ones with this probability (burst loss; 0 = independent).
        public var burstContinuation: Double
        /// Send a datagram twice.
        public var duplicate: Double
        /// Hold a datagram back and send it after the next one.
        public var reorder: Double
        /// Delay every datagram by a uniformly random time in this range.
        public var delay: ClosedRange<Duration>?
        /// Flip one random byte of a datagram.
        public var corrupt: Double
        /// Drop everything (a partition) while true.
        public var partitioned: Bool
        /// Keep copies of up to this many datagrams sent toward the server (for replay tests); see ``recorded``.
        public var record: Int

        /// No faults.
        public init(loss: Double = 0, burstContinuation: Double = 0, duplicate: Double = 0, reorder: Double = 0,
                    delay: ClosedRange<Duration>? = nil, corrupt: Double = 0, partitioned: Bool = false, record: Int = 0) {
            self.loss = loss
            self.burstContinuation = burstContinuation
            self.duplicate = duplicate
            self.reorder = reorder
            self.delay = delay
            self.corrupt = corrupt
            self.partitioned = partitioned
            self.record = record
        }
    }

    /// Counts of what the proxy did.
    public struct Statistics: Sendable, Equatable {
        /// Datagrams sent on (duplicates included).
        public var forwarded = 0
        /// Datagrams dropped (loss or partition).
        public var dropped = 0
        /// Extra copies sent.
        public var duplicated = 0
        /// Datagrams held back and sent after a later one.
        public var reordered = 0
        /// Datagrams with a flipped byte.
        public var corrupted = 0
    }

    /// Where clients send.
    public let listenAddress: SocketAddress
    /// Where datagrams are forwarded.
    public let forwardAddress: SocketAddress
    /// The proxy's upstream socket: the address the server sees the client at. What the server sends here goes
    /// to the client (once the client has sent something through the proxy).
    public let upstreamAddress: SocketAddress
    private let state: NIOLockedValueBox<State>
    private let front: any Channel
    private let back: any Channel

    struct State {
        var faults: Faults
        var rng: SplitMix64
        var statistics = Statistics()
        var client: SocketAddress?
        var inBurst = false
        var held: [Direction: (SocketAddress, ByteBuffer)] = [:]
        var recorded: [ByteBuffer] = []
    }

    enum Direction: Hashable { case toServer, toClient }

    private init(listen: SocketAddress, forward: SocketAddress, state: NIOLockedValueBox<State>, front: any Channel, back: any Channel) {
        self.listenAddress = listen
        self.forwardAddress = forward
        self.upstreamAddress = back.localAddress!
        self.state = state
        self.front = front
        self.back = back
    }

    /// Starts a proxy listening on `listen` (port 0 for any) and forwarding to `forward`.
    public static func start(listen: SocketAddress, forward: SocketAddress, faults: Faults, seed: UInt64,
                             group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> FaultProxy {
        let state = NIOLockedValueBox(State(faults: faults, rng: SplitMix64(seed: seed)))
        let loop = group.next()
        let channels = NIOLockedValueBox<(front: (any Channel)?, back: (any Channel)?)>((nil, nil))
        func bootstrap(_ direction: Direction) -> DatagramBootstrap {
            DatagramBootstrap(group: loop)
                .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
                .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHandler(
                            ProxyHandler(direction: direction, state: state, channels: channels, forward: forward))
                    }
                }
        }
        let front = try await bootstrap(.toServer).bind(to: listen).get()
        let anyAddress = try SocketAddress(ipAddress: forward.protocol == .inet6 ? "::1" : "127.0.0.1", port: 0)
        let back = try await bootstrap(.toClient).bind(to: anyAddress).get()
        channels.withLockedValue { $0 = (front, back) }
        return FaultProxy(listen: front.localAddress!, forward: forward, state: state, front: front, back: back)
    }

    /// Changes the faults while running (for example to start or heal a partition).
    public func setFaults(_ faults: Faults) { state.withLockedValue { $0.faults = faults } }

    /// The faults in force.
    public var faults: Faults { state.withLockedValue { $0.faults } }

    /// Datagrams recorded on their way to the server (see ``Faults/record``), as received from the client.
    public var recorded: [[UInt8]] { state.withLockedValue { $0.recorded.map { Array($0.readableBytesView) } } }

    /// What the proxy has done so far.
    public var statistics: Statistics { state.withLockedValue { $0.statistics } }

    /// Closes both sockets.
    public func close() async {
        try? await front.close()
        try? await back.close()
    }
}

/// Forwards one direction: the front socket's reads go to the server through the back socket, and the back
/// socket's reads go to the client through the front socket.
final class ProxyHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let direction: FaultProxy.Direction
    let state: NIOLockedValueBox<FaultProxy.State>
    let channels: NIOLockedValueBox<(front: (any Channel)?, back: (any Channel)?)>
    let forward: SocketAddress

    init(direction: FaultProxy.Direction, state: NIOLockedValueBox<FaultProxy.State>,
         channels: NIOLockedValueBox<(front: (any Channel)?, back: (any Channel)?)>, forward: SocketAddress) {
        self.direction = direction
        self.state = state
        self.channels = channels
        self.forward = forward
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        let (front, back) = channels.withLockedValue { ($0.front, $0.back) }
        guard let front, let back else { return }
        let out: any Channel
        let destination: SocketAddress
        switch direction {
        case .toServer:
            state.withLockedValue { $0.client = envelope.remoteAddress }
            out = back
            destination = forward
        case .toClient:
            guard let client = state.withLockedValue({ $0.client }) else { return }
            out = front
            destination = client
        }
        var sends: [(ByteBuffer, Duration)] = []
        state.withLockedValue { s in
            let f = s.faults
            if direction == .toServer && s.recorded.count < f.record { s.recorded.append(envelope.data) }
            if f.partitioned {
                s.statistics.dropped += 1
                return
            }
            let lossP = s.inBurst ? max(f.loss, f.burstContinuation) : f.loss
            if s.rng.chance(lossP) {
                s.inBurst = f.burstContinuation > 0
                s.statistics.dropped += 1
                return
            }
            s.inBurst = false
            var payload = envelope.data
            if s.rng.chance(f.corrupt), payload.readableBytes > 0 {
                let index = payload.readerIndex + Int(s.rng.next() % UInt64(payload.readableBytes))
                let byte = payload.getInteger(at: index, as: UInt8.self)!
                payload.setInteger(byte ^ UInt8(truncatingIfNeeded: s.rng.next() | 1), at: index)
                s.statistics.corrupted += 1
            }
            let delay: Duration
            if let range = f.delay {
                let low = range.lowerBound.components
                let lowNanos = low.seconds * 1_000_000_000 + low.attoseconds / 1_000_000_000
                let high = range.upperBound.components
                let highNanos = high.seconds * 1_000_000_000 + high.attoseconds / 1_000_000_000
                delay = .nanoseconds(lowNanos + Int64(s.rng.next() % UInt64(max(1, highNanos - lowNanos + 1))))
            } else {
                delay = .zero
            }
            if s.rng.chance(f.reorder), s.held[direction] == nil {
                s.held[direction] = (destination, payload)
                s.statistics.reordered += 1
                return
            }
            sends.append((payload, delay))
            if s.rng.chance(f.duplicate) {
                sends.append((payload, delay))
                s.statistics.duplicated += 1
            }
            if let (_, held) = s.held.removeValue(forKey: direction) {
                sends.append((held, delay))
            }
            s.statistics.forwarded += sends.count
        }
        for (payload, delay) in sends {
            let envelope = AddressedEnvelope(remoteAddress: destination, data: payload)
            let nanos = delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000
            if nanos > 0 {
                out.eventLoop.scheduleTask(in: .nanoseconds(nanos)) { out.writeAndFlush(envelope, promise: nil) }
            } else {
                out.writeAndFlush(envelope, promise: nil)
            }
        }
    }
}

@available(*, unavailable)
extension ProxyHandler: Sendable {}

extension SplitMix64 {
    /// True with probability `p`.
    mutating func chance(_ p: Double) -> Bool {
        guard p > 0 else { return false }
        return Double(next() >> 11) / Double(1 << 53) < p
    }
}
