import Logging
import MeshCore
import MeshJournal

#if canImport(Glibc)
import Glibc
#endif

/// Measures journal appends of ~1 KiB messages through group commit, next to ``RawSQLiteCeiling`` measured
/// in the same process, alternating runs so machine drift hits both alike.
package struct JournalBenchmark: Sendable {
    /// What to measure.
    package struct Options: Sendable {
        package var rows = 200_000
        package var payloadSize = 1024
        package var durability: JournalConfiguration.Durability = .normal
        /// Concurrent appending tasks; each awaits its own commit before appending again.
        package var concurrency = 256
        /// Messages per append call (1 = one message per call, the node's per-send path).
        package var messagesPerCall = 1
        package var storesPayloadJSON = true
        /// Rows in the journal before the timed run (to show large tables do not slow appends).
        package var prefill = 0
        package var runs = 5
        package var ceilingBatch = 100
        package var directory = "/tmp"

        package init() {}
    }

    /// One comparison: medians over the runs.
    package struct Result: Sendable {
        package let options: Options
        package let journalRowsPerSecond: [Double]
        package let ceilingRowsPerSecond: [Double]
        package let rowsPerTransaction: Double
        /// Bytes of payload plus payload_json per journal row.
        package let rowBytes: Int
        /// The raw ceiling with rows as large as the journal's (payload + JSON), same run.
        package let equalBytesCeilingRowsPerSecond: [Double]
        package var equalBytesCeilingMedian: Double { BenchStatistics.median(equalBytesCeilingRowsPerSecond) }

        package var journalMedian: Double { BenchStatistics.median(journalRowsPerSecond) }
        package var ceilingMedian: Double { BenchStatistics.median(ceilingRowsPerSecond) }
        package var ratio: Double { ceilingMedian > 0 ? journalMedian / ceilingMedian : 0 }
    }

    package let options: Options
    package init(options: Options) { self.options = options }

    /// A message of about `payloadSize` encoded bytes: a sequence number and a bytes body.
    static func message(seq: Int, payloadSize: Int) -> MeshData {
        ["seq": .int64(Int64(seq)), "body": .bytes([UInt8](repeating: UInt8(truncatingIfNeeded: seq), count: max(0, payloadSize - 16)))]
    }

    package func run(logger: Logger, progress: @Sendable (String) -> Void = { _ in }) async throws -> Result {
        var journalRates: [Double] = []
        var ceilingRates: [Double] = []
        var perTransaction: [Double] = []
        var equalBytes: [Double] = []
        let message = Self.message(seq: 0, payloadSize: options.payloadSize)
        let rowBytes = try MeshCodec.encode(message).count + (options.storesPayloadJSON ? MeshJSON.string(from: message).utf8.count : 0)
        let synchronous = options.durability == .full ? "FULL" : "NORMAL"
        for run in 1...options.runs {
            let ceilingPath = "\(options.directory)/mesh-bench-ceiling-\(getpid()).sqlite"
            let ceiling = try await Task.detached {
                try RawSQLiteCeiling.run(path: ceilingPath, synchronous: synchronous, rows: options.rows, batch: options.ceilingBatch,
                                         payloadSize: options.payloadSize)
            }.value
            ceilingRates.append(ceiling)
            if options.storesPayloadJSON {
                let same = try await Task.detached {
                    try RawSQLiteCeiling.run(path: ceilingPath, synchronous: synchronous, rows: options.rows,
                                             batch: options.ceilingBatch, payloadSize: rowBytes)
                }.value
                equalBytes.append(same)
            }
            let (rate, batch) = try await runJournal(logger: logger)
            journalRates.append(rate)
            perTransaction.append(batch)
            progress("run \(run)/\(options.runs): journal \(Int(rate)) rows/s (\((batch * 10).rounded() / 10) rows/txn), raw SQLite \(Int(ceiling)) rows/s")
        }
        return Result(options: options, journalRowsPerSecond: journalRates, ceilingRowsPerSecond: ceilingRates,
                      rowsPerTransaction: BenchStatistics.median(perTransaction), rowBytes: rowBytes,
                      equalBytesCeilingRowsPerSecond: equalBytes)
    }

    private func runJournal(logger: Logger) async throws -> (Double, Double) {
        let path = "\(options.directory)/mesh-bench-journal-\(getpid()).sqlite"
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        defer { for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) } }
        let journal = try await Journal.open(
            path: path, configuration: .init(durability: options.durability, storesPayloadJSON: options.storesPayloadJSON), logger: logger)
        let template = try MeshCodec.encode(Self.message(seq: 0, payloadSize: options.payloadSize))
        let json = options.storesPayloadJSON ? MeshJSON.string(from: Self.message(seq: 0, payloadSize: options.payloadSize)) : nil
        let message = OutboundMessage(commandID: 1024, kind: .send, peer: "127.0.0.1:8001", payload: template, payloadJSON: json)
        if options.prefill > 0 {
            var left = options.prefill
            while left > 0 {
                let n = min(left, 1000)
                let seqs = try await journal.appendOutbound(Array(repeating: message, count: n))
                try await journal.markOutboundAcked(seqs)
                left -= n
            }
        }
        let before = journal.writeStatistics
        let rows = options.rows
        let perCall = options.messagesPerCall
        let workers = options.concurrency
        let seconds = try await BenchStatistics.time {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<workers {
                    group.addTask {
                        var index = worker * perCall
                        while index < rows {
                            let n = min(perCall, rows - index)
                            if n == 1 {
                                _ = try await journal.appendOutbound(message)
                            } else {
                                _ = try await journal.appendOutbound(Array(repeating: message, count: n))
                            }
                            index += workers * perCall
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
        let after = journal.writeStatistics
        await journal.close()
        let transactions = max(1, after.transactions - before.transactions)
        let jobs = after.jobs - before.jobs
        return (Double(rows) / seconds, Double(jobs * perCall) / Double(transactions))
    }
}
