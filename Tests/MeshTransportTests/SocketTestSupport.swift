import Foundation
import Logging
import MeshFaultProxy
import NIOCore
import NIOPosix
import Synchronization
import Testing
@testable import MeshTransport

struct TimedOut: Error, CustomStringConvertible {
    let what: String
    var description: String { "timed out: \(what)" }
}

/// Runs `body`, failing with ``TimedOut`` after `seconds`, so a hang fails fast instead of blocking CI. The body is
/// cancelled then but not waited for: a task group would join it, and a wait that ignores cancellation (a
/// continuation) would hang the test run — once seen, after a stream failed under load.
func withTimeout<T: Sendable>(_ seconds: Double, _ what: String, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    let race = TimeoutRace<T>()
    return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
        race.continuation.withLock { $0 = continuation }
        let work = Task {
            let result = await Result { try await body() }
            race.continuation.withLock { $0.take() }?.resume(with: result)
        }
        race.work.withLock { $0 = work }
        Task {
            try? await Task.sleep(for: .seconds(seconds))
            guard let continuation = race.continuation.withLock({ $0.take() }) else { return }
            race.work.withLock { $0?.cancel() }
            continuation.resume(throwing: TimedOut(what: what))
        }
    }
}

/// Runs seconds of synchronous computation (fuzzing, seeded schedules) on a thread of its own, at the lowest
/// scheduling priority, and awaits the result. On one of the cooperative pool's threads — two on a 2-core machine —
/// it starved the socket tests running beside it: their continuations waited behind it, and twenty stop-and-wait
/// sends took half a minute under load. On threads of normal priority, four of them held the nodes' threads off the
/// CPU until 30 s give-up times passed. At nice 19 (a per-thread value on Linux) it takes what the others leave.
func onOwnThread<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread {
            #if canImport(Glibc)
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, 19)
            #endif
            continuation.resume(with: Result(catching: work))
        }
    }
}

/// ``withTimeout(_:_:_:)``'s state: the continuation, resumed by whichever of the body and the timer comes first,
/// and the body's task, to cancel.
final class TimeoutRace<T: Sendable>: Sendable {
    let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)
    let work = Mutex<Task<Void, Never>?>(nil)
}

extension Result where Failure == any Error {
    /// The result of an async throwing body.
    init(catching body: () async throws -> Success) async {
        do { self = .success(try await body()) } catch { self = .failure(error) }
    }
}

let loopback = try! SocketAddress(ipAddress: "127.0.0.1", port: 0)

/// Critical only, unless `MESH_TEST_LOG=debug` (or another level) is set when debugging a test.
let quietLogger: Logger = {
    var logger = Logger(label: "mesh.transport.test")
    logger.logLevel = ProcessInfo.processInfo.environment["MESH_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
    return logger
}()

func makeTransport(key: ClusterKey, epoch: UInt32 = 1, node: NodeID = .random(), host: String = "127.0.0.1", port: Int = 0,
                   configure: (inout TransportConfiguration) -> Void = { _ in }) async throws -> MeshTransport {
    var configuration = TransportConfiguration(bindAddress: try SocketAddress(ipAddress: host, port: port),
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
