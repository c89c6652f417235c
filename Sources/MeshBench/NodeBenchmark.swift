import Foundation
import Logging
import Mesh
import MeshCore
import MeshTransport

/// Two nodes in one process (each with its own journal and event loop): one-way journaled throughput
/// (send → journaled at the sender → journaled at the receiver → acknowledged) and request/response RTT.
package enum NodeBenchmark {
    package struct Result: Sendable {
        package var oneWayMessagesPerSecond: [Double] = []
        /// Rate at which `send` returned (journaled at the sender and queued), before any outcome is awaited.
        package var sendRatePerSecond: [Double] = []
        package var rttMicros: [Double] = []
    }

    package static func run(messages: Int, size: Int, requests: Int, runs: Int, concurrency: Int, withHandler: Bool,
                            storesPayloadJSON: Bool = true, directory: String, logger: Logger,
                            progress: @Sendable (String) -> Void) async throws -> Result {
        var result = Result()
        for run in 1...runs {
            let dir = directory + "/mesh-bench-node-\(getpid())-\(run)"
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: dir) }
            let key = ClusterKey.generate()
            var ca = MeshConfiguration(address: "127.0.0.1:0", journalPath: dir + "/a.sqlite", clusterKey: key)
            var cb = MeshConfiguration(address: "127.0.0.1:0", journalPath: dir + "/b.sqlite", clusterKey: key)
            ca.storesPayloadJSON = storesPayloadJSON
            cb.storesPayloadJSON = storesPayloadJSON
            let a = try await MeshNode.start(configuration: ca, logger: logger)
            let b = try await MeshNode.start(configuration: cb, logger: logger)
            if withHandler { try b.handleCommand(1024) { _ in nil } }
            try b.handleCommand(2000) { data in data }
            let data: MeshData = ["seq": 0, "body": .bytes([UInt8](repeating: 0x5A, count: max(0, size - 24)))]
            // Warm-up: handshake and first journal pages.
            _ = await (try await a.send(1024, to: b.address, data)).outcome()

            let clock = ContinuousClock()
            let start = clock.now
            let sendsDone = SendCounter(total: concurrency)
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<concurrency {
                    group.addTask {
                        var deliveries: [Mesh.MeshNode.Delivery] = []
                        var i = worker
                        while i < messages {
                            deliveries.append(try await a.send(1024, to: b.address, data))
                            i += concurrency
                        }
                        await sendsDone.finished(at: clock.now)
                        for d in deliveries {
                            let outcome = await d.outcome()
                            guard outcome == .confirmed else { throw BenchmarkFailure("node message not confirmed: \(outcome)") }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let seconds = (clock.now - start).seconds
            result.oneWayMessagesPerSecond.append(Double(messages) / seconds)
            let sendSeconds = (await sendsDone.last - start).seconds
            result.sendRatePerSecond.append(Double(messages) / sendSeconds)

            var samples: [Double] = []
            for _ in 0..<requests {
                let t = clock.now
                _ = try await a.sendRequest(2000, to: b.address, ["ping": 1])
                samples.append((clock.now - t).seconds * 1e6)
            }
            result.rttMicros += samples
            samples.sort()
            progress("run \(run)/\(runs): one-way \(Int(Double(messages) / seconds)) msg/s (sends returned at \(Int(Double(messages) / sendSeconds)) msg/s); request RTT p50 "
                + "\(Int(TransportBenchmark.percentile(samples, 0.5))) µs p99 \(Int(TransportBenchmark.percentile(samples, 0.99))) µs")
            await a.shutdown()
            await b.shutdown()
        }
        result.rttMicros.sort()
        return result
    }
}

/// When the last sending task returned from its last `send`.
actor SendCounter {
    private var remaining: Int
    private(set) var last: ContinuousClock.Instant = .now
    init(total: Int) { remaining = total }
    func finished(at instant: ContinuousClock.Instant) {
        remaining -= 1
        last = instant
    }
}
