import ArgumentParser
import Foundation
import Logging
import Mesh
import MeshCore
import MeshFailpoints
import MeshJournal
import MeshTransport
import Metrics
import NIOCore
import Prometheus

#if canImport(Glibc)
import Glibc
#endif

/// `mesh node`: a reference node that runs until SIGINT/SIGTERM, resuming whatever its journal holds.
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Run a reference node until SIGINT/SIGTERM (graceful); it resumes its journal at start.")

    @Option(help: "Address to listen on, HOST:PORT (port 0: any free port).") var bind: String?
    @Option(help: "Journal file (created if missing).") var journal: String?
    @Option(help: "A JSON configuration file (Diarkis mesh.json keys plus Mesh's; see the README). Flags override it; with --journal and --key-file (or --insecure) it may leave out journal and clusterKeyFile.")
    var config: String?
    @Option(help: "File holding the cluster key (64 hex digits; `mesh keygen` makes one).") var keyFile: String?
    @Flag(help: "Run without a cluster key (a fixed, public key: no authentication). For local experiments only.") var insecure = false
    @Option(help: "Node type (default UDP).") var type: String?
    @Option(help: "Node role (default UDP).") var role: String?
    @Option(help: "Journal durability: normal or full (default normal).") var durability: JournalConfiguration.Durability?
    @Option(name: .customLong("seed"), help: "Address of a node to join through, HOST:PORT; HOST may be a DNS name, resolved at every membership round (repeatable).") var seeds: [String] = []
    @Option(help: "Public address this node's clients use, HOST:PORT (Diarkis SetEndPoint; gossiped with its record).")
    var endpoint: String?
    @Option(help: "A node value, KEY=JSON (Diarkis SetNodeValue; repeatable), e.g. --value 'ccu=0'.")
    var value: [String] = []
    @Option(help: "Command ID answered with the request's own data (a synchronous handler: run on the node's thread, committed with its message).")
    var echo: [UInt16] = []
    @Option(help: "Command ID accepted and ignored (a synchronous handler).") var sink: [UInt16] = []
    @Option(help: "Command ID answered with the request's own data by an async handler (run on its command ID's lane).")
    var echoAsync: [UInt16] = []
    @Option(help: "Command ID accepted and ignored by an async handler.") var sinkAsync: [UInt16] = []
    @Option(help: "Command ID whose handler always throws (requests get an error response; messages are dead-lettered).")
    var fail: [UInt16] = []
    @Option(help: "Serve Prometheus metrics on http://METRICS_HOST:PORT/metrics (0 picks a port).") var metricsPort: Int?
    @Option(help: "Address the metrics endpoint binds.") var metricsHost = "127.0.0.1"
    @Option(help: "Most connections the metrics endpoint serves at once; more are closed at once (default 64).")
    var metricsMaxConnections = MetricsServer.defaultMaxConnections
    @Option(help: "Seconds a metrics connection may stay open, idle or slow (default 10).") var metricsTimeout: Double = 10
    @Option(help: "Traffic generator: also send to this address, HOST:PORT (with --send-command and --send-count; repeatable in mixed mode).")
    var sendTo: [String] = []
    @Option(help: "Traffic generator: plain ({\"i\": n} sends to one address) or mixed (the soak's send, usend, sendMany and requests of 1 B to 1 MiB over every --send-to).")
    var sendMode: SendMode = .plain
    @Option(help: "Mixed traffic: the addresses of its sendMany relay trees (limit 1: the first relays to the rest), as this node and each relay reach the next.")
    var relayTo: [String] = []
    @Option(help: "Command ID of the generated traffic.") var sendCommand: UInt16 = 1024
    @Option(help: "Messages the journal should hold for --send-to: those already journaled (resent if unacked) count, the rest are sent, each {\"i\": n}.")
    var sendCount: Int = 0
    @Option(help: "Traffic generator: at most this many messages per second (default: as fast as they are journaled).")
    var sendRate: Double?

    func validate() throws {
        if let sendRate, !(sendRate > 0) { throw ValidationError("--send-rate must be a positive number of messages per second") }
        if sendMode == .plain && sendTo.count > 1 { throw ValidationError("--send-to is repeatable only with --send-mode mixed") }
        if let metricsPort, !(0...65535).contains(metricsPort) { throw ValidationError("--metrics-port must be 0...65535") }
        if !(1...100_000).contains(metricsMaxConnections) { throw ValidationError("--metrics-max-connections must be 1...100000") }
        if !(metricsTimeout > 0 && metricsTimeout <= 3600) { throw ValidationError("--metrics-timeout must be in (0, 3600] seconds") }
        if config == nil && (bind == nil || journal == nil) { throw ValidationError("--bind and --journal are required without --config") }
        if keyFile != nil && insecure { throw ValidationError("--key-file and --insecure exclude each other") }
        if config != nil { return }
        if keyFile == nil && !insecure { throw ValidationError("a cluster key is required: pass --key-file FILE (or --insecure)") }
    }

    func run() async throws {
        var configuration: MeshConfiguration
        // nil only with --config (validate() asks for one of them otherwise): the file names its key file then.
        let key = insecure ? ClusterKey.insecure : try keyFile.map(Self.readKey)
        if let config {
            // --journal, --key-file and --insecure stand in for the file's journal and clusterKeyFile.
            do {
                configuration = try MeshConfiguration.load(jsonFile: config, journalPath: journal, clusterKey: key)
            } catch {
                throw CLIError(error.message)
            }
            if let bind { configuration.address = bind }
        } else {
            configuration = MeshConfiguration(address: bind!, journalPath: journal!, clusterKey: key!)
            configuration.retryTimeout = .seconds(30)
            configuration.peerTimeout = .seconds(30)
        }
        if let type { configuration.nodeType = type }
        if let role { configuration.nodeRole = role }
        if let durability { configuration.durability = durability }
        if !seeds.isEmpty { configuration.seeds = seeds }
        if let endpoint { configuration.endpoint = endpoint }
        for entry in value {
            guard let equals = entry.firstIndex(of: "="), equals != entry.startIndex else {
                throw ValidationError("--value \"\(entry)\" is not KEY=JSON")
            }
            configuration.nodeValues[String(entry[..<equals])] = try JSONInput.value(parsing: String(entry[entry.index(after: equals)...]),
                                                                                     what: "--value \"\(entry)\"")
        }
        var metricsSuffix = ""
        var metricsChannel: (any Channel)?
        if let metricsPort {
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(DescribedMetricsFactory(registry: registry, descriptions: MeshNode.metricDescriptions))
            do {
                let channel = try await MetricsServer.start(host: metricsHost, port: metricsPort, registry: registry,
                                                            maxConnections: metricsMaxConnections,
                                                            timeout: .milliseconds(Int64(metricsTimeout * 1000)))
                metricsChannel = channel
                metricsSuffix = " metrics \(metricsHost):\(channel.localAddress?.port ?? metricsPort)"
            } catch {
                throw CLIError("cannot serve metrics on \(metricsHost):\(metricsPort): \(error)")
            }
        }
        let signals = TerminationSignals()  // before "listening on": a SIGTERM from then on is a graceful stop
        let node: MeshNode
        do {
            node = try await MeshNode.start(configuration: configuration, logger: Logger(label: "mesh.node")) { [echo, sink, echoAsync, sinkAsync, fail] node in
                // Registered before the first message is taken: every message runs its command ID's whole chain.
                // The reference handlers pass the `handler.inside` failpoint while they run (its note names the
                // message, for the crash tests).
                for command in echo {
                    try node.handleCommandInline(command) { data, info in Failpoint.pass("handler.inside", note: info.messageID); return data }
                }
                for command in sink {
                    try node.handleCommandInline(command) { _, info in Failpoint.pass("handler.inside", note: info.messageID); return nil }
                }
                for command in echoAsync { try node.handleCommand(command) { data, info in Failpoint.pass("handler.inside", note: info.messageID); return data } }
                for command in sinkAsync { try node.handleCommand(command) { _, info in Failpoint.pass("handler.inside", note: info.messageID); return nil } }
                for command in fail {
                    try node.handleCommand(command) { _, info in
                        Failpoint.pass("handler.inside", note: info.messageID)
                        throw ReferenceHandlerFailure(command: command)
                    }
                }
            }
        } catch {
            throw CLIError("cannot start the node: \(error)")
        }
        // Written straight to the stdout file descriptor so a supervising process sees it at once.
        FileHandle.standardOutput.write(Data("listening on \(node.address) node \(node.identity.nodeID) epoch \(node.identity.bootEpoch)\(metricsSuffix)\n".utf8))

        let generator: Task<Void, Never>?
        switch (sendMode, sendTo.first) {
        case (_, nil): generator = nil
        case (.plain, let target?):
            generator = Task { [sendCount, sendRate, sendCommand] in
                if await Self.generate(node: node, to: target, command: sendCommand, count: sendCount, rate: sendRate) {
                    Self.generatorFinished(sendCount)
                }
            }
        case (.mixed, _):
            generator = Task { [sendTo, relayTo, sendCount, sendRate] in
                if await MixedTraffic.generate(node: node, targets: sendTo, relays: relayTo, count: sendCount, rate: sendRate) {
                    Self.generatorFinished(sendCount)
                }
            }
        }
        let received = await signals.wait()
        generator?.cancel()
        FileHandle.standardError.write(Data("signal \(received): shutting down\n".utf8))
        let transport = (try? await node.transportStatistics()) ?? [:]
        await node.shutdown()
        try? await metricsChannel?.close()
        // What the journal's writer, the node's idle polls and its segmented writes did (read before the transport closed), for
        // `mesh bench` and operators: one line on stdout after the last one.
        let (writes, checkpoints) = (node.journal.writeStatistics, node.journal.checkpointStatistics)
        FileHandle.standardOutput.write(Data("stopped: journal commits \(writes.transactions) jobs \(writes.jobs) wal_frames \(node.journal.walFramesWritten) checkpoints_background \(checkpoints.background) checkpoints_inline \(checkpoints.inline) idle_polls \(transport["idle_polls"] ?? 0) idle_polls_caught \(transport["idle_polls_caught"] ?? 0) segmented_writes \(transport["segmented_writes"] ?? 0) segmented_datagrams \(transport["segmented_datagrams"] ?? 0)\n".utf8))
    }

    /// Says on stdout that the traffic generator handed its last message to the node (every send returned): a
    /// supervisor waiting for the traffic to settle knows no more is coming. Not said when it stopped or failed.
    static func generatorFinished(_ count: Int) {
        FileHandle.standardOutput.write(Data("generated: \(count) messages journaled\n".utf8))
    }

    /// Sends `{"i": n}` for every n in `0..<count` its journal does not hold yet for (`target`, `command`), eight at
    /// a time, so a restarted generator sends exactly the numbers it had not journaled: eight sends run at once,
    /// so a kill can leave gaps (n + 1 journaled, n not), which counting rows would miss.
    static func generate(node: MeshNode, to target: String, command: UInt16, count: Int, rate: Double? = nil) async -> Bool {
        let missing: [Int]
        let peer: String
        do {
            peer = MeshAddress.text(try MeshAddress.parse(target))
            let journaled = try await node.journal.read { db in
                let statement = try db.prepare("SELECT payload FROM mesh_outbound WHERE command_id = \(command) AND peer = ?")
                try statement.bind(1, peer)
                var numbers: Set<Int> = []
                while try statement.step() {
                    if let i = (try? MeshCodec.decode(statement.blob(0)))?.int("i") { numbers.insert(i) }
                }
                return numbers
            }
            missing = (0..<max(count, 0)).filter { !journaled.contains($0) }
        } catch {
            FileHandle.standardError.write(Data("traffic generator stopped: \(error)\n".utf8))
            return false
        }
        return await TrafficPacing.run(missing, rate: rate) { i in
            _ = try await node.send(command, to: peer, ["i": .int64(Int64(i))])
        }
    }

    static func readKey(_ keyFile: String) throws -> ClusterKey {
        do {
            return try ClusterKey(contentsOfFile: keyFile)
        } catch {
            throw CLIError(error.message)
        }
    }
}

/// The traffic generator's modes (`mesh node --send-mode`).
enum SendMode: String, ExpressibleByArgument, CaseIterable {
    case plain, mixed
}

/// `mesh keygen`: prints a new random cluster key.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen", abstract: "Print a new random cluster key (64 hex digits) for --key-file.")

    func run() throws { print(ClusterKey.generate().hex) }
}

/// What a `mesh node --fail CMD` handler throws: its text is what the requester's `handlerError` carries.
struct ReferenceHandlerFailure: Error, CustomStringConvertible {
    let command: UInt16
    var description: String { "mesh node --fail \(command): this handler always fails" }
}
