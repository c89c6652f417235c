import Logging
import MeshTransport
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// Transport throughput and latency next to raw SwiftNIO UDP, measured in the same process with the same
/// two event loops (one per side), alternating runs.
package enum TransportBenchmark {
    package struct Result: Sendable {
        package var oneWayMessagesPerSecond: [Double] = []
        package var rawOneWayPacketsPerSecond: [Double] = []
        package var rawOneWayLoss: [Double] = []
        package var rttMicros: [Double] = []
        package var rawRTTMicros: [Double] = []
        package var retransmits = 0
    }

    package static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }

    // MARK: Raw NIO ceilings

    /// Counts datagrams until `expected` arrived, then fulfils the promise; remembers when the last one arrived.
    final class CountingHandler: ChannelInboundHandler, @unchecked Sendable {
        // @unchecked Sendable: all state is touched only on the channel's event loop (channelRead), and read by
        // the benchmark through `receiver.submit` on that same loop; the promise is created before the channel
        // exists and completed there once.
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        var count = 0
        var lastArrival: ContinuousClock.Instant?
        let expected: Int
        let done: EventLoopPromise<Void>
        init(expected: Int, done: EventLoopPromise<Void>) {
            self.expected = expected
            self.done = done
        }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            count += 1
            lastArrival = .now
            if count == expected { done.succeed(()) }
        }
    }

    /// Echoes every datagram to its sender, flushing once per read batch.
    final class EchoHandler: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.write(data, promise: nil)
        }
        func channelReadComplete(context: ChannelHandlerContext) { context.flush() }
    }

    /// Raw one-way: 32 writes per flush (N4 in the performance anchors), receiver on the other loop.
    static func rawOneWay(count: Int, size: Int, sender: any EventLoop, receiver: any EventLoop) async throws -> (Double, Double) {
        let done = receiver.makePromise(of: Void.self)
        let counter = CountingHandler(expected: count, done: done)
        let server = try await DatagramBootstrap(group: receiver)
            .channelOption(.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(.datagramVectorReadMessageCount, value: 32)
            .channelOption(.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: 32 * 2048))
            .channelInitializer { $0.pipeline.addHandler(counter) }
            .bind(host: "127.0.0.1", port: 0).get()
        let client = try await DatagramBootstrap(group: sender)
            .channelOption(.socketOption(.so_sndbuf), value: 4 << 20)
            .bind(host: "127.0.0.1", port: 0).get()
        let target = server.localAddress!
        let payload = ByteBuffer(repeating: 0x5A, count: size)
        let clock = ContinuousClock()
        let start = clock.now
        try await sender.submit {
            var sent = 0
            while sent < count {
                let n = min(32, count - sent)
                for _ in 0..<n { client.write(AddressedEnvelope(remoteAddress: target, data: payload), promise: nil) }
                client.flush()
                sent += n
            }
        }.get()
        // Whatever arrives within a second after the last write counts; the rest was lost. The rate is taken up to
        // the last arrival, so a lost datagram does not add that second of waiting to the ceiling's time.
        let timeout = receiver.scheduleTask(in: .seconds(1)) { done.succeed(()) }
        try await done.futureResult.get()
        let (received, lastArrival) = try await receiver.submit { (counter.count, counter.lastArrival) }.get()
        timeout.cancel()
        let seconds = ((lastArrival ?? clock.now) - start).seconds
        try await client.close()
        try await server.close()
        return (Double(received) / seconds, 1 - Double(received) / Double(count))
    }

    /// Raw ping-pong RTT in microseconds, client and server on different loops.
    static func rawPingPong(count: Int, size: Int, client clientLoop: any EventLoop, server serverLoop: any EventLoop) async throws -> [Double] {
        let server = try await DatagramBootstrap(group: serverLoop)
            .channelInitializer { $0.pipeline.addHandler(EchoHandler()) }
            .bind(host: "127.0.0.1", port: 0).get()
        let replies = NIOLockedValueBox<EventLoopPromise<Void>?>(nil)
        final class ReplyHandler: ChannelInboundHandler, Sendable {
            typealias InboundIn = AddressedEnvelope<ByteBuffer>
            let box: NIOLockedValueBox<EventLoopPromise<Void>?>
            init(_ box: NIOLockedValueBox<EventLoopPromise<Void>?>) { self.box = box }
            func channelRead(context: ChannelHandlerContext, data: NIOAny) {
                box.withLockedValue { $0 }?.succeed(())
            }
        }
        let client = try await DatagramBootstrap(group: clientLoop)
            .channelInitializer { $0.pipeline.addHandler(ReplyHandler(replies)) }
            .bind(host: "127.0.0.1", port: 0).get()
        let target = server.localAddress!
        let payload = ByteBuffer(repeating: 0x5A, count: size)
        var samples: [Double] = []
        samples.reserveCapacity(count)
        let clock = ContinuousClock()
        for _ in 0..<count {
            let promise = clientLoop.makePromise(of: Void.self)
            replies.withLockedValue { $0 = promise }
            let start = clock.now
            client.writeAndFlush(AddressedEnvelope(remoteAddress: target, data: payload), promise: nil)
            let timeout = clientLoop.scheduleTask(in: .milliseconds(200)) { promise.succeed(()) }
            try await promise.futureResult.get()
            timeout.cancel()
            samples.append((clock.now - start).seconds * 1e6)
        }
        try await client.close()
        try await server.close()
        return samples
    }

    // MARK: Mesh transport

    static func transportOneWay(count: Int, size: Int, batch: Int, sender: any EventLoop, receiver: any EventLoop,
                                logger: Logger) async throws -> (Double, Int) {
        let key = ClusterKey.generate()
        let local = try SocketAddress(ipAddress: "127.0.0.1", port: 0)
        let b = try await MeshTransport.bind(configuration: .init(bindAddress: local, keyring: Keyring(key)), logger: logger, group: receiver)
        let a = try await MeshTransport.bind(configuration: .init(bindAddress: local, keyring: Keyring(key)), logger: logger, group: sender)
        let consumer = Task {
            var seen = 0
            for await batch in b.inbound {
                b.confirm(batch.map(\.token))
                seen += batch.count
                if seen >= count { break }
            }
        }
        let payload = ByteBuffer(repeating: 0x5A, count: size)
        let target = b.localAddress
        // Warm up the session so the handshake is not timed.
        _ = await (try await a.send(payload, commandID: 2, to: target)).outcome()
        let clock = ContinuousClock()
        let start = clock.now
        var receipts: [MeshTransport.Receipt] = []
        receipts.reserveCapacity(count)
        var sent = 1
        while sent < count {
            let n = min(batch, count - sent)
            receipts += try await a.send(batch: Array(repeating: (payload, UInt16(1)), count: n), to: target)
            sent += n
        }
        for receipt in receipts {
            let outcome = await receipt.outcome()
            guard outcome == .confirmed else { throw BenchmarkFailure("transport message not confirmed: \(outcome)") }
        }
        let seconds = (clock.now - start).seconds
        await consumer.value
        let retransmits = try await a.statistics()["retransmits"] ?? 0
        await a.close()
        await b.close()
        return (Double(count - 1) / seconds, retransmits)
    }

    static func transportPingPong(count: Int, size: Int, client clientLoop: any EventLoop, server serverLoop: any EventLoop,
                                  logger: Logger) async throws -> [Double] {
        let key = ClusterKey.generate()
        let local = try SocketAddress(ipAddress: "127.0.0.1", port: 0)
        // The echo runs on the server's event loop, as the raw NIO echo does.
        struct Echo: TransportInboundHandler {
            func received(_ messages: [ReceivedMessage], responder: TransportResponder) {
                responder.confirm(messages.map(\.token))
                for message in messages { responder.send(message.payload, commandID: 2, to: message.address) }
            }
        }
        let server = try await MeshTransport.bind(configuration: .init(bindAddress: local, keyring: Keyring(key)), logger: logger,
                                                  group: serverLoop, inboundHandler: Echo())
        let client = try await MeshTransport.bind(configuration: .init(bindAddress: local, keyring: Keyring(key)), logger: logger, group: clientLoop)
        let payload = ByteBuffer(repeating: 0x5A, count: size)
        var replies = client.messages.makeAsyncIterator()
        var samples: [Double] = []
        samples.reserveCapacity(count)
        let clock = ContinuousClock()
        for i in 0...count {
            let start = clock.now
            _ = try await client.send(payload, commandID: 1, to: server.localAddress)
            guard let reply = await replies.next() else { throw BenchmarkFailure("reply stream ended") }
            client.confirm(reply.token)
            if i > 0 { samples.append((clock.now - start).seconds * 1e6) }  // the first includes the handshake
        }
        await client.close()
        await server.close()
        return samples
    }

    /// Runs `runs` alternating rounds of each measurement.
    package static func run(messages: Int, size: Int, pings: Int, runs: Int, batch: Int, logger: Logger,
                            progress: @Sendable (String) -> Void) async throws -> Result {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let loops = Array(group.makeIterator())
        var result = Result()
        do {
        for run in 1...runs {
            let (raw, loss) = try await rawOneWay(count: messages, size: size, sender: loops[0], receiver: loops[1])
            let (mesh, retransmits) = try await transportOneWay(count: messages, size: size, batch: batch, sender: loops[0],
                                                                receiver: loops[1], logger: logger)
            let rawRTT = try await rawPingPong(count: pings, size: size, client: loops[0], server: loops[1]).sorted()
            let meshRTT = try await transportPingPong(count: pings, size: size, client: loops[0], server: loops[1], logger: logger).sorted()
            result.rawOneWayPacketsPerSecond.append(raw)
            result.rawOneWayLoss.append(loss)
            result.oneWayMessagesPerSecond.append(mesh)
            result.retransmits += retransmits
            result.rawRTTMicros.append(contentsOf: rawRTT)
            result.rttMicros.append(contentsOf: meshRTT)
            progress("run \(run)/\(runs): transport \(Int(mesh)) msg/s vs raw NIO \(Int(raw)) pkt/s (loss \((loss * 10000).rounded() / 100)%); "
                + "RTT p50 \(Int(percentile(meshRTT, 0.5))) µs vs raw \(Int(percentile(rawRTT, 0.5))) µs")
        }
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
        try? await group.shutdownGracefully()
        result.rttMicros.sort()
        result.rawRTTMicros.sort()
        return result
    }
}

struct BenchmarkFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

extension ByteBuffer {
    init(repeating byte: UInt8, count: Int) {
        self = ByteBufferAllocator().buffer(capacity: count)
        writeRepeatingByte(byte, count: count)
    }
}
