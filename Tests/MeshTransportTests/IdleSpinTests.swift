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
        let activity = LoopActivity()
        let spin = IdleSpin(nanoseconds: Self.minute, activity: activity)
        let sender = try await rawSocket()
        defer { sender.close(promise: nil) }
        try await withTimeout(20, "the spin to see the datagram") {
            async let spun = onOwnThread { spin.run(socket: fd, until: .now() + .nanoseconds(Self.minute), since: activity.value) }
            try await sendRaw(sender, [1, 2, 3], to: address)
            let outcome = try await spun
            #expect(outcome == .readable)
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
        let queued = activity.value  // when the loop queued the spin
        try await withTimeout(20, "the spin to see the work") {
            async let spun = onOwnThread {
                defer { done.flag.store(true, ordering: .releasing) }
                return spin.run(socket: fd, until: .now() + .nanoseconds(Self.minute), since: queued)
            }
            try await Task.sleep(for: .milliseconds(5))
            let endedEarly = done.flag.load(ordering: .acquiring)
            #expect(!endedEarly, "nothing was handed over yet")
            activity.note()
            let outcome = try await spun
            #expect(outcome == .workArrived(queued + 1), "the loop runs the work, then the spin goes on")
        }
    }

    @Test func theNextTimerEndsItBeforeItsTime() async throws {
        let (fd, _) = try boundSocket()
        defer { _ = Glibc.close(fd) }
        let spin = IdleSpin(nanoseconds: Self.minute, activity: nil)
        try await withTimeout(20, "the spin to stop at the timer") {
            let end = spin.end(timer: .now() + .milliseconds(10))
            let outcome = try await onOwnThread { spin.run(socket: fd, until: end, since: nil) }
            #expect(outcome == .timeUp)
        }
    }

    /// A poll lasts its time from the last flush: a flush while one is queued moves its end later (never earlier)
    /// instead of queueing a second; once it ended, the next flush queues a fresh one.
    @Test func aFlushWhileAPollIsQueuedMovesItsEnd() {
        var deadline = IdleSpin.Deadline()
        let start = NIODeadline.uptimeNanoseconds(1_000_000)
        let first = deadline.flushed(until: start + .microseconds(300))
        #expect(first, "none queued: queue one")
        let second = deadline.flushed(until: start + .microseconds(700))
        #expect(!second, "one queued: no second")
        #expect(deadline.end == start + .microseconds(700))
        let earlier = deadline.flushed(until: start + .microseconds(400))
        #expect(!earlier)
        #expect(deadline.end == start + .microseconds(700), "an earlier end does not cut it short")
        deadline.finished()
        #expect(deadline.end == nil)
        let fresh = deadline.flushed(until: start + .microseconds(900))
        #expect(fresh, "ended: the next flush queues a fresh one")
        #expect(deadline.end == start + .microseconds(900))
    }

    /// While an acknowledgement is awaited the poll lasts ``IdleSpin/awaitingFactor`` times as long; the next timer
    /// caps both.
    @Test func awaitingAnAcknowledgementLengthensThePollUpToTheNextTimer() {
        let spin = IdleSpin(nanoseconds: 1_000_000_000, activity: nil)
        let before = NIODeadline.now()
        let plain = spin.end(timer: nil)
        let awaiting = spin.end(timer: nil, awaiting: true)
        let after = NIODeadline.now()
        #expect(plain >= before + .seconds(1) && plain <= after + .seconds(1))
        #expect(awaiting >= before + .seconds(IdleSpin.awaitingFactor) && awaiting <= after + .seconds(IdleSpin.awaitingFactor))
        let timer = NIODeadline.now() + .milliseconds(5)
        #expect(spin.end(timer: timer, awaiting: true) == timer)
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
