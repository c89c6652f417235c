import Logging
import MeshFailpoints
import NIOCore
import NIOPosix
import NIOConcurrencyHelpers
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Reliable, authenticated messaging over UDP between Mesh nodes, with no knowledge of the journal: it moves
/// messages and reports exactly what happened to each one.
///
/// - Reliable messages are retransmitted (RTT-adaptive, with backoff) until the receiver *confirms* them,
///   delivered once per sender epoch and in send order per (sender, command ID); unreliable ones are sent once.
/// - Every datagram is authenticated under the cluster key; nothing unauthenticated is accepted or answered.
/// - A receiver hands each reliable message to the application and confirms it with ``confirm(_:)`` once it is
///   durable (a Mesh node: once journaled); the sender's outcome is ``MessageOutcome/confirmed`` only then.
///
/// ```swift
/// let transport = try await MeshTransport.bind(configuration: .init(bindAddress: try .init(ipAddress: "127.0.0.1", port: 8000),
///                                                                   keyring: Keyring(key)), logger: logger)
/// let outcome = try await transport.send(bytes, commandID: 1024, to: peer).outcome()
/// for await message in transport.messages { …; transport.confirm(message.token) }
/// ```
public final class MeshTransport: Sendable {
    /// The bound address (with the actual port when port 0 was requested).
    public let localAddress: SocketAddress
    /// The settings in force.
    public let configuration: TransportConfiguration
    /// Messages received, one array per read batch, in per-(sender, command ID) order for reliable ones.
    /// Reliable messages must be passed to ``confirm(_:)`` (or ``reject(_:reason:)``); until then the sender
    /// keeps them in its window, which bounds what this stream can hold. Iterate either this or ``messages``,
    /// not both (they share one stream).
    public let inbound: AsyncStream<[ReceivedMessage]>

    /// The same messages as ``inbound``, one at a time.
    public var messages: FlattenedMessages { FlattenedMessages(base: inbound) }
    /// Peer events: up, restarted, down.
    public let events: AsyncStream<TransportEvent>

    /// The socket: replaced by ``rebind()`` if SwiftNIO closes it on a send error.
    private let channelBox: NIOLockedValueBox<any Channel>
    private var channel: any Channel { channelBox.withLockedValue { $0 } }
    private let handler: NIOLoopBound<TransportHandler>
    private let gate: SendGate
    private let logger: Logger
    /// Set by ``close()``: no socket is bound again after it.
    private let closing = Atomic<Bool>(false)
    /// When the socket was last replaced.
    private let lastRebind = NIOLockedValueBox<ContinuousClock.Instant?>(nil)
    /// Messages queued by ``trySend(_:commandID:to:reliability:)`` that the event loop has not taken yet.
    private let mailbox = Mutex<[QueuedSend]>([])
    /// Counts the work this transport hands to its event loop, for the loop's idle spin (`nil`: nobody spins).
    private let activity: LoopActivity?

    private init(channel: any Channel, handler: NIOLoopBound<TransportHandler>, configuration: TransportConfiguration,
                 inbound: AsyncStream<[ReceivedMessage]>, events: AsyncStream<TransportEvent>, gate: SendGate, logger: Logger,
                 activity: LoopActivity?) {
        self.channelBox = NIOLockedValueBox(channel)
        self.activity = activity
        self.logger = logger
        self.gate = gate
        self.handler = handler
        self.configuration = configuration
        self.localAddress = channel.localAddress!
        self.inbound = inbound
        self.events = events
    }

    /// Binds a UDP socket and starts the transport.
    /// - Parameter inboundHandler: receives messages on the event loop instead of ``inbound`` (see
    ///   ``TransportInboundHandler``); `nil` for the async stream.
    /// - Throws: ``TransportError`` (`invalidConfiguration`, `bindFailed`).
    public static func bind(configuration: TransportConfiguration, logger: Logger,
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
                            inboundHandler: (any TransportInboundHandler)? = nil) async throws -> MeshTransport {
        try await bind(configuration: configuration, logger: logger, group: group, inboundHandler: inboundHandler, activity: nil)
    }

    /// ``bind(configuration:logger:group:inboundHandler:)`` on a loop whose owner counts the work it hands to the
    /// loop in `activity` (bumped here too), which the idle spin (``TransportConfiguration/idleSpinMicroseconds``)
    /// watches.
    package static func bind(configuration: TransportConfiguration, logger: Logger, group: any EventLoopGroup,
                             inboundHandler: (any TransportInboundHandler)?, activity: LoopActivity?) async throws -> MeshTransport {
        try configuration.validate()
        let (inbound, deliveryContinuation) = AsyncStream.makeStream(
            of: [ReceivedMessage].self, bufferingPolicy: .bufferingOldest(configuration.maxPendingDeliveryBatches))
        let (events, eventContinuation) = AsyncStream.makeStream(of: TransportEvent.self)
        let eventLoop = group.next()
        // 256 messages on their way to the loop at most: larger limits made bursts that overflowed the
        // receiver's socket buffer in `mesh bench transport` (330 retransmits at 1024 against 12 at 256).
        let gate = SendGate(transitLimit: 256)
        let metrics = TransportMetrics()  // here, where a task-local metrics factory is in effect
        let bootstrap = Self.bootstrap(configuration, eventLoop: eventLoop) { channel in
            let handler = TransportHandler(
                machine: TransportStateMachine(configuration: configuration),
                sealer: DatagramSealer(keyring: configuration.keyring, encrypt: configuration.encrypt),
                logger: logger, metrics: metrics, deliveries: deliveryContinuation, events: eventContinuation,
                inboundHandler: inboundHandler, gate: gate, eventLoop: channel.eventLoop,
                idleSpin: configuration.idleSpinMicroseconds > 0
                    ? IdleSpin(nanoseconds: Int64(configuration.idleSpinMicroseconds) * 1000, activity: activity) : nil,
                coalescer: configuration.segmentationOffload && System.supportsUDPSegmentationOffload
                    ? DatagramCoalescer(maxSegments: DatagramCoalescer.kernelMaxSegments) : nil)
            try channel.pipeline.syncOperations.addHandler(handler)
        }
        let (channel, descriptor) = try await Self.open(bootstrap, at: configuration.bindAddress)
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: TransportHandler.self), eventLoop: channel.eventLoop)
        }.get()
        logger.debug("transport bound", metadata: ["mesh.address": "\(channel.localAddress!)", "mesh.node": "\(configuration.nodeID)"])
        let transport = MeshTransport(channel: channel, handler: handler, configuration: configuration, inbound: inbound, events: events,
                                      gate: gate, logger: logger, activity: activity)
        try await channel.eventLoop.submit {
            handler.value.socketDescriptor = descriptor
            handler.value.onSocketLost = { [weak transport] in
                guard let transport else { return }
                Task { await transport.rebind() }
            }
            handler.value.beforeFlush = { [weak transport] in transport?.drainMailbox() }
        }.get()
        return transport
    }

    /// The datagram bootstrap of every socket of a transport (the first one and any replacement), with `install`
    /// adding the protocol handler. No SO_REUSEADDR: on Linux it lets a second UDP socket bind the same port and
    /// silently take part of the traffic. UDP has no TIME_WAIT, so a restarted node rebinds its port without it.
    private static func bootstrap(_ configuration: TransportConfiguration, eventLoop: any EventLoop,
                                  install: @escaping @Sendable (any Channel) throws -> Void) -> DatagramBootstrap {
        let slot = configuration.maxDatagramSize + 648
        return DatagramBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(configuration.socketBufferBytes))
            .channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(configuration.socketBufferBytes))
            .channelOption(.datagramVectorReadMessageCount, value: configuration.readBatch)
            // One recvmmsg per readable event to begin with; the handler adapts it to the traffic
            // (``TransportHandler`` `adaptReadsPerEvent`).
            .channelOption(.maxMessagesPerRead, value: UInt(TransportHandler.initialReadsPerEvent))
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: slot * configuration.readBatch))
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try install(channel) } }
    }

    /// Binds a UDP socket to `address` and hands it to `bootstrap`; returns the channel and the socket's descriptor
    /// (which the idle spin polls). The socket is made here rather than by SwiftNIO, which does not tell its
    /// descriptor.
    /// - Throws: ``TransportError`` `bindFailed`.
    private static func open(_ bootstrap: DatagramBootstrap, at address: SocketAddress) async throws -> (any Channel, CInt) {
        func failure(_ reason: String) -> TransportError { TransportError(.bindFailed, "cannot bind \(address): \(reason)") }
        let descriptor = socket(address.protocol.rawValue, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw failure(String(cString: strerror(errno))) }
        let bound = address.withSockAddr { Glibc.bind(descriptor, $0, socklen_t($1)) }
        guard bound == 0 else {
            let reason = String(cString: strerror(errno))
            _ = Glibc.close(descriptor)
            throw failure(reason)
        }
        // From here SwiftNIO owns the descriptor: it closes it with the channel, also when setting the channel up
        // fails, so a failure here must not close it again (the number may already be someone else's).
        do {
            return (try await bootstrap.withBoundSocket(descriptor).get(), descriptor)
        } catch {
            throw failure("\(error)")
        }
    }

    /// Binds a new socket to the same address after the old one closed without being asked to (SwiftNIO closes a
    /// datagram socket on send errors such as `ENETUNREACH`, e.g. while the host's interface is down), keeping
    /// every session and unfinished message. Retries with backoff (up to 2 s) until it succeeds or the
    /// transport is closed.
    func rebind() async {
        let handler = self.handler
        var delay = Duration.milliseconds(50)
        // A socket lost again soon after the last replacement (the interface is still down and every send
        // fails): wait a little, rather than spin replacing sockets.
        let now = ContinuousClock.now
        if let last = lastRebind.withLockedValue({ $0 }), now - last < .seconds(2) { try? await Task.sleep(for: .milliseconds(500)) }
        lastRebind.withLockedValue { $0 = .now }
        while !closing.load(ordering: .acquiring) {
            do {
                let (fresh, descriptor) = try await Self.open(Self.bootstrap(configuration, eventLoop: channel.eventLoop) { channel in
                    handler.value.socketDescriptor = nil
                    try channel.pipeline.syncOperations.addHandler(handler.value)
                }, at: localAddress)
                try await fresh.eventLoop.submit { handler.value.socketDescriptor = descriptor }.get()
                channelBox.withLockedValue { $0 = fresh }
                if closing.load(ordering: .acquiring) { try? await fresh.close() }
                return
            } catch {
                logger.warning("could not bind the transport socket again; retrying", metadata: [
                    "mesh.address": "\(localAddress)", "mesh.error": "\(error)", "mesh.retry_in": "\(delay)",
                ])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(2))
            }
        }

    }

    /// A message handed to ``send(_:commandID:to:reliability:)``: await ``outcome()`` for what became of it.
    public struct Receipt: Sendable {
        let box: OutcomeBox

        /// The message's final outcome: confirmed by the receiver, sent (unreliable), or failed.
        public func outcome() async -> MessageOutcome { await box.wait() }

        /// The outcome if it is already known, without waiting.
        public var currentOutcome: MessageOutcome? { box.value }

        /// Runs `body` once the outcome is known, without a task: on the event loop that settles it, or at once
        /// if it is already known. `body` must not block (hand slow work elsewhere).
        public func whenComplete(_ body: @escaping @Sendable (MessageOutcome) -> Void) { box.whenComplete(body) }
    }

    /// Queues a message from any thread without suspending, if the transport can take it at once: nothing is
    /// waiting for window space and few messages are on their way to the event loop. Returns `nil` under
    /// backpressure or once closed (then call ``send(_:commandID:to:reliability:)``, which waits). Messages queued
    /// this way in a burst reach the event loop together, in one hop.
    public func trySend(_ payload: ByteBuffer, commandID: UInt16, to address: SocketAddress,
                        reliability: Reliability = .reliable) -> Receipt? {
        guard !gate.closed, gate.tryPass(1) else { return nil }
        let box = OutcomeBox()
        let first = mailbox.withLock { queued in
            queued.append(QueuedSend(payload: payload, commandID: commandID, address: address, reliability: reliability, box: box))
            return queued.count == 1
        }
        // The drain also runs at the start of every flush (``TransportHandler/beforeFlush``): a message sent from a
        // commit that runs inside the loop's read handling leaves in that read's flush.
        if first {
            activity?.note()
            channel.eventLoop.execute { self.drainMailbox() }
        }
        return Receipt(box: box)
    }

    /// On the event loop: queues everything ``trySend(_:commandID:to:reliability:)`` left in the mailbox.
    private func drainMailbox() {
        LatencyProbe.mark(.mailboxDrained)
        let sends = mailbox.withLock { queued in
            defer { queued.removeAll(keepingCapacity: true) }
            return queued
        }
        guard !sends.isEmpty else { return }
        gate.arrived(sends.count)
        handler.value.queue(sends)
    }

    /// A message queued by ``trySend(_:commandID:to:reliability:)`` on its way to the event loop.
    struct QueuedSend: Sendable {
        let payload: ByteBuffer
        let commandID: UInt16
        let address: SocketAddress
        let reliability: Reliability
        let box: OutcomeBox
    }

    /// Queues a message for `address`. Suspends while the peer's backlog is full (backpressure); returns as
    /// soon as the message is queued.
    /// - Throws: ``TransportError`` (`closed`) if the transport is shut down. (A message queued while it
    ///   closes fails with `closed` through its receipt instead.)
    @discardableResult
    public func send(_ payload: ByteBuffer, commandID: UInt16, to address: SocketAddress,
                     reliability: Reliability = .reliable) async throws -> Receipt {
        try await send(batch: [(payload, commandID)], to: address, reliability: reliability)[0]
    }

    /// Queues several messages for `address` with one hop to the event loop (the node's path after a group
    /// commit). Suspends while the peer's backlog is full. Receipts are in the order given.
    public func send(batch messages: [(payload: ByteBuffer, commandID: UInt16)], to address: SocketAddress,
                     reliability: Reliability = .reliable) async throws -> [Receipt] {
        let eventLoop = channel.eventLoop
        let handler = self.handler
        let promises = messages.map { _ in OutcomeBox() }
        guard !gate.closed else { throw TransportError(.closed, "the transport was closed") }
        let gate = self.gate
        if gate.tryPass(messages.count) {
            // Nothing waits for window space and few messages are on their way: queue and return without
            // waiting for the event loop (a thread hop each way). Senders racing with the window filling up
            // park a few messages beyond it; the next ones see the pressure and wait.
            let count = messages.count
            activity?.note()
            eventLoop.execute {
                gate.arrived(count)
                handler.value.sendOrPark(messages, to: address, reliability: reliability, outcomes: promises, room: nil)
            }
            return promises.map { Receipt(box: $0) }
        }
        let room = eventLoop.makePromise(of: Void.self)
        activity?.note()
        eventLoop.execute {
            handler.value.sendOrPark(messages, to: address, reliability: reliability, outcomes: promises, room: room)
        }
        try await room.futureResult.get()
        return promises.map { Receipt(box: $0) }
    }

    /// Queues a message given as bytes.
    @discardableResult
    public func send(_ bytes: [UInt8], commandID: UInt16, to address: SocketAddress,
                     reliability: Reliability = .reliable) async throws -> Receipt {
        try await send(ByteBuffer(bytes: bytes), commandID: commandID, to: address, reliability: reliability)
    }

    /// Reports delivered reliable messages as durable, so their senders see them confirmed.
    ///
    /// `mayWait`: the confirmations may wait up to ``TransportConfiguration/maxAckDelay`` for a datagram going to
    /// their senders anyway, instead of leaving at the next flush — for requests, whose senders wait for the
    /// response, which will carry them. Past that delay they leave on their own (the sender's give-up time is far
    /// longer).
    public func confirm(_ tokens: [DeliveryToken], mayWait: Bool = false) {
        guard !tokens.isEmpty else { return }
        let handler = self.handler
        // On the loop (the node confirms from its commit there): at once, so the confirmation joins the next flush.
        if channel.eventLoop.inEventLoop { return handler.value.confirm(tokens, mayWait: mayWait) }
        activity?.note()
        channel.eventLoop.execute { handler.value.confirm(tokens, mayWait: mayWait) }
    }

    /// Reports one delivered reliable message as durable.
    public func confirm(_ token: DeliveryToken) { confirm([token]) }

    /// Refuses a delivered reliable message: the sender's outcome becomes a `rejected` failure with `reason`.
    public func reject(_ token: DeliveryToken, reason: String) {
        let handler = self.handler
        activity?.note()
        channel.eventLoop.execute { handler.value.reject(token, reason: reason) }
    }

    /// Protocol counters so far (datagrams, retransmissions, duplicates, replays, ...), the idle polls of
    /// ``TransportConfiguration/idleSpinMicroseconds`` (`idle_polls` run, `idle_polls_caught` ended by a datagram or
    /// work rather than by their time) and ``TransportConfiguration/segmentationOffload`` (`segmented_writes`, the
    /// datagrams they carried as `segmented_datagrams`, and `segmentation_offload`: 1 while on), for tests and tools.
    public func statistics() async throws -> [String: Int] {
        let handler = self.handler
        return try await channel.eventLoop.submit {
            let c = handler.value.counters
            return [
                "datagrams_in": c.datagramsIn, "datagrams_out": c.datagramsOut, "retransmits": c.retransmits,
                "fast_retransmits": c.fastRetransmits, "timeouts": c.timeouts, "duplicates": c.duplicates,
                "replays": c.replays, "stale": c.stale, "dropped_over_limit": c.droppedOverLimit,
                "auth_failures": c.authFailures, "malformed": c.malformed, "peers": handler.value.sessionCount,
                "peers_refused": c.peersRefused, "peers_forgotten": c.peersForgotten,
                "idle_polls": handler.value.idlePolls.run, "idle_polls_caught": handler.value.idlePolls.caught,
                "segmented_writes": handler.value.segmented.writes, "segmented_datagrams": handler.value.segmented.datagrams,
                "segmentation_offload": handler.value.segmentationOffload ? 1 : 0,
            ]
        }.get()
    }

    /// Says goodbye to every peer, then closes the socket. Unfinished messages fail with `closed`.
    public func close() async {
        closing.store(true, ordering: .releasing)
        let handler = self.handler
        try? await channel.eventLoop.submit { handler.value.shutdown() }.get()
        try? await channel.close()
    }

    /// Closes the socket without a goodbye, as a crash would (for tests of peers' failure handling).
    package func closeAbruptly() async {
        closing.store(true, ordering: .releasing)
        let handler = self.handler
        try? await channel.eventLoop.submit { handler.value.closeRequested = true }.get()
        try? await channel.close()
    }

    /// Closes the socket as SwiftNIO does after a fatal send error, without telling the transport (for tests of
    /// ``rebind()``).
    package func loseSocket() async {
        try? await channel.close()
    }

    /// Turns UDP checksums off on the current socket (`SO_NO_CHECK`), which makes the kernel refuse segmented
    /// writes (`EINVAL`) as a device without checksum offload would (`EIO`): for tests of the fallback of
    /// ``TransportConfiguration/segmentationOffload``.
    package func refuseSegmentedWrites() async throws {
        let handler = self.handler
        try await channel.eventLoop.submit {
            guard let descriptor = handler.value.socketDescriptor else { return }
            var on: CInt = 1
            _ = setsockopt(descriptor, SOL_SOCKET, SO_NO_CHECK, &on, socklen_t(MemoryLayout<CInt>.size))
        }.get()
    }
}

/// ``MeshTransport/inbound`` flattened to single messages.
public struct FlattenedMessages: AsyncSequence, Sendable {
    /// Each element is one received message.
    public typealias Element = ReceivedMessage
    let base: AsyncStream<[ReceivedMessage]>

    /// Iterates the messages of each batch in order.
    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: AsyncStream<[ReceivedMessage]>.AsyncIterator
        var buffer: [ReceivedMessage] = []
        var index = 0

        /// The next message, or `nil` once the transport is closed.
        public mutating func next() async -> ReceivedMessage? {
            while index >= buffer.count {
                guard let batch = await base.next() else { return nil }
                buffer = batch
                index = 0
            }
            defer { index += 1 }
            return buffer[index]
        }
    }

    /// An iterator over the messages.
    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator()) }
}
