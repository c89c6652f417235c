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
        subcommands: [ClusterMembers.self, ClusterShared.self]
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

    /// The member to send to: `--via` itself when it is numeric, otherwise (a DNS name) a reachable member the
    /// guest heard of through it.
    func memberAddress(_ guest: MeshNode) -> String {
        if let address = try? MeshAddress.parse(via) { return MeshAddress.text(address) }
        return guest.members().first { !$0.isSelf && $0.isReachable }?.address ?? via
    }

    /// Runs `body` with a guest that heard from `via`; shuts it down and removes its temporary journal on every way
    /// out (a start that failed, no answer, `body` throwing).
    func withGuest<T: Sendable>(_ body: (MeshNode) async throws -> T) async throws -> T {
        let key = keyFile == nil ? ClusterKey.insecure : try NodeCommand.readKey(keyFile!)
        let journal = try ClientOptions.temporaryJournal("cluster")
        defer { try? FileManager.default.removeItem(atPath: (journal as NSString).deletingLastPathComponent) }
        let node = try await joinAsGuest(key: key, journal: journal)
        do {
            let result = try await body(node)
            await node.shutdown()
            return result
        } catch {
            await node.shutdown()
            throw error
        }
    }

    /// Starts a guest on `journal` that asks `via` for its view, and waits for the first answer.
    private func joinAsGuest(key: ClusterKey, journal: String) async throws -> MeshNode {
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
        return node
    }
}

struct ClusterMembers: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "members",
        abstract: "Every member the node at --via knows: id, address, type, role, status, endpoint, values, reachable."
    )

    @OptionGroup var options: ClusterOptions

    func run() async throws {
        let members = try await options.withGuest { node in node.members().filter { !$0.isSelf } }
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

/// `mesh cluster shared get|set|delete`: the cluster's shared data, through the shared-data service of the member
/// at `--via` (a journaled request; compare-and-set against that member's version).
struct ClusterShared: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shared",
        abstract: "The cluster's shared data: get, set (with --if-version: compare-and-set; a conflict exits 3) and delete.",
        subcommands: [Get.self, Set.self, Delete.self]
    )

    /// Sends one request to the service through a guest and returns its answer.
    static func ask(_ options: ClusterOptions, _ request: MeshData) async throws -> MeshData {
        let answer = try await options.withGuest { node in
            do {
                return try await node.sendRequest(MeshNode.sharedDataCommand, to: options.memberAddress(node), request,
                                                  timeout: .milliseconds(Int64(options.timeout * 1000)))
            } catch {
                throw CLIError("the shared-data request to \(options.via) failed: \(error)")
            }
        }
        if let error = answer.string("error") { throw CLIError(error) }
        return answer
    }

    /// An entry of the service's answer as JSON: `key`, `value` (null once removed), `version`, `writer`.
    static func json(_ entry: MeshValue) -> [String: Any] {
        let map = entry.mapValue ?? [:]
        let value = map["value"].map { (try? JSONSerialization.jsonObject(with: Data(MeshJSON.string(from: $0).utf8), options: [.fragmentsAllowed])) ?? NSNull() }
        return ["key": map.string("key") ?? "", "value": value ?? NSNull(), "version": map.uint64("version") ?? 0, "writer": map.string("writer") ?? ""]
    }

    /// Prints a written entry, or exits 3 with one line on a version conflict.
    static func finishWrite(_ answer: MeshData, key: String, ifVersion: UInt64?, json: Bool) throws {
        if let current = answer.uint64("conflict") {
            FileHandle.standardError.write(Data("shared key \(key) is at version \(current), not \(ifVersion ?? 0): nothing written\n".utf8))
            throw ExitCode(3)
        }
        guard let entry = answer["entry"] else { throw CLIError("the member's answer holds no entry") }
        if json {
            try printJSON(Self.json(entry))
        } else {
            let object = Self.json(entry)
            print("\(key) version \(object["version"] ?? 0) by \(object["writer"] ?? "")")
        }
    }

    struct Get: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every live key (or one) with its value, version and writer.")
        @Argument(help: "Only this key.") var key: String?
        @OptionGroup var options: ClusterOptions

        func run() async throws {
            var request: MeshData = ["op": "get"]
            if let key { request["key"] = .string(key) }
            let entries = try await ClusterShared.ask(options, request).array("entries") ?? []
            if options.json {
                try printJSON(entries.map(ClusterShared.json))
                return
            }
            for entry in entries.map(ClusterShared.json) {
                let value = (entry["value"]).flatMap { try? JSONSerialization.data(withJSONObject: $0, options: [.fragmentsAllowed, .sortedKeys]) }
                print("\(entry["key"] ?? "")  version \(entry["version"] ?? 0)  \(String(decoding: value ?? Data(), as: UTF8.self))")
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Writes KEY (a JSON value); with --if-version, only at that version (exit 3 if not).")
        @Argument(help: "The key.") var key: String
        @Argument(help: "The value, as JSON (an object, a number, a string in quotes, ...).") var value: String
        @Option(help: "Write only if the key is at this version (0: never written); otherwise exit 3.") var ifVersion: UInt64?
        @OptionGroup var options: ClusterOptions

        func run() async throws {
            var request: MeshData = ["op": "set", "key": .string(key), "value": try JSONInput.value(parsing: value, what: "the value")]
            if let ifVersion { request["ifVersion"] = .uint64(ifVersion) }
            try ClusterShared.finishWrite(try await ClusterShared.ask(options, request), key: key, ifVersion: ifVersion, json: options.json)
        }
    }

    struct Delete: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Removes KEY (a tombstone version); with --if-version, only at that version.")
        @Argument(help: "The key.") var key: String
        @Option(help: "Remove only if the key is at this version; otherwise exit 3.") var ifVersion: UInt64?
        @OptionGroup var options: ClusterOptions

        func run() async throws {
            var request: MeshData = ["op": "delete", "key": .string(key)]
            if let ifVersion { request["ifVersion"] = .uint64(ifVersion) }
            try ClusterShared.finishWrite(try await ClusterShared.ask(options, request), key: key, ifVersion: ifVersion, json: options.json)
        }
    }
}
