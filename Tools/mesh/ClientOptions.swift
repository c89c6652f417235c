import ArgumentParser
import Foundation
import Logging
import Mesh
import MeshCore
import MeshJournal
import MeshTransport

/// Options of the commands that run a short-lived node to send (`send`, `replay`).
struct ClientOptions: ParsableArguments {
    @Option(help: "File holding the cluster key (64 hex digits).") var keyFile: String?
    @Flag(help: "Use the fixed public key of `mesh node --insecure` (no authentication). Local experiments only.") var insecure = false
    @Option(help: "Address this short-lived node binds, HOST:PORT.") var bind = "127.0.0.1:0"
    @Option(help: "Seconds to wait for acknowledgements (and for each response with --request).") var timeout: Double = 10
    @Flag(help: "Print one JSON object instead of text.") var json = false
    @Flag(help: "Print only errors.") var quiet = false

    func validate() throws {
        if keyFile == nil && !insecure { throw ValidationError("a cluster key is required: pass --key-file FILE (or --insecure)") }
        if keyFile != nil && insecure { throw ValidationError("--key-file and --insecure exclude each other") }
        guard timeout > 0 && timeout <= 86_400 else { throw ValidationError("--timeout must be in (0, 86400] seconds") }
    }

    func clusterKey() throws -> ClusterKey {
        if let keyFile { return try NodeCommand.readKey(keyFile) }
        return ClusterKey.insecure
    }

    /// Starts a node on `journal` that gives up on a message after the timeout.
    func startNode(journal: String) async throws -> MeshNode {
        var configuration = MeshConfiguration(address: bind, journalPath: journal, clusterKey: try clusterKey())
        configuration.retryTimeout = .milliseconds(Int64(timeout * 1000))
        configuration.peerTimeout = .milliseconds(Int64(max(timeout, 3) * 1000))
        configuration.retention = nil
        // Never a member: the cluster does not list it nor send it heartbeats.
        configuration.guest = true
        do {
            return try await MeshNode.start(configuration: configuration, logger: Logger(label: "mesh.client"))
        } catch {
            throw CLIError("cannot start the sending node: \(error)")
        }
    }

    /// Waits until no outbound row is pending (true) or the deadline passes (false).
    static func waitForNoPending(_ node: MeshNode, timeout: Double) async throws -> Bool {
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeout * 1000) + 1000)
        while ContinuousClock.now < deadline {
            let pending = try await node.journal.pendingOutboundCount()
            if pending == 0 { return true }
            try await Task.sleep(for: .milliseconds(20))
        }
        return false
    }

    /// A fresh temporary journal path.
    static func temporaryJournal(_ prefix: String) throws -> String {
        let dir = FileManager.default.temporaryDirectory.path + "/mesh-\(prefix)-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir + "/\(prefix).sqlite"
    }
}

/// JSON text to ``MeshData`` for `--data`: objects become maps, whole numbers int64, other numbers float64.
enum JSONInput {
    static func parse(_ text: String) throws -> MeshData {
        guard case .map(let data) = try value(parsing: text, what: "--data") else { throw ValidationError("--data must be a JSON object") }
        return data
    }

    /// Any JSON value (an object, a number, a string in quotes, ...) as a ``MeshValue``; `what` names the argument
    /// in the error.
    static func value(parsing text: String, what: String) throws -> MeshValue {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
        } catch {
            throw ValidationError("\(what) is not valid JSON: \(text)")
        }
        return try value(object)
    }

    static func value(_ any: Any) throws -> MeshValue {
        switch any {
        case is NSNull: return .null
        case let s as String: return .string(s)
        case let n as NSNumber:
            switch String(cString: n.objCType) {
            case "c": return .bool(n.boolValue)
            case "d", "f": return .float64(n.doubleValue)
            default: return .int64(n.int64Value)
            }
        case let a as [Any]: return .array(try a.map(value))
        case let d as [String: Any]:
            var map = MeshData()
            for (k, v) in d { map[k] = try value(v) }
            return .map(map)
        default: throw ValidationError("--data holds an unsupported JSON value")
        }
    }
}
