import ArgumentParser
import Foundation
import Logging
import Mesh
import MeshBench
import MeshJournal
import MeshTransport

/// `mesh bench …`: benchmarks that print their figure next to a ceiling measured in the same run.
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure Mesh against same-run ceilings (build with -c release).",
        subcommands: [PairBench.self, JournalBench.self, CodecBench.self, TransportBench.self, NodeBench.self],
        defaultSubcommand: PairBench.self
    )
}

extension ProcessPairBenchmark.Mode: ExpressibleByArgument {}

/// `mesh bench [--messages N] [--size BYTES] [--durability normal|full] [--mode oneway|acked|request] [--json]`.
struct PairBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pair",
        abstract: "Two nodes on loopback in separate processes (the default): throughput, latency percentiles, retransmits, journal sizes.")

    @Option(help: "Messages (oneway, acked) or round trips (request).") var messages = 20_000
    @Option(help: "Encoded message size in bytes.") var size = 1024
    @Option(help: "normal or full, on both nodes.") var durability: JournalConfiguration.Durability = .normal
    @Option(help: "oneway (send → journaled at both ends → acknowledged, 'concurrency' senders), acked (the same, one message at a time: the C bus's B1) or request (sequential request/response).")
    var mode: ProcessPairBenchmark.Mode = .oneway
    @Option(help: "The receiver's handlers: async (run on their command ID's lane) or sync (run on the node's thread, committed with their message).")
    var handler: ProcessPairBenchmark.HandlerKind = .async
    @Option(help: "Where the sender's calls run: task (tasks of Swift's cooperative pool) or node (tasks preferring the node's own thread, MeshNode.taskExecutor: no thread hand-off).")
    var caller: ProcessPairBenchmark.CallerKind = .task
    @Option(help: "Concurrent sending tasks in oneway mode.") var concurrency = 64
    @Option(help: "Directory for the journals.") var dir = FileManager.default.temporaryDirectory.path
    @Flag(help: "Do not store payload_json in either journal (rows as large as the C journaled bus's).") var noJSON = false
    @Option(help: "Both nodes' idleSpinMicroseconds: how long a node's thread polls its socket after an exchange before it sleeps (0...10000; 0 sleeps at once). Default: the configuration's, 300 (0 under --durability full).")
    var idleSpin: Int?
    @Option(help: "Acked and request modes: microseconds between one call's return and the next call (0...1000000; sporadic traffic: past the idle spin both nodes' threads sleep, and the next message wakes them). Not part of the latency; part of 'seconds'.")
    var gap = 0
    @Flag(inversion: .prefixedNo, help: "Both nodes' segmentationOffload: datagrams of a flush to one peer at one size leave as one segmented write (UDP_SEGMENT). Default: on where the kernel supports it.")
    var segmentationOffload = TransportConfiguration.defaultSegmentationOffload
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard messages > 0, size >= 32, concurrency > 0 else {
            throw ValidationError("messages and concurrency must be positive, size at least 32")
        }
        if let idleSpin, !(0...10_000).contains(idleSpin) { throw ValidationError("--idle-spin must be 0...10000 (got \(idleSpin))") }
        guard (0...1_000_000).contains(gap) else { throw ValidationError("--gap must be 0...1000000 µs (got \(gap))") }
        guard gap == 0 || mode != .oneway else { throw ValidationError("--gap applies to --mode acked and request (one-way senders stream)") }
    }

    func run() async throws {
        let executable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        var logger = Logger(label: "mesh.bench")
        logger.logLevel = .error
        let r: ProcessPairBenchmark.Result
        // In effect on both nodes (left unset, each node's configuration takes the default for its durability).
        let idleSpin = self.idleSpin ?? MeshConfiguration.defaultIdleSpinMicroseconds(for: durability)
        do {
            r = try await ProcessPairBenchmark.run(executable: executable, mode: mode, handler: handler, caller: caller, messages: messages, size: size,
                                                   concurrency: concurrency, durability: durability, storesPayloadJSON: !noJSON,
                                                   idleSpinMicroseconds: self.idleSpin, gapMicroseconds: gap,
                                                   segmentationOffload: segmentationOffload, directory: dir, logger: logger)
        } catch {
            throw CLIError("benchmark failed: \(error)")
        }
        if json {
            var object: [String: Any] = [
                "mode": mode.rawValue, "messages": r.messages, "size": size, "durability": durability.rawValue, "payload_json": !noJSON,
                "seconds": r.seconds, "msgs_per_s": r.messagesPerSecond, "p50_us": r.p50Micros, "p90_us": r.p90Micros,
                "p99_us": r.p99Micros, "max_us": r.maxMicros, "retransmits": r.retransmits,
                "sender_journal_bytes": r.senderJournalBytes, "receiver_journal_bytes": r.receiverJournalBytes,
                "handler": handler.rawValue, "caller": caller.rawValue, "idle_spin_us": idleSpin, "gap_us": gap, "sender_commits": r.senderCommits, "receiver_commits": r.receiverCommits,
                "commits_per_message": Double(r.senderCommits + r.receiverCommits) / Double(r.messages),
                "sender_wal_frames": r.senderWALFrames, "receiver_wal_frames": r.receiverWALFrames,
                "sender_checkpoints_background": r.senderCheckpoints.background, "sender_checkpoints_inline": r.senderCheckpoints.inline,
                "receiver_checkpoints_background": r.receiverCheckpoints.background,
                "receiver_checkpoints_inline": r.receiverCheckpoints.inline,
                "wal_frames_per_message": Double(r.senderWALFrames + r.receiverWALFrames) / Double(r.messages),
                "receiver_journal_bytes_per_message": Double(r.receiverJournalBytes) / Double(r.messages),
                "datagrams_per_message": Double(r.senderDatagrams) / Double(r.messages),
                "sender_idle_polls": r.senderIdlePolls.run, "sender_idle_polls_caught": r.senderIdlePolls.caught,
                "receiver_idle_polls": r.receiverIdlePolls.run, "receiver_idle_polls_caught": r.receiverIdlePolls.caught,
                // On only if asked for and the kernel has it (the transport checks both).
                "segmentation_offload": segmentationOffload && TransportConfiguration.defaultSegmentationOffload,
                "sender_segmented_writes": r.senderSegmented.writes, "sender_segmented_datagrams": r.senderSegmented.datagrams,
                "receiver_segmented_writes": r.receiverSegmented.writes, "receiver_segmented_datagrams": r.receiverSegmented.datagrams,
            ]
            if let cpu = r.cpuMicrosPerMessage {
                object["sender_cpu_us_per_message"] = cpu.sender
                object["receiver_cpu_us_per_message"] = cpu.receiver
                object["cpu_us_per_message"] = cpu.sender + cpu.receiver
            }
            if let machine = r.machine {
                object["host_steal_pct"] = machine.steal
                object["machine_idle_pct"] = machine.idle
            }
            try printJSON(object)
            return
        }
        print("mesh bench: \(mode.rawValue), \(r.messages) messages of \(size) B, durability \(durability.rawValue)\(noJSON ? ", no payload_json" : ""), \(handler.rawValue) handlers, callers \(caller == .node ? "on the node's thread" : "on the pool"), idle spin \(idleSpin) µs\(gap > 0 ? ", calls \(gap) µs apart" : ""), two processes on loopback")
        print(String(format: "  throughput: %.0f msgs/s (%.2f s)", r.messagesPerSecond, r.seconds))
        print("  latency µs: p50 \(r.p50Micros)  p90 \(r.p90Micros)  p99 \(r.p99Micros)  max \(r.maxMicros)")
        if mode == .oneway {
            print("  (send → acknowledged with \(concurrency) senders streaming: the percentiles include queueing; --mode acked measures one message at a time)")
        }
        print(String(format: "  datagrams per message, both ways (counted at the sender): %.2f", Double(r.senderDatagrams) / Double(r.messages)))
        print("  retransmits: \(r.retransmits); journals: sender \(r.senderJournalBytes / 1024) KiB, receiver \(r.receiverJournalBytes / 1024) KiB")
        print(String(format: "  per message: %.2f commits (sender %d, receiver %d in all), %.1f WAL frames, receiver journal %.0f B",
                     Double(r.senderCommits + r.receiverCommits) / Double(r.messages), r.senderCommits, r.receiverCommits,
                     Double(r.senderWALFrames + r.receiverWALFrames) / Double(r.messages), Double(r.receiverJournalBytes) / Double(r.messages)))
        print("  segmented writes (UDP_SEGMENT\(segmentationOffload ? "" : ", off")): sender \(r.senderSegmented.writes) carrying \(r.senderSegmented.datagrams) datagrams; receiver (since its start) \(r.receiverSegmented.writes) carrying \(r.receiverSegmented.datagrams)")
        print("  idle polls (since start): sender \(r.senderIdlePolls.run) run, \(r.senderIdlePolls.caught) caught a datagram or work; receiver \(r.receiverIdlePolls.run), \(r.receiverIdlePolls.caught)")
        print("  checkpoints: sender \(r.senderCheckpoints.background) background, \(r.senderCheckpoints.inline) inline; receiver (since its start) \(r.receiverCheckpoints.background) background, \(r.receiverCheckpoints.inline) inline (an inline one stalls the node's thread)")
        if let cpu = r.cpuMicrosPerMessage {
            print(String(format: "  CPU per message (all threads, timed run only): %.0f µs (sender %.0f, receiver %.0f)",
                         cpu.sender + cpu.receiver, cpu.sender, cpu.receiver))
        }
        if let machine = r.machine {
            print(String(format: "  machine (all CPUs, timed run only): %.1f %% stolen by the host, %.1f %% idle", machine.steal, machine.idle))
        }
    }
}

extension JournalConfiguration.Durability: ExpressibleByArgument {}
extension ProcessPairBenchmark.HandlerKind: ExpressibleByArgument {}
extension ProcessPairBenchmark.CallerKind: ExpressibleByArgument {}

struct JournalBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal",
        abstract: "Group-commit appends of ~1 KiB messages vs raw SQLite inserts (100 rows/txn) in the same process.")

    @Option(help: "Messages per run.") var rows = 200_000
    @Option(help: "Encoded message size in bytes.") var size = 1024
    @Option(help: "normal or full.") var durability: JournalConfiguration.Durability = .normal
    @Option(help: "Concurrent appending tasks (each waits for its commit).") var concurrency = 256
    @Option(help: "Messages per append call.") var perCall = 1
    @Option(help: "Rows already in the journal before timing.") var prefill = 0
    @Option(help: "Runs (the median is reported).") var runs = 5
    @Flag(help: "Do not store payload_json (halves the bytes written per row).") var noJSON = false
    @Option(help: "Directory for the benchmark databases.") var dir = FileManager.default.temporaryDirectory.path
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard rows > 0, size >= 16, concurrency > 0, perCall > 0, runs > 0, prefill >= 0 else {
            throw ValidationError("rows, concurrency, per-call and runs must be positive, size at least 16, prefill not negative")
        }
    }

    func run() async throws {
        var options = JournalBenchmark.Options()
        options.rows = rows
        options.payloadSize = size
        options.durability = durability
        options.concurrency = concurrency
        options.messagesPerCall = perCall
        options.prefill = prefill
        options.runs = runs
        options.storesPayloadJSON = !noJSON
        options.directory = dir
        let quiet = json
        let result = try await JournalBenchmark(options: options).run(logger: Logger(label: "mesh.bench")) { line in
            if !quiet { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        }
        if json {
            let object: [String: Any] = [
                "benchmark": "journal_append", "rows": rows, "payload_bytes": size, "durability": durability.rawValue,
                "concurrency": concurrency, "messages_per_call": perCall, "payload_json": !noJSON, "prefill": prefill,
                "runs": runs, "rows_per_s": result.journalMedian.rounded(), "ceiling_rows_per_s": result.ceilingMedian.rounded(),
                "ratio": (result.ratio * 1000).rounded() / 1000, "rows_per_txn": (result.rowsPerTransaction * 10).rounded() / 10,
                "row_bytes": result.rowBytes,
                "equal_bytes_ceiling_rows_per_s": result.equalBytesCeilingMedian.rounded(),
                "journal_runs": result.journalRowsPerSecond.map { $0.rounded() },
                "ceiling_runs": result.ceilingRowsPerSecond.map { $0.rounded() },
            ]
            try printJSON(object)
        } else {
            print("""
                journal append, \(size) B messages, \(durability), \(concurrency) concurrent callers, \(perCall)/call, \
                payload_json \(noJSON ? "off" : "on"), prefill \(prefill)
                  Mesh journal (group commit): \(Int(result.journalMedian)) rows/s   (median of \(runs); \(String(format: "%.1f", result.rowsPerTransaction)) rows/txn)
                  raw SQLite, 100 rows/txn:   \(Int(result.ceilingMedian)) rows/s   (same process, alternating runs)
                  ratio:                      \(String(format: "%.2f", result.ratio))×
                """)
            if !noJSON {
                print("""
                  journal rows carry \(result.rowBytes) B (payload + payload_json); raw SQLite with rows that large: \
                \(Int(result.equalBytesCeilingMedian)) rows/s, ratio \(String(format: "%.2f", result.journalMedian / max(result.equalBytesCeilingMedian, 1)))×
                """)
            }
        }
    }
}

struct CodecBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codec", abstract: "MeshCodec encode/decode throughput on a typical ~1 KiB message.")

    @Option(help: "Messages per run.") var iterations = 200_000
    @Option(help: "Runs (the median is reported).") var runs = 5
    @Flag(help: "Print one JSON object.") var json = false

    func run() async throws {
        let result = try CodecBenchmark.run(iterations: iterations, runs: runs)
        if json {
            let object: [String: Any] = [
                "benchmark": "codec", "message_bytes": result.messageBytes,
                "encode_mb_per_s": (result.encodeMBps * 10).rounded() / 10, "decode_mb_per_s": (result.decodeMBps * 10).rounded() / 10,
                "encode_ns_per_msg": result.encodeNanosPerMessage.rounded(), "decode_ns_per_msg": result.decodeNanosPerMessage.rounded(),
                "json_decode_render_ns_per_msg": result.decodeRenderNanosPerMessage.rounded(),
                "json_from_bytes_ns_per_msg": result.renderFromBytesNanosPerMessage.rounded(),
            ]
            try printJSON(object)
        } else {
            print("""
                MeshCodec, typical message of \(result.messageBytes) bytes (median of \(runs) × \(iterations)):
                  encode: \(String(format: "%.0f", result.encodeMBps)) MB/s  (\(Int(result.encodeNanosPerMessage)) ns/message)
                  decode: \(String(format: "%.0f", result.decodeMBps)) MB/s  (\(Int(result.decodeNanosPerMessage)) ns/message)
                  payload_json of a received message: \(Int(result.renderFromBytesNanosPerMessage)) ns straight from the bytes, \
                \(Int(result.decodeRenderNanosPerMessage)) ns decoding then rendering
                """)
        }
    }
}

struct TransportBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "transport",
        abstract: "MeshTransport one-way throughput and ping-pong RTT vs raw SwiftNIO UDP, same process, two event loops.")

    @Option(help: "Messages per one-way run.") var messages = 200_000
    @Option(help: "Message size in bytes.") var size = 1024
    @Option(help: "Round trips per RTT run.") var pings = 5_000
    @Option(help: "Messages per send call in the one-way run.") var batch = 64
    @Option(help: "Runs (medians reported).") var runs = 5
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard messages > 1, size > 0, pings > 0, batch > 0, runs > 0 else { throw ValidationError("all counts must be positive") }
    }

    func run() async throws {
        let quiet = json
        let r = try await TransportBenchmark.run(messages: messages, size: size, pings: pings, runs: runs, batch: batch,
                                                 logger: Logger(label: "mesh.bench")) { line in
            if !quiet { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        }
        let mesh = BenchStatistics.median(r.oneWayMessagesPerSecond)
        let raw = BenchStatistics.median(r.rawOneWayPacketsPerSecond)
        let p50 = TransportBenchmark.percentile(r.rttMicros, 0.5)
        let p99 = TransportBenchmark.percentile(r.rttMicros, 0.99)
        let rawP50 = TransportBenchmark.percentile(r.rawRTTMicros, 0.5)
        let rawP99 = TransportBenchmark.percentile(r.rawRTTMicros, 0.99)
        if json {
            let object: [String: Any] = [
                "benchmark": "transport", "messages": messages, "size": size, "runs": runs, "batch": batch,
                "msgs_per_s": mesh.rounded(), "raw_nio_pkts_per_s": raw.rounded(), "throughput_ratio": (mesh / raw * 1000).rounded() / 1000,
                "raw_nio_loss": BenchStatistics.median(r.rawOneWayLoss),
                "p50_us": p50.rounded(), "p99_us": p99.rounded(), "raw_nio_p50_us": rawP50.rounded(), "raw_nio_p99_us": rawP99.rounded(),
                "rtt_ratio": (p50 / rawP50 * 1000).rounded() / 1000, "retransmits": r.retransmits,
            ]
            try printJSON(object)
        } else {
            print("""
                MeshTransport, \(size) B reliable messages, two event loops (median of \(runs) runs):
                  one-way: \(Int(mesh)) msg/s confirmed   raw NIO UDP: \(Int(raw)) pkt/s (no acks)   ratio \(String(format: "%.2f", mesh / raw))×
                  RTT p50/p99: \(Int(p50))/\(Int(p99)) µs   raw NIO: \(Int(rawP50))/\(Int(rawP99)) µs   ratio \(String(format: "%.2f", p50 / rawP50))×
                  retransmits (all runs): \(r.retransmits)
                """)
        }
    }
}

struct NodeBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node",
        abstract: "Two nodes in one process: journaled one-way throughput and request/response RTT (1 KiB, .normal).")

    @Option(help: "Messages per one-way run.") var messages = 50_000
    @Option(help: "Encoded message size in bytes.") var size = 1024
    @Option(help: "Requests per RTT run (sequential).") var requests = 2_000
    @Option(help: "Concurrent sending tasks.") var concurrency = 64
    @Option(help: "Runs (medians reported).") var runs = 3
    @Flag(help: "Register no handler for the one-way command (messages are journaled 'unhandled').") var noHandler = false
    @Flag(help: "Do not store payload_json in the journals.") var noJSON = false
    @Option(help: "Directory for the journals.") var dir = FileManager.default.temporaryDirectory.path
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard messages > 0, size >= 32, requests > 0, concurrency > 0, runs > 0 else {
            throw ValidationError("counts must be positive and size at least 32")
        }
    }

    func run() async throws {
        let quiet = json
        let r = try await NodeBenchmark.run(messages: messages, size: size, requests: requests, runs: runs, concurrency: concurrency,
                                            withHandler: !noHandler, storesPayloadJSON: !noJSON, directory: dir,
                                            logger: Logger(label: "mesh.bench")) { line in
            if !quiet { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        }
        let rate = BenchStatistics.median(r.oneWayMessagesPerSecond)
        let p50 = TransportBenchmark.percentile(r.rttMicros, 0.5)
        let p99 = TransportBenchmark.percentile(r.rttMicros, 0.99)
        if json {
            let object: [String: Any] = [
                "benchmark": "node", "messages": messages, "size": size, "runs": runs, "handler": !noHandler, "payload_json": !noJSON,
                "msgs_per_s": rate.rounded(), "p50_us": p50.rounded(), "p99_us": p99.rounded(), "requests": requests,
            ]
            try printJSON(object)
        } else {
            print("""
                MeshNode, \(size) B messages, .normal, \(noHandler ? "no handler" : "a no-op handler") (median of \(runs) runs):
                  one-way (journaled at both ends, acked): \(Int(rate)) msg/s
                  request/response RTT p50/p99: \(Int(p50))/\(Int(p99)) µs
                """)
        }
    }
}
