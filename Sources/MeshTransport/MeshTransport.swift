import Logging
import NIOCore
import NIOPosix

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
    /// Messages received, in per-(sender, command ID) order for reliable ones. Reliable messages must be
    /// passed to ``confirm(_:)`` (or ``reject(_:reason:)``); until then the sender keeps them in its window.
    public let messages: AsyncStream<ReceivedMessage>
    /// Peer events: up, restarted, down.
    public let events: AsyncStream<TransportEvent>

    private let channel: any Channel
    private let handler: NIOLoopBound<TransportHandler>

    private init(channel: any Channel, handler: NIOLoopBound<TransportHandler>, configuration: TransportConfiguration,
                 messages: AsyncStream<ReceivedMessage>, events: AsyncStream<TransportEvent>) {
        self.channel = channel
        self.handler = handler
        self.configuration = configuration
        self.localAddress = channel.localAddress!
        self.messages = messages
        self.events = events
    }

    /// Binds a UDP socket and starts the transport.
    /// - Throws: ``TransportError`` (`invalidConfiguration`, `bindFailed`).
    public static func bind(configuration: TransportConfiguration, logger: Logger,
                            group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) async throws -> MeshTransport {
        try configuration.validate()
        let (messages, deliveryContinuation) = AsyncStream.makeStream(of: ReceivedMessage.self)
        let (events, eventContinuation) = AsyncStream.makeStream(of: TransportEvent.self)
        let eventLoop = group.next()
        let slot = configuration.maxDatagramSize + 648
        let bootstrap = DatagramBootstrap(group: eventLoop)
            .channelOption(.socketOption(.so_reuseaddr), value: 1)
            .channelOption(.socketOption(.so_rcvbuf), value: SocketOptionValue(configuration.socketBufferBytes))
            .channelOption(.socketOption(.so_sndbuf), value: SocketOptionValue(configuration.socketBufferBytes))
            .channelOption(.datagramVectorReadMessageCount, value: configuration.readBatch)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: slot * configuration.readBatch))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = TransportHandler(
                        machine: TransportStateMachine(configuration: configuration),
                        sealer: DatagramSealer(keyring: configuration.keyring, encrypt: configuration.encrypt),
                        logger: logger, metrics: TransportMetrics(), deliveries: deliveryContinuation, events: eventContinuation)
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
        let channel: any Channel
        do {
            channel = try await bootstrap.bind(to: configuration.bindAddress).get()
        } catch {
            throw TransportError(.bindFailed, "cannot bind \(configuration.bindAddress): \(error)")
        }
        let handler = try await channel.eventLoop.submit {
            NIOLoopBound(try channel.pipeline.syncOperations.handler(type: TransportHandler.self), eventLoop: channel.eventLoop)
        }.get()
        logger.debug("transport bound", metadata: ["mesh.address": "\(channel.localAddress!)", "mesh.node": "\(configuration.nodeID)"])
        return MeshTransport(channel: channel, handler: handler, configuration: configuration, messages: messages, events: events)
    }

    /// A message handed to ``send(_:commandID:to:reliability:)``: await ``outcome()`` for what became of it.
    public struct Receipt: Sendable {
        let future: EventLoopFuture<MessageOutcome>

        /// The message's final outcome: confirmed by the receiver, sent (unreliable), or failed.
        public func outcome() async -> MessageOutcome {
            (try? await future.get()) ?? .failed(TransportError(.closed, "the transport was closed"))
        }
    }

    /// Queues a message for `address`. Suspends while the peer's backlog is full (backpressure); returns as
    /// soon as the message is queued.
    /// - Throws: ``TransportError`` (`closed`) if the transport is shut down.
    @discardableResult
    public func send(_ payload: ByteBuffer, commandID: UInt16, to address: SocketAddress,
                     reliability: Reliability = .reliable) async throws -> Receipt {
        let eventLoop = channel.eventLoop
        let room = eventLoop.makePromise(of: Void.self)
        let handler = self.handler
        eventLoop.execute { handler.value.waitForRoom(address, promise: room) }
        try await room.futureResult.get()
        let promise = eventLoop.makePromise(of: MessageOutcome.self)
        eventLoop.execute {
            handler.value.send(payload, commandID: commandID, to: address, reliability: reliability, promise: promise)
        }
        return Receipt(future: promise.futureResult)
    }

    /// Queues a message given as bytes.
    @discardableResult
    public func send(_ bytes: [UInt8], commandID: UInt16, to address: SocketAddress,
                     reliability: Reliability = .reliable) async throws -> Receipt {
        try await send(ByteBuffer(bytes: bytes), commandID: commandID, to: address, reliability: reliability)
    }

    /// Reports delivered reliable messages as durable, so their senders see them confirmed.
    public func confirm(_ tokens: [DeliveryToken]) {
        let handler = self.handler
        channel.eventLoop.execute { handler.value.confirm(tokens) }
    }

    /// Reports one delivered reliable message as durable.
    public func confirm(_ token: DeliveryToken) { confirm([token]) }

    /// Refuses a delivered reliable message: the sender's outcome becomes a `rejected` failure with `reason`.
    public func reject(_ token: DeliveryToken, reason: String) {
        let handler = self.handler
        channel.eventLoop.execute { handler.value.reject(token, reason: reason) }
    }

    /// Protocol counters so far (datagrams, retransmissions, duplicates, replays, ...), for tests and tools.
    public func statistics() async throws -> [String: Int] {
        let handler = self.handler
        return try await channel.eventLoop.submit {
            let c = handler.value.counters
            return [
                "datagrams_in": c.datagramsIn, "datagrams_out": c.datagramsOut, "retransmits": c.retransmits,
                "fast_retransmits": c.fastRetransmits, "timeouts": c.timeouts, "duplicates": c.duplicates,
                "replays": c.replays, "stale": c.stale, "dropped_over_limit": c.droppedOverLimit,
                "auth_failures": c.authFailures, "malformed": c.malformed,
            ]
        }.get()
    }

    /// Says goodbye to every peer, then closes the socket. Unfinished messages fail with `closed`.
    public func close() async {
        let handler = self.handler
        try? await channel.eventLoop.submit { handler.value.shutdown() }.get()
        try? await channel.close()
    }

    /// Closes the socket without a goodbye, as a crash would (for tests of peers' failure handling).
    package func closeAbruptly() async {
        try? await channel.close()
    }
}
