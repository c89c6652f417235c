import Benchmark
import Foundation
import Logging
import Mesh
import MeshCore
import MeshJournal
import MeshTransport
import NIOCore
import NIOPosix

// Mesh's hot paths, each beside the ceiling it is compared to, measured in the same run. An iteration is one
// message unless the name says otherwise, so the malloc counts read as allocations per message.

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .cpuTotal],
        warmupIterations: 10,
        maxDuration: .seconds(3),
        maxIterations: 20_000
    )
    codecBenchmarks()
    journalBenchmarks()
    transportBenchmarks()
    nodeBenchmarks()
}

/// A typical message: a few fields and ~1 KiB of bytes, 1 KiB encoded.
let message: MeshData = ["seq": 42, "room": "lobby-7", "player": "Jon", "body": .bytes([UInt8](repeating: 0x5A, count: 980))]
let encodedMessage = try! MeshCodec.encode(message)

var quietLogger: Logger {
    var logger = Logger(label: "mesh.benchmarks")
    logger.logLevel = .critical
    return logger
}

/// Somewhere for a benchmark's setup to leave what its iterations use.
final class Slot<T: Sendable>: @unchecked Sendable {
    // @unchecked: set in the setup hook and read by the iterations, which package-benchmark runs strictly
    // after the setup and on one task at a time; the lock orders the write before the reads.
    private let lock = NSLock()
    private var stored: T?
    var value: T {
        get { lock.withLock { stored! } }
        set { lock.withLock { stored = newValue } }
    }
    func clear() { lock.withLock { stored = nil } }
}

func scratchDirectory(_ name: String) -> String {
    let dir = FileManager.default.temporaryDirectory.path + "/mesh-benchmarks-\(name)-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

// MARK: - Codec

func codecBenchmarks() {
    Benchmark("Codec: encode a 1 KiB message") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try MeshCodec.encode(message)) }
    }
    Benchmark("Codec: decode a 1 KiB message") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try MeshCodec.decode(encodedMessage)) }
    }
    Benchmark("Codec: JSON rendering of a 1 KiB message (payload_json)") { benchmark in
        for _ in benchmark.scaledIterations { blackHole(MeshJSON.string(from: message)) }
    }
}

// MARK: - Journal

func journalBenchmarks() {
    for durability in [JournalConfiguration.Durability.normal, .full] {
        let journal = Slot<Journal>()
        let dir = Slot<String>()
        Benchmark("Journal: append one 1 KiB message and wait for its commit (\(durability.rawValue))",
                  configuration: .init(setup: {
                      dir.value = scratchDirectory("journal-\(durability.rawValue)")
                      journal.value = try await Journal.open(path: dir.value + "/j.sqlite", configuration: .init(durability: durability),
                                                             logger: quietLogger)
                  }, teardown: {
                      await journal.value.close()
                      try? FileManager.default.removeItem(atPath: dir.value)
                  })) { benchmark in
            let row = OutboundMessage(commandID: 1024, kind: .send, peer: "127.0.0.1:9", payload: encodedMessage)
            for _ in benchmark.scaledIterations { blackHole(try await journal.value.appendOutbound(row)) }
        }
        let ceiling = Slot<RawSQLite>()
        Benchmark("Ceiling: raw SQLite, one 1 KiB row per transaction (\(durability.rawValue))",
                  configuration: .init(setup: {
                      dir.value = scratchDirectory("raw-\(durability.rawValue)")
                      ceiling.value = try RawSQLite(path: dir.value + "/raw.sqlite", synchronous: durability == .full ? "FULL" : "NORMAL")
                  }, teardown: {
                      ceiling.value.close()
                      try? FileManager.default.removeItem(atPath: dir.value)
                  })) { benchmark in
            for _ in benchmark.scaledIterations { try ceiling.value.insert(encodedMessage, rowsPerTransaction: 1) }
        }
    }
    let journal = Slot<Journal>()
    let dir = Slot<String>()
    Benchmark("Journal: 100 concurrent appends of 1 KiB (per 100 messages, group commit)",
              configuration: .init(setup: {
                  dir.value = scratchDirectory("journal-group")
                  journal.value = try await Journal.open(path: dir.value + "/j.sqlite", logger: quietLogger)
              }, teardown: {
                  await journal.value.close()
                  try? FileManager.default.removeItem(atPath: dir.value)
              })) { benchmark in
        let row = OutboundMessage(commandID: 1024, kind: .send, peer: "127.0.0.1:9", payload: encodedMessage)
        for _ in benchmark.scaledIterations {
            try await withThrowingTaskGroup(of: UInt64.self) { group in
                for _ in 0..<100 { group.addTask { try await journal.value.appendOutbound(row) } }
                try await group.waitForAll()
            }
        }
    }
    let ceiling = Slot<RawSQLite>()
    Benchmark("Ceiling: raw SQLite, 100 rows of 1 KiB per transaction (per 100 messages)",
              configuration: .init(setup: {
                  dir.value = scratchDirectory("raw-group")
                  ceiling.value = try RawSQLite(path: dir.value + "/raw.sqlite", synchronous: "NORMAL")
              }, teardown: {
                  ceiling.value.close()
                  try? FileManager.default.removeItem(atPath: dir.value)
              })) { benchmark in
        for _ in benchmark.scaledIterations { try ceiling.value.insert(encodedMessage, rowsPerTransaction: 100) }
    }
}

// MARK: - Transport

/// Confirms every reliable message on the event loop, as soon as it arrives (a receiver with no journal).
struct ConfirmAtOnce: TransportInboundHandler {
    func received(_ messages: [ReceivedMessage], responder: TransportResponder) {
        responder.confirm(messages.filter(\.token.needsConfirmation).map(\.token))
    }
}

func transportBenchmarks() {
    let pair = Slot<(sender: MeshTransport, receiver: MeshTransport)>()
    let setup: Benchmark.BenchmarkSetupHook = {
        let key = Keyring(ClusterKey.generate())
        let any = try SocketAddress(ipAddress: "127.0.0.1", port: 0)
        let receiver = try await MeshTransport.bind(configuration: .init(bindAddress: any, keyring: key), logger: quietLogger,
                                                    inboundHandler: ConfirmAtOnce())
        let sender = try await MeshTransport.bind(configuration: .init(bindAddress: any, keyring: key), logger: quietLogger)
        pair.value = (sender, receiver)
        _ = try await sender.send(ByteBuffer(bytes: encodedMessage), commandID: 1, to: receiver.localAddress).outcome()
    }
    let teardown: Benchmark.BenchmarkTeardownHook = {
        await pair.value.sender.close()
        await pair.value.receiver.close()
    }
    Benchmark("Transport: one 1 KiB message sent and confirmed (round trip)",
              configuration: .init(setup: setup, teardown: teardown)) { benchmark in
        let payload = ByteBuffer(bytes: encodedMessage)
        for _ in benchmark.scaledIterations {
            let outcome = await (try await pair.value.sender.send(payload, commandID: 1, to: pair.value.receiver.localAddress)).outcome()
            precondition(outcome == .confirmed)
        }
    }
    Benchmark("Transport: 1000 messages of 1 KiB one way, all confirmed (per 1000)",
              configuration: .init(maxIterations: 200, setup: setup, teardown: teardown)) { benchmark in
        let payload = ByteBuffer(bytes: encodedMessage)
        for _ in benchmark.scaledIterations {
            var receipts: [MeshTransport.Receipt] = []
            receipts.reserveCapacity(1000)
            for _ in 0..<1000 { receipts.append(try await pair.value.sender.send(payload, commandID: 1, to: pair.value.receiver.localAddress)) }
            for receipt in receipts {
                let outcome = await receipt.outcome()
                precondition(outcome == .confirmed)
            }
        }
    }
    let raw = Slot<RawUDPPingPong>()
    Benchmark("Ceiling: raw SwiftNIO UDP, one 1 KiB datagram echoed (round trip)",
              configuration: .init(setup: { raw.value = try await RawUDPPingPong.start() }, teardown: { await raw.value.close() })) { benchmark in
        for _ in benchmark.scaledIterations { try await raw.value.roundTrip(encodedMessage) }
    }
}

// MARK: - Node

func nodeBenchmarks() {
    let nodes = Slot<(a: MeshNode, b: MeshNode, dir: String)>()
    let setup: Benchmark.BenchmarkSetupHook = {
        let dir = scratchDirectory("nodes")
        let key = ClusterKey.generate()
        let a = try await MeshNode.start(configuration: .init(address: "127.0.0.1:0", journalPath: dir + "/a.sqlite", clusterKey: key),
                                         logger: quietLogger)
        let b = try await MeshNode.start(configuration: .init(address: "127.0.0.1:0", journalPath: dir + "/b.sqlite", clusterKey: key),
                                         logger: quietLogger)
        try b.handleCommand(1024) { _ in nil }
        try b.handleCommand(2000) { data in data }
        nodes.value = (a, b, dir)
        _ = try await a.sendRequest(2000, to: b.address, message)
    }
    let teardown: Benchmark.BenchmarkTeardownHook = {
        await nodes.value.a.shutdown()
        await nodes.value.b.shutdown()
        try? FileManager.default.removeItem(atPath: nodes.value.dir)
    }
    Benchmark("Node: send 1 KiB, journaled at both ends, confirmed",
              configuration: .init(setup: setup, teardown: teardown)) { benchmark in
        for _ in benchmark.scaledIterations {
            let outcome = await (try await nodes.value.a.send(1024, to: nodes.value.b.address, message)).outcome()
            precondition(outcome == .confirmed)
        }
    }
    Benchmark("Node: request/response of 1 KiB (4 journal commits)",
              configuration: .init(setup: setup, teardown: teardown)) { benchmark in
        for _ in benchmark.scaledIterations { blackHole(try await nodes.value.a.sendRequest(2000, to: nodes.value.b.address, message)) }
    }
    Benchmark("Node: 1000 sends of 1 KiB from 64 tasks, all confirmed (per 1000)",
              configuration: .init(maxIterations: 100, setup: setup, teardown: teardown)) { benchmark in
        for _ in benchmark.scaledIterations {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<64 {
                    group.addTask {
                        var deliveries: [MeshNode.Delivery] = []
                        for _ in stride(from: worker, to: 1000, by: 64) {
                            deliveries.append(try await nodes.value.a.send(1024, to: nodes.value.b.address, message))
                        }
                        for delivery in deliveries {
                            let outcome = await delivery.outcome()
                            precondition(outcome == .confirmed)
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }
    Benchmark("Replay: 1000 recorded messages through the current handler (per 1000)",
              configuration: .init(maxIterations: 50, setup: {
                  try await setup()
                  for _ in 0..<1000 { _ = try await nodes.value.a.send(1024, to: nodes.value.b.address, message) }
                  _ = try await nodes.value.a.sendRequest(2000, to: nodes.value.b.address, message)  // after the 1000 in B's lane order
              }, teardown: teardown)) { benchmark in
        for _ in benchmark.scaledIterations {
            let report = try await nodes.value.b.replay(commandID: 1024, limit: 1000)
            precondition(report.entries.count == 1000)
        }
    }
    let recoveryCount = Int(ProcessInfo.processInfo.environment["MESH_BENCH_RECOVERY"] ?? "") ?? 10_000
    let recovery = Slot<(dir: String, key: ClusterKey)>()
    // What it measures: MeshNode.start until it returns (the resend then runs in the background, towards a peer
    // that does not answer). The time to the first resend and to the last is Tools/recovery-bench.sh's.
    Benchmark("Recovery: start on a journal with \(recoveryCount) pending messages (until start returns)",
              configuration: .init(metrics: [.wallClock, .mallocCountTotal], maxIterations: 10, setup: {
                  let dir = scratchDirectory("recovery")
                  let journal = try await Journal.open(path: dir + "/r.sqlite", logger: quietLogger)
                  let row = OutboundMessage(commandID: 1024, kind: .send, peer: "127.0.0.1:9", payload: encodedMessage)
                  for _ in 0..<(recoveryCount / 1000) { _ = try await journal.appendOutbound(Array(repeating: row, count: 1000)) }
                  await journal.close()
                  recovery.value = (dir, ClusterKey.generate())
              }, teardown: { try? FileManager.default.removeItem(atPath: recovery.value.dir) })) { benchmark in
        for _ in benchmark.scaledIterations {
            var configuration = MeshConfiguration(address: "127.0.0.1:0", journalPath: recovery.value.dir + "/r.sqlite",
                                                  clusterKey: recovery.value.key)
            configuration.retryTimeout = .seconds(600)
            configuration.peerTimeout = .seconds(600)
            let node = try await MeshNode.start(configuration: configuration, logger: quietLogger)
            benchmark.stopMeasurement()
            await node.shutdown()
        }
    }
}
