import Foundation
import Histogram
import Logging
import Mesh
import MeshCore
import MeshJournal
import MeshTransport

#if canImport(Glibc)
import Glibc
#endif

/// `mesh bench`: this process's node sends to a `mesh node` child process on loopback (separate processes, as
/// in production), both journaling every message. One-way: each latency sample is send → journaled here →
/// sent → journaled by the receiver → confirmed, with many messages in flight (so the percentiles include
/// queueing). Acked: the same path one message at a time (stop-and-wait, the C journaled bus's B1). Request:
/// sequential request/response round trips. Acked and request calls may come a gap apart (sporadic traffic: each
/// node's thread has stopped polling and sleeps when the next one comes; the gap is not in the latency).
package enum ProcessPairBenchmark {
    package enum Mode: String, Sendable, CaseIterable {
        case oneway, acked, request
    }

    /// The receiver's handlers: synchronous (`mesh node --sink/--echo`: run on the node's thread, committed with
    /// their message) or async (`--sink-async/--echo-async`: run on their command ID's lane).
    package enum HandlerKind: String, Sendable, CaseIterable {
        case sync, async
    }

    /// Where the sending node's callers run (the one of acked and request, the one-way senders): in tasks of Swift's
    /// cooperative pool (`task`, what most callers are), or on the node's own thread (`node`: tasks preferring
    /// ``MeshNode/taskExecutor``), where their calls cross no thread.
    package enum CallerKind: String, Sendable, CaseIterable {
        case task, node
    }

    package struct Result: Sendable {
        package var messages: Int
        package var seconds: Double
        package var messagesPerSecond: Double
        package var p50Micros: UInt64
        package var p90Micros: UInt64
        package var p99Micros: UInt64
        package var maxMicros: UInt64
        package var retransmits: Int
        /// The idle polls of each node since its start (run, caught a datagram or work): `idle_polls…` of
        /// ``MeshNode/transportStatistics()``.
        package var senderIdlePolls: (run: Int, caught: Int)
        package var receiverIdlePolls: (run: Int, caught: Int)
        /// The segmented writes of each node (``MeshConfiguration/segmentationOffload``) and the datagrams they
        /// carried: the sender's during the timed run, the receiver's since its start.
        package var senderSegmented: (writes: Int, datagrams: Int)
        package var receiverSegmented: (writes: Int, datagrams: Int)
        /// Datagrams the sender sent and received during the timed run (both directions of the pair's traffic).
        package var senderDatagrams: Int
        package var senderJournalBytes: Int64
        package var receiverJournalBytes: Int64
        /// Write transactions committed by the sender during the timed run.
        package var senderCommits: Int
        /// Write transactions committed by the receiver since it started (warm-up included).
        package var receiverCommits: Int
        /// WAL frames written by the sender during the timed run.
        package var senderWALFrames: Int
        /// WAL frames written by the receiver since it started.
        package var receiverWALFrames: Int
        /// Checkpoints the sender ran during the timed run, and the receiver since it started: in the background,
        /// and inline on the writer because the WAL reached its bound (each an inline stall of the node's thread).
        package var senderCheckpoints: (background: Int, inline: Int)
        package var receiverCheckpoints: (background: Int, inline: Int)
        /// CPU seconds (all threads) the sender process used during the timed run (`nil`: no `/proc`).
        package var senderCPUSeconds: Double?
        /// CPU seconds (all threads) the receiver process used during the timed run.
        package var receiverCPUSeconds: Double?

        /// The shares of the whole machine's CPU time (all CPUs) during the timed run, in percent: what the hypervisor
        /// gave to something else, and what was idle (``MachineCPUTime``; `nil`: no `/proc/stat`).
        package var machine: (steal: Double, idle: Double)?

        /// CPU µs per message of the sender and of the receiver during the timed run (`nil`: no `/proc`).
        package var cpuMicrosPerMessage: (sender: Double, receiver: Double)? {
            guard let sender = senderCPUSeconds, let receiver = receiverCPUSeconds else { return nil }
            return (sender * 1e6 / Double(messages), receiver * 1e6 / Double(messages))
        }
    }

    package static func run(executable: String, mode: Mode, handler: HandlerKind = .async, caller: CallerKind = .task, messages: Int, size: Int, concurrency: Int,
                            durability: JournalConfiguration.Durability, storesPayloadJSON: Bool = true,
                            idleSpinMicroseconds: Int? = nil, gapMicroseconds: Int = 0,
                            segmentationOffload: Bool = TransportConfiguration.defaultSegmentationOffload,
                            directory: String, logger: Logger) async throws -> Result {
        let dir = directory + "/mesh-bench-pair-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = ClusterKey.generate()
        try key.hex.write(toFile: dir + "/cluster.key", atomically: true, encoding: .utf8)
        // The receiver's settings go through a configuration file, as an operator's would.
        let receiverConfig = """
            {"address": "127.0.0.1", "port": 0, "journal": "b.sqlite", "clusterKeyFile": "cluster.key", "durability": "\(durability.rawValue)",
             "storesPayloadJSON": \(storesPayloadJSON), "retryTimeout": 60000, "peerTimeout": 60000,
             \(idleSpinMicroseconds.map { "\"idleSpinMicroseconds\": \($0), " } ?? "")"segmentationOffload": \(segmentationOffload)}
            """
        try receiverConfig.write(toFile: dir + "/b.json", atomically: true, encoding: .utf8)
        let child = try ChildNodeProcess(executable: executable, arguments: [
            "node", "--config", dir + "/b.json",
        ] + (handler == .sync ? ["--sink", "1024", "--echo", "2000"] : ["--sink-async", "1024", "--echo-async", "2000"]))
        defer { child.terminate() }
        var configuration = MeshConfiguration(address: "127.0.0.1:0", journalPath: dir + "/a.sqlite", clusterKey: key)
        configuration.durability = durability
        configuration.storesPayloadJSON = storesPayloadJSON
        if let idleSpinMicroseconds { configuration.idleSpinMicroseconds = idleSpinMicroseconds }
        configuration.segmentationOffload = segmentationOffload
        configuration.retryTimeout = .seconds(60)
        configuration.peerTimeout = .seconds(60)
        let node = try await MeshNode.start(configuration: configuration, logger: logger)
        let data: MeshData = ["seq": 0, "body": .bytes([UInt8](repeating: 0x5A, count: max(0, size - 24)))]
        // Warm-up: handshake and first journal pages.
        guard await (try await node.send(1024, to: child.address, data)).outcome() == .confirmed else {
            throw BenchmarkFailure("the receiver did not confirm the warm-up message")
        }
        _ = try await node.sendRequest(2000, to: child.address, data)

        let target = child.address
        let (commitsBefore, framesBefore) = (node.journal.writeStatistics.transactions, node.journal.walFramesWritten)
        let checkpointsBefore = node.journal.checkpointStatistics
        func datagrams(_ statistics: [String: Int]) -> Int { (statistics["datagrams_in"] ?? 0) + (statistics["datagrams_out"] ?? 0) }
        let statisticsBefore = (try? await node.transportStatistics()) ?? [:]
        let datagramsBefore = datagrams(statisticsBefore)
        var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
        let clock = ContinuousClock()
        let receiverPID = child.process.processIdentifier
        let (senderCPUBefore, receiverCPUBefore) = (ProcessCPUTime.seconds(), ProcessCPUTime.seconds(of: receiverPID))
        let machineBefore = MachineCPUTime.now()
        let start = clock.now
        // The timed calls' latencies in µs, measured where `caller` says: on the pool, as any task; or on the node's
        // thread, whose preference the one-way senders (child tasks) inherit.
        @Sendable func measure() async throws -> [UInt64] {
            switch mode {
            case .oneway:
                return try await withThrowingTaskGroup(of: [UInt64].self) { group in
                    for worker in 0..<concurrency {
                        group.addTask {
                            var pending: [(ContinuousClock.Instant, MeshNode.Delivery)] = []
                            for _ in stride(from: worker, to: messages, by: concurrency) {
                                let sent = clock.now
                                pending.append((sent, try await node.send(1024, to: target, data)))
                            }
                            var micros: [UInt64] = []
                            micros.reserveCapacity(pending.count)
                            for (sent, delivery) in pending {
                                guard await delivery.outcome() == .confirmed else { throw BenchmarkFailure("a message was not confirmed") }
                                micros.append(UInt64((clock.now - sent).microseconds))
                            }
                            return micros
                        }
                    }
                    return try await group.reduce(into: [UInt64]()) { $0 += $1 }
                }
            case .acked, .request:
                var micros: [UInt64] = []
                micros.reserveCapacity(messages)
                for _ in 0..<messages {
                    if gapMicroseconds > 0 { try await Task.sleep(for: .microseconds(gapMicroseconds)) }
                    let sent = clock.now
                    if mode == .acked {
                        guard await (try await node.sendConfirmed(1024, to: target, data)).outcome() == .confirmed else {
                            throw BenchmarkFailure("a message was not confirmed")
                        }
                    } else {
                        _ = try await node.sendRequest(2000, to: target, data, timeout: .seconds(30))
                    }
                    micros.append(UInt64((clock.now - sent).microseconds))
                }
                return micros
            }
        }
        let samples = caller == .node ? try await withTaskExecutorPreference(node.taskExecutor) { try await measure() }
                                      : try await measure()
        for value in samples { _ = histogram.record(max(1, value)) }
        let seconds = (clock.now - start).seconds
        let (senderCPUAfter, receiverCPUAfter) = (ProcessCPUTime.seconds(), ProcessCPUTime.seconds(of: receiverPID))
        let machine = machineBefore.flatMap { before in MachineCPUTime.now()?.percentages(since: before) }
        let transport = (try? await node.transportStatistics()) ?? [:]
        let retransmits = transport["retransmits"] ?? 0
        let senderDatagrams = datagrams(transport) - datagramsBefore
        let (senderCommits, senderFrames) = (node.journal.writeStatistics.transactions - commitsBefore,
                                             node.journal.walFramesWritten - framesBefore)
        let checkpointsAfter = node.journal.checkpointStatistics
        await node.shutdown()
        let (_, summary) = await child.terminateReadingOutput()
        // `stopped: journal commits N jobs J wal_frames F checkpoints_background B checkpoints_inline I idle_polls P …
        // segmented_writes W segmented_datagrams D`
        func field(_ name: String) -> Int {
            let words = summary.split(whereSeparator: \.isWhitespace)
            guard let index = words.firstIndex(where: { $0 == name }), index + 1 < words.count else { return 0 }
            return Int(words[index + 1]) ?? 0
        }
        func fileBytes(_ path: String) -> Int64 {
            ["", "-wal"].reduce(0) { total, suffix in
                total + ((try? FileManager.default.attributesOfItem(atPath: path + suffix)[.size] as? Int64) ?? 0)
            }
        }
        return Result(messages: messages, seconds: seconds, messagesPerSecond: Double(messages) / seconds,
                      p50Micros: histogram.valueAtPercentile(50), p90Micros: histogram.valueAtPercentile(90),
                      p99Micros: histogram.valueAtPercentile(99), maxMicros: histogram.max, retransmits: retransmits,
                      senderIdlePolls: (transport["idle_polls"] ?? 0, transport["idle_polls_caught"] ?? 0),
                      receiverIdlePolls: (field("idle_polls"), field("idle_polls_caught")),
                      senderSegmented: ((transport["segmented_writes"] ?? 0) - (statisticsBefore["segmented_writes"] ?? 0),
                                        (transport["segmented_datagrams"] ?? 0) - (statisticsBefore["segmented_datagrams"] ?? 0)),
                      receiverSegmented: (field("segmented_writes"), field("segmented_datagrams")),
                      senderDatagrams: senderDatagrams,
                      senderJournalBytes: fileBytes(dir + "/a.sqlite"), receiverJournalBytes: fileBytes(dir + "/b.sqlite"),
                      senderCommits: senderCommits, receiverCommits: field("commits"), senderWALFrames: senderFrames,
                      receiverWALFrames: field("wal_frames"),
                      senderCheckpoints: (checkpointsAfter.background - checkpointsBefore.background,
                                          checkpointsAfter.inline - checkpointsBefore.inline),
                      receiverCheckpoints: (field("checkpoints_background"), field("checkpoints_inline")),
                      senderCPUSeconds: senderCPUAfter.flatMap { after in senderCPUBefore.map { after - $0 } },
                      receiverCPUSeconds: receiverCPUAfter.flatMap { after in receiverCPUBefore.map { after - $0 } },
                      machine: machine)
    }
}

extension Duration {
    var microseconds: Int64 { components.seconds * 1_000_000 + components.attoseconds / 1_000_000_000_000 }
}
