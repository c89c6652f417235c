import Foundation
import NIOCore
import Synchronization
import Testing
@testable import MeshTransport
#if canImport(Glibc)
import Glibc
#endif

/// The poll a node's loop runs after sending (``IdleSpin``) must end at each of its three events — a readable
/// datagram, work handed to the loop, the next timer — and not only when its time is up: each test gives it a minute
/// and fails (by the test's timeout) unless the event ends it.
@Suite struct IdleSpinTests {
    /// A UDP socket bound to 127.0.0.1 and its address.
    func boundSocket() throws -> (CInt, SocketAddress) {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        try #require(fd >= 0)
        let any = try SocketAddress(ipAddress: "127.0.0.1", port: 0)
        try #require(any.withSockAddr { Glibc.bind(fd, $0, socklen_t($1)) } == 0)
        var storage = [UInt8](repeating: 0, count: 16)
        var length = socklen_t(16)
        try #require(storage.withUnsafeMutableBytes { getsockname(fd, $0.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length) } == 0)
        return (fd, try SocketAddress(ipAddress: "127.0.0.1", port: Int(storage[2]) << 8 | Int(storage[3])))
    }

    static let minute: Int64 = 60_000_000_000

    @Test func aDatagramEndsIt() async throws {
        let (fd, address) = try boundSocket()
        defer { _ = Glibc.close(fd) }
        let spin = IdleSpin(nanoseconds: Self.minute, activity: LoopActivity())
        let sender = try await rawSocket()
        defer { sender.close(promise: nil) }
        try await withTimeout(20, "the spin to see the datagram") {
            async let spun: Void = onOwnThread { spin.run(socket: fd, timer: nil) }
            try await sendRaw(sender, [1, 2, 3], to: address)
            try await spun
        }
        var byte: UInt8 = 0
        #expect(recv(fd, &byte, 1, 0) == 1, "the datagram is still there for the loop to read")
    }

    @Test func workHandedToTheLoopEndsIt() async throws {
        let (fd, _) = try boundSocket()
        defer { _ = Glibc.close(fd) }
        let activity = LoopActivity()
        let spin = IdleSpin(nanoseconds: Self.minute, activity: activity)
        let done = SpinEnded()
        try await withTimeout(20, "the spin to see the work") {
            async let spun: Void = onOwnThread {
                spin.run(socket: fd, timer: nil)
                done.flag.store(true, ordering: .releasing)
            }
            // Work handed over before the spin began is not its business (the loop runs it first): keep handing
            // some over until one lands while it spins.
            while !done.flag.load(ordering: .acquiring) {
                activity.note()
                try await Task.sleep(for: .milliseconds(1))
            }
            try await spun
        }
    }

    @Test func theNextTimerEndsIt() async throws {
        let (fd, _) = try boundSocket()
        defer { _ = Glibc.close(fd) }
        let spin = IdleSpin(nanoseconds: Self.minute, activity: nil)
        try await withTimeout(20, "the spin to stop at the timer") {
            try await onOwnThread { spin.run(socket: fd, timer: .now() + .milliseconds(10)) }
        }
    }

    @Test func theSettingIsChecked() throws {
        var configuration = TransportConfiguration(bindAddress: try SocketAddress(ipAddress: "127.0.0.1", port: 0),
                                                   keyring: Keyring(ClusterKey.generate()))
        configuration.idleSpinMicroseconds = 10_001
        let error = #expect(throws: TransportError.self) { try configuration.validate() }
        #expect(error?.message.contains("idleSpinMicroseconds must be 0...10000") == true)
    }
}

/// Set by the thread that ran the spin once it returned.
final class SpinEnded: Sendable {
    let flag = Atomic<Bool>(false)
}
