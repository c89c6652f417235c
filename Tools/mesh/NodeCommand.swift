import ArgumentParser
import Foundation
import Logging
import Mesh
import MeshCore
import MeshJournal
import MeshTransport

#if canImport(Glibc)
import Glibc
#endif

/// `mesh node`: a reference node that runs until SIGINT/SIGTERM, resuming whatever its journal holds.
struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Run a reference node until SIGINT/SIGTERM (graceful); it resumes its journal at start.")

    @Option(help: "Address to listen on, HOST:PORT (port 0: any free port).") var bind: String
    @Option(help: "Journal file (created if missing).") var journal: String
    @Option(help: "File holding the cluster key (64 hex digits; `mesh keygen` makes one).") var keyFile: String?
    @Flag(help: "Run without a cluster key (a fixed, public key: no authentication). For local experiments only.") var insecure = false
    @Option(help: "Node type.") var type = "UDP"
    @Option(help: "Node role.") var role = "UDP"
    @Option(name: .customLong("seed"), help: "Address of a node to join through, HOST:PORT (repeatable).") var seeds: [String] = []
    @Option(help: "Command ID answered with the request's own data.") var echo: [UInt16] = []
    @Option(help: "Command ID accepted and ignored.") var sink: [UInt16] = []

    func validate() throws {
        if keyFile == nil && !insecure { throw ValidationError("a cluster key is required: pass --key-file FILE (or --insecure)") }
        if keyFile != nil && insecure { throw ValidationError("--key-file and --insecure exclude each other") }
    }

    func run() async throws {
        let key: ClusterKey
        if let keyFile {
            guard let text = try? String(contentsOfFile: keyFile, encoding: .utf8) else {
                throw CLIError("cannot read the key file \(keyFile)")
            }
            do {
                key = try ClusterKey(hex: text)
            } catch {
                throw CLIError("\(keyFile): \(error.message)")
            }
        } else {
            key = try ClusterKey(bytes: [UInt8](repeating: 0, count: 32))
        }
        var configuration = MeshConfiguration(address: bind, nodeType: type, journalPath: journal, clusterKey: key)
        configuration.retryTimeout = .seconds(30)
        configuration.peerTimeout = .seconds(30)
        configuration.nodeRole = role
        configuration.seeds = seeds
        let node: MeshNode
        do {
            node = try await MeshNode.start(configuration: configuration, logger: Logger(label: "mesh.node"))
        } catch {
            throw CLIError("cannot start the node: \(error)")
        }
        for command in echo { try node.handleCommand(command) { data in data } }
        for command in sink { try node.handleCommand(command) { _ in nil } }
        // Written straight to the stdout file descriptor so a supervising process sees it at once.
        FileHandle.standardOutput.write(Data("listening on \(node.address) node \(node.identity.nodeID) epoch \(node.identity.bootEpoch)\n".utf8))

        let received = await waitForTerminationSignal()
        FileHandle.standardError.write(Data("signal \(received): shutting down\n".utf8))
        await node.shutdown()
    }
}

/// `mesh keygen`: prints a new random cluster key.
struct KeygenCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keygen", abstract: "Print a new random cluster key (64 hex digits) for --key-file.")

    func run() throws { print(ClusterKey.generate().hex) }
}
