import NIOCore
import NIOHTTP1
import NIOPosix
import Prometheus
import Synchronization

/// Serves the Prometheus text format on `GET /metrics` over HTTP/1.1 (`mesh node --metrics-port`).
///
/// Bounded, because it listens on a port anyone on the network may reach: at most `maxConnections` at once
/// (further ones are closed as soon as they are accepted), each closed `timeout` after it opened whatever it
/// did (an idle or slow client cannot hold a slot longer), after its response, and after a malformed request
/// (answered 400). The node's UDP traffic never depends on it.
enum MetricsServer {
    /// Connections served at once by default.
    static let defaultMaxConnections = 64
    /// How long a connection may stay open by default.
    static let defaultTimeout = TimeAmount.seconds(10)

    /// Binds `host:port` (port 0 picks one) and returns the channel; its `localAddress` has the real port.
    static func start(host: String, port: Int, registry: PrometheusCollectorRegistry, maxConnections: Int = defaultMaxConnections,
                      timeout: TimeAmount = defaultTimeout) async throws -> any Channel {
        let limiter = ConnectionLimiter(maxConnections: maxConnections)
        return try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.backlog, value: 64)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(limiter) }
            }
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(MetricsHandler(registry: registry, timeout: timeout))
                }
            }
            .bind(host: host, port: port)
            .get()
    }
}

/// On the server channel: closes accepted connections beyond the limit at once, so held connections cannot
/// exhaust the process's file descriptors. Shared by the server channel's pipeline only; the count is atomic
/// because connections close on other event loops.
final class ConnectionLimiter: ChannelInboundHandler, Sendable {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel

    let maxConnections: Int
    private let open = Atomic<Int>(0)

    init(maxConnections: Int) { self.maxConnections = maxConnections }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let child = unwrapInboundIn(data)
        guard open.add(1, ordering: .relaxed).newValue <= maxConnections else {
            open.subtract(1, ordering: .relaxed)
            child.close(promise: nil)
            return
        }
        child.closeFuture.whenComplete { [self] _ in open.subtract(1, ordering: .relaxed) }
        context.fireChannelRead(data)
    }
}

/// Answers `/metrics` with the registry's current text, anything else with 404, then closes; closes a
/// connection that is still open `timeout` after it was accepted, and one whose request did not parse (after
/// the pipeline's 400). One instance per connection, on its event loop.
final class MetricsHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let registry: PrometheusCollectorRegistry
    let timeout: TimeAmount
    private var deadline: Scheduled<Void>?

    init(registry: PrometheusCollectorRegistry, timeout: TimeAmount) {
        self.registry = registry
        self.timeout = timeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        deadline = context.eventLoop.scheduleTask(in: timeout) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        deadline?.cancel()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A malformed request: the pipeline's error handler answered 400; nothing more will be read.
        context.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .head(let request) = unwrapInboundIn(data) else { return }
        let found = request.method == .GET && (request.uri == "/metrics" || request.uri.hasPrefix("/metrics?"))
        let body = found ? registry.emitToBuffer() : Array("not found: try /metrics\n".utf8)
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: found ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain")
        headers.add(name: "Content-Length", value: "\(body.count)")
        headers.add(name: "Connection", value: "close")
        let head = HTTPResponseHead(version: request.version, status: found ? .ok : .notFound, headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: body)))), promise: nil)
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }
}

@available(*, unavailable)
extension MetricsHandler: Sendable {}
