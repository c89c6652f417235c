import ArgumentParser
import Foundation
import Logging
import Mesh
import MeshCore
import MeshJournal
import MeshTransport

/// `mesh cluster`: an operator's view of the live cluster, through a guest node that joins via any member (what
/// `nats server list`, `consul members` and `serf members` give).
struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster",
        abstract: "The live cluster, seen through any member (the process joins as a guest: never listed).",
        subcommands: [ClusterMembers.self]
    )
}

/// Options of every `mesh cluster` subcommand: the member to ask and the key.
struct ClusterOptions: ParsableArguments {
    @Option(help: "A member to join through, HOST:PORT (HOST may be a DNS name).") var via: String
    @Option(help: "File holding the cluster key (64 hex digits).") var keyFile: String?
    @Flag(help: "Use the fixed public key of `mesh node --insecure` (no authentication). Local experiments only.") var insecure = false
    @Option(help: "Seconds to wait for the member's answer.") var timeout: Double = 10
    @Flag(help: "Print JSON instead of text.") var json = false

    func validate() throws {
        if keyFile == nil && !insecure { throw ValidationError("a cluster key is required: pass --key-file FILE (or --insecure)") }
        if keyFile != nil && insecure { throw ValidationError("--key-file and --insecure exclude each other") }
        guard timeout > 0 && timeout <= 3600 else { throw ValidationError("--timeout must be in (0, 3600] seconds") }
        var probe = MeshConfiguration(address: "127.0.0.1:0", journalPath: "x", clusterKey: .generate())
        probe.seeds = [via]
        do {
            try probe.validate()
        } catch {
            throw ValidationError("--via \(via): \(error.message)")
        }
    }

    /// Starts a guest that asks `via` for its view, and waits for the first answer.
    func joinAsGuest() async throws -> (MeshNode, String) {
        let key = keyFile == nil ? ClusterKey.insecure : try NodeCommand.readKey(keyFile!)
        let journal = try ClientOptions.temporaryJournal("cluster")
        var configuration = MeshConfiguration(address: "127.0.0.1:0", journalPath: journal, clusterKey: key)
        configuration.guest = true
        configuration.seeds = [via]
        configuration.heartbeatInterval = .milliseconds(200)
        configuration.retention = nil
        var logger = Logger(label: "mesh.cluster")
        logger.logLevel = .error
        let node: MeshNode
        do {
            node = try await MeshNode.start(configuration: configuration, logger: logger)
        } catch {
            throw CLIError("cannot start the guest node: \(error)")
        }
        guard await node.initialSync(timeout: .milliseconds(Int64(timeout * 1000))) else {
            await node.shutdown()
            throw CLIError("no answer from \(via) within \(timeout) s: is a node listening there, with this cluster key?")
        }
        return (node, journal)
    }
}

struct ClusterMembers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "members",
        abstract: "Every member the node at --via knows: id, address, type, role, status, endpoint, values, reachable."
    )

    @OptionGroup var options: ClusterOptions

    func run() async throws {
        let (node, journal) = try await options.joinAsGuest()
        let members = node.members().filter { !$0.isSelf }
        await node.shutdown()
        try? FileManager.default.removeItem(atPath: (journal as NSString).deletingLastPathComponent)
        if options.json {
            try printJSON(members.map { member -> [String: Any] in
                [
                    "id": member.nodeID, "address": member.address, "type": member.nodeType, "role": member.nodeRole,
                    "status": member.status.description, "endpoint": member.endpoint as Any? ?? NSNull(),
                    "values": (try? JSONSerialization.jsonObject(with: Data(MeshJSON.string(from: member.values).utf8))) ?? [:],
                    "reachable": member.isReachable,
                ]
            })
            return
        }
        print("id                                address                type      role  status   reachable  endpoint")
        for m in members {
            let columns = [m.nodeID, m.address.padding(toLength: 22, withPad: " ", startingAt: 0), m.nodeType.padding(toLength: 9, withPad: " ", startingAt: 0),
                           m.nodeRole.padding(toLength: 5, withPad: " ", startingAt: 0), m.status.description.padding(toLength: 8, withPad: " ", startingAt: 0),
                           (m.isReachable ? "yes" : "no").padding(toLength: 10, withPad: " ", startingAt: 0), m.endpoint ?? "-"]
            print(columns.joined(separator: " ") + (m.values.isEmpty ? "" : "  " + MeshJSON.string(from: m.values)))
        }
    }
}
