import CoreMetrics
import MetricsTestKit
import NIOCore
import NIOPosix
import Testing
@testable import MeshTransport

/// UDP segmentation offload on real sockets: a batch leaves in segmented writes that the receiver gets as the
/// same datagrams, and a kernel that refuses a segmented write turns it off without losing a message.
@Suite(.enabled(if: System.supportsUDPSegmentationOffload, "the kernel has no UDP segmentation offload"))
struct SegmentationOffloadTests {
    /// Sends `batches` batches of `size`-byte messages in one call each and checks that every one is confirmed
    /// and received once, in order.
    static func stream(_ sender: MeshTransport, to receiver: MeshTransport, inbox: Inbox, from first: Int = 0,
                       batches: Int, perBatch: Int = 40, size: Int = 1000) async throws {
        var receipts: [MeshTransport.Receipt] = []
        for batch in 0..<batches {
            let messages = (0..<perBatch).map { (TransportSocketTests.payload(7, first + batch * perBatch + $0, size: size), UInt16(7)) }
            receipts += try await sender.send(batch: messages, to: receiver.localAddress)
        }
        for receipt in receipts { #expect(await receipt.outcome() == .confirmed) }
        let total = first + batches * perBatch
        await inbox.wait(for: total)
        let indexes = await inbox.messages.map { TransportSocketTests.decode($0).1 }
        #expect(indexes == Array(0..<total), "lost, duplicated or out of order")
    }

    @Test func aBatchLeavesInSegmentedWritesAndArrivesAsTheSameMessages() async throws {
        let metrics = TestMetrics()
        try await withTimeout(60, "segmented batch") {
            let key = ClusterKey.generate()
            let receiver = try await makeTransport(key: key)
            let sender = try await withMetricsFactory(metrics) { try await makeTransport(key: key) }
            let (inbox, consumer) = Inbox.collecting(receiver)
            try await Self.stream(sender, to: receiver, inbox: inbox, batches: 10)
            let statistics = try await sender.statistics()
            #expect(statistics["segmentation_offload"] == 1)
            #expect((statistics["segmented_writes"] ?? 0) >= 1)
            // Each such write carried several datagrams: the receiver still counted every one.
            #expect((statistics["segmented_datagrams"] ?? 0) > (statistics["segmented_writes"] ?? 0))
            #expect((try await receiver.statistics()["datagrams_in"] ?? 0) >= 400)
            #expect(try metrics.expectCounter("mesh_transport_segmented_writes_total").totalValue
                    == Int64(statistics["segmented_writes"] ?? -1))
            await sender.close()
            await receiver.close()
            consumer.cancel()
        }
    }

    /// Whether a UDP socket binds to `::1` here (some containers have no IPv6 loopback).
    static let hasIPv6Loopback: Bool = {
        guard let address = try? SocketAddress(ipAddress: "::1", port: 0),
              let channel = try? DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton).bind(to: address).wait() else {
            return false
        }
        try? channel.close().wait()
        return true
    }()

    /// IPv6 loopback, where the machine has it: the same segmented batch (the kernel's limits are the same).
    @Test(.enabled(if: hasIPv6Loopback, "no IPv6 loopback")) func aBatchOverIPv6LeavesInSegmentedWrites() async throws {
        try await withTimeout(60, "segmented batch over IPv6") {
            let key = ClusterKey.generate()
            let receiver = try await makeTransport(key: key, host: "::1")
            let sender = try await makeTransport(key: key, host: "::1")
            let (inbox, consumer) = Inbox.collecting(receiver)
            try await Self.stream(sender, to: receiver, inbox: inbox, batches: 5)
            let statistics = try await sender.statistics()
            #expect(statistics["segmentation_offload"] == 1 && (statistics["segmented_writes"] ?? 0) >= 1)
            await sender.close()
            await receiver.close()
            consumer.cancel()
        }
    }

    @Test func turnedOffItWritesDatagramByDatagram() async throws {
        try await withTimeout(60, "segmentation off") {
            let key = ClusterKey.generate()
            let receiver = try await makeTransport(key: key)
            let sender = try await makeTransport(key: key) { $0.segmentationOffload = false }
            let (inbox, consumer) = Inbox.collecting(receiver)
            try await Self.stream(sender, to: receiver, inbox: inbox, batches: 3)
            let statistics = try await sender.statistics()
            #expect(statistics["segmentation_offload"] == 0 && statistics["segmented_writes"] == 0)
            await sender.close()
            await receiver.close()
            consumer.cancel()
        }
    }

    /// A socket without UDP checksums (`SO_NO_CHECK`) makes the kernel refuse segmented writes, as a device without
    /// checksum offload does on older kernels. SwiftNIO closes the socket on that error; the transport binds a new
    /// one, sends datagram by datagram from then on, and retransmits what the refused write carried.
    @Test func aRefusedSegmentedWriteTurnsItOffAndLosesNothing() async throws {
        try await withTimeout(60, "refused segmented write") {
            let key = ClusterKey.generate()
            let receiver = try await makeTransport(key: key)
            let sender = try await makeTransport(key: key)
            let (inbox, consumer) = Inbox.collecting(receiver)
            // The session first, so that the next batch is all data and goes in segmented writes.
            try await Self.stream(sender, to: receiver, inbox: inbox, batches: 1, perBatch: 1)
            try await sender.refuseSegmentedWrites()
            try await Self.stream(sender, to: receiver, inbox: inbox, from: 1, batches: 5)
            let statistics = try await sender.statistics()
            #expect(statistics["segmentation_offload"] == 0, "a refused segmented write did not turn segmentation off")
            #expect((statistics["segmented_writes"] ?? 0) >= 1)
            // Later batches go datagram by datagram on the new socket.
            let writes = statistics["segmented_writes"]
            try await Self.stream(sender, to: receiver, inbox: inbox, from: 201, batches: 2)
            #expect(try await sender.statistics()["segmented_writes"] == writes)
            await sender.close()
            await receiver.close()
            consumer.cancel()
        }
    }
}
