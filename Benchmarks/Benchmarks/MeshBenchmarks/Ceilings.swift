import CSQLiteCeiling
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The raw-SQLite ceiling: 1 KiB blobs inserted with a prepared statement into one table, WAL mode, as
/// `../shared/bench/sqlite_bench.c` does.
final class RawSQLite: @unchecked Sendable {
    // @unchecked: used by one benchmark iteration at a time (package-benchmark runs them sequentially).
    private var db: OpaquePointer?
    private var insert: OpaquePointer?

    struct Failure: Error { let message: String }

    init(path: String, synchronous: String) throws {
        guard sqlite3_open(path, &db) == SQLITE_OK else { throw Failure(message: "cannot open \(path)") }
        try execute("PRAGMA journal_mode = WAL; PRAGMA synchronous = \(synchronous);"
                    + "CREATE TABLE IF NOT EXISTS t(id INTEGER PRIMARY KEY, payload BLOB NOT NULL)")
        guard sqlite3_prepare_v2(db, "INSERT INTO t(payload) VALUES (?)", -1, &insert, nil) == SQLITE_OK else {
            throw Failure(message: "prepare failed")
        }
    }

    func execute(_ sql: String) throws {
        guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else { throw Failure(message: String(cString: sqlite3_errmsg(db))) }
    }

    func insert(_ payload: [UInt8], rowsPerTransaction: Int) throws {
        try execute("BEGIN")
        for _ in 0..<rowsPerTransaction {
            _ = payload.withUnsafeBytes { sqlite3_bind_blob(insert, 1, $0.baseAddress, Int32($0.count), csqlite_ceiling_transient()) }
            guard sqlite3_step(insert) == SQLITE_DONE else { throw Failure(message: String(cString: sqlite3_errmsg(db))) }
            sqlite3_reset(insert)
        }
        try execute("COMMIT")
    }

    func close() {
        sqlite3_finalize(insert)
        sqlite3_close(db)
    }
}

/// The raw SwiftNIO UDP ceiling: a datagram to an echo socket on another event loop and back, with nothing
/// else in the way (no authentication, acknowledgement or journal).
final class RawUDPPingPong: Sendable {
    let client: any Channel
    let server: any Channel
    let echoAddress: SocketAddress
    let waiting: NIOLockedValueBox<CheckedContinuation<Void, Never>?>

    private init(client: any Channel, server: any Channel, waiting: NIOLockedValueBox<CheckedContinuation<Void, Never>?>) {
        self.client = client
        self.server = server
        self.echoAddress = server.localAddress!
        self.waiting = waiting
    }

    static func start() async throws -> RawUDPPingPong {
        let group = MultiThreadedEventLoopGroup.singleton
        let any = try SocketAddress(ipAddress: "127.0.0.1", port: 0)
        let server = try await DatagramBootstrap(group: group.next())
            .channelInitializer { channel in channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Echo()) } }
            .bind(to: any).get()
        let waiting = NIOLockedValueBox<CheckedContinuation<Void, Never>?>(nil)
        let client = try await DatagramBootstrap(group: group.next())
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(Wake(waiting: waiting)) }
            }
            .bind(to: any).get()
        return RawUDPPingPong(client: client, server: server, waiting: waiting)
    }

    func roundTrip(_ bytes: [UInt8]) async throws {
        let datagram = AddressedEnvelope(remoteAddress: echoAddress, data: ByteBuffer(bytes: bytes))
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            waiting.withLockedValue { $0 = continuation }
            client.writeAndFlush(datagram, promise: nil)
        }
    }

    func close() async {
        try? await client.close()
        try? await server.close()
    }

    final class Echo: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        typealias OutboundOut = AddressedEnvelope<ByteBuffer>
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let envelope = unwrapInboundIn(data)
            context.writeAndFlush(wrapOutboundOut(AddressedEnvelope(remoteAddress: envelope.remoteAddress, data: envelope.data)), promise: nil)
        }
    }

    final class Wake: ChannelInboundHandler, Sendable {
        typealias InboundIn = AddressedEnvelope<ByteBuffer>
        let waiting: NIOLockedValueBox<CheckedContinuation<Void, Never>?>
        init(waiting: NIOLockedValueBox<CheckedContinuation<Void, Never>?>) { self.waiting = waiting }
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            waiting.withLockedValue { $0.take() }?.resume()
        }
    }
}
