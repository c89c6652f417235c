import Foundation
import Logging
import MeshFaultProxy
import NIOCore
import NIOPosix
import Testing
@testable import MeshTransport

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out: \(what)" }
}

/// Runs `body`, failing with ``TimedOut`` after `seconds`, so a hang fails fast instead of blocking CI.
func withTimeout<T: Sendable>(_ seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: .seconds(seconds))
            throw TimedOut(what: what)
        }
        defer { group.cancelAll() }
        return try await group.next()!
    }
}

let loopback = try! SocketAddress(ipAddress: "127.0.0.1", port: 0)

/// Critical only, unless `MESH_TEST_LOG=debug` (or another level) is set when debugging a test.
let quietLogger: Logger = {
    var logger = Logger(label: "mesh.transport.test")
    logger.logLevel = ProcessInfo.processInfo.environment["MESH_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
    return logger
}()

func makeTransport(key: ClusterKey, epoch: UInt32 = 1, node: NodeID = .random(), port: Int = 0,
                   configure: (inout TransportConfiguration) -> Void = { _ in }) async throws -> MeshTransport {
    var configuration = TransportConfiguration(bindAddress: try SocketAddress(ipAddress: "127.0.0.1", port: port),
                                               nodeID: node, epoch: epoch, keyring: Keyring(key))
    // Tests check outcomes, not speed: generous give-up times keep them correct on a loaded 2-core machine.
    // Tests about timeouts set short values themselves.
    configuration.retryTimeout = .seconds(30)
    configuration.peerTimeout = .seconds(30)
    configure(&configuration)
    return try await MeshTransport.bind(configuration: configuration, logger: quietLogger)
}

/// Collects a transport's received messages, confirming reliable ones as it goes.
actor Inbox {
    private(set) var messages: [ReceivedMessage] = []
    private var waiters: [(Int, CheckedContinuation<Void, Never>)] = []

    func add(_ message: ReceivedMessage) {
        messages.append(message)
        waiters.removeAll { count, continuation in
            guard messages.count >= count else { return false }
            continuation.resume()
            return true
        }
    }

    func wait(for count: Int) async {
        if messages.count >= count { return }
        await withCheckedContinuation { waiters.append((count, $0)) }
    }

    var count: Int { messages.count }

    static func collecting(_ transport: MeshTransport, confirm: Bool = true) -> (Inbox, Task<Void, Never>) {
        let inbox = Inbox()
        let task = Task {
            for await message in transport.messages {
                if confirm && message.token.needsConfirmation { transport.confirm(message.token) }
                await inbox.add(message)
            }
        }
        return (inbox, task)
    }
}

/// A raw UDP socket for sending arbitrary bytes (attacks, replays).
func rawSocket() async throws -> any Channel {
    try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(to: loopback).get()
}

func sendRaw(_ channel: any Channel, _ bytes: [UInt8], to address: SocketAddress) async throws {
    try await channel.writeAndFlush(AddressedEnvelope(remoteAddress: address, data: ByteBuffer(bytes: bytes)))
}
