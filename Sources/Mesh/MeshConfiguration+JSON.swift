import Foundation
import MeshCore
import MeshJournal
import MeshTransport

/// Loading a ``MeshConfiguration`` from a JSON file that uses Diarkis's `mesh.json` keys where they apply,
/// plus Mesh's own. Every key is checked: an unknown key, a wrong type or a value out of range is an error
/// naming the key, so a typo cannot silently fall back to a default. Durations are milliseconds.
///
/// | Key | Type | Default | Meaning |
/// |---|---|---|---|
/// | `address` | string | `"127.0.0.1"` | Diarkis: host to bind |
/// | `port` | number or string | `8000` | Diarkis: port to bind (0: any free port; Mesh does not scan upward) |
/// | `retryInterval` | ms | 1000 | Diarkis: retransmission timeout before an RTT sample |
/// | `retryTimeout` / `reliableRetryTimeout` | ms | 3000 | Diarkis: give-up time of a reliable message |
/// | `sendInterval` | ms | 0 | Diarkis: accepted (0 or ≥ 17) and ignored: Mesh coalesces automatically |
/// | `strictCheckForExternal` | bool | true | Diarkis: Mesh always drops unauthenticated senders; `false` is refused |
/// | `journal` | string | required | journal file (relative paths are relative to the JSON file) |
/// | `clusterKeyFile` | string | required | file with the 64-hex-digit cluster key |
/// | `durability` | `"normal"`/`"full"` | `"normal"` | what a commit survives |
/// | `nodeType`, `nodeRole` | string | `"UDP"` | Diarkis `SetNodeType` / role |
/// | `seeds` | [string] | [] | addresses to join through |
/// | `advertisedAddress` | string | none | address other nodes use |
/// | `peerTimeout`, `heartbeatInterval`, `memberTimeout`, `shutdownTimeout`, `pruneInterval` | ms | see ``MeshConfiguration`` | |
/// | `retention` | ms or null | 7 days | null keeps everything |
/// | `maxHandlerAttempts` | number | 3 | |
/// | `encrypt`, `storesPayloadJSON` | bool | false, true | |
/// | `minFreeDiskBytes` | number | 67108864 | |
extension MeshConfiguration {
    /// Reads and validates a JSON configuration file.
    /// - Throws: ``MeshError`` `invalidConfiguration` naming the file and the key at fault.
    public static func load(jsonFile path: String) throws(MeshError) -> MeshConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MeshError(.invalidConfiguration, "cannot read the configuration file \(path)")
        }
        let base = (path as NSString).deletingLastPathComponent
        do {
            return try parse(json: Array(data), baseDirectory: base.isEmpty ? "." : base)
        } catch {
            throw MeshError(.invalidConfiguration, "\(path): \(error.message)")
        }
    }

    /// Parses a JSON configuration; relative paths in it are resolved against `baseDirectory`.
    public static func parse(json: [UInt8], baseDirectory: String) throws(MeshError) -> MeshConfiguration {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: Data(json))
        } catch {
            throw MeshError(.invalidConfiguration, "not valid JSON (\(error.localizedDescription))")
        }
        guard let root = object as? [String: Any] else { throw MeshError(.invalidConfiguration, "the top level must be an object") }
        var reader = JSONKeys(root)
        let host = try reader.string("address") ?? "127.0.0.1"
        let port: Int
        if root["port"] is String {
            let text = try reader.string("port")!
            guard let value = Int(text) else { throw MeshError(.invalidConfiguration, "\"port\" must be a number (got \"\(text)\")") }
            port = value
        } else {
            port = try reader.int("port") ?? 8000
        }
        guard (0...65535).contains(port) else { throw MeshError(.invalidConfiguration, "\"port\" must be 0...65535 (got \(port))") }
        guard let journal = try reader.string("journal") else { throw MeshError(.invalidConfiguration, "\"journal\" is required") }
        guard let keyFile = try reader.string("clusterKeyFile") else {
            throw MeshError(.invalidConfiguration, "\"clusterKeyFile\" is required (`mesh keygen > FILE` makes one)")
        }
        let keyPath = resolve(keyFile, against: baseDirectory)
        guard let keyText = try? String(contentsOfFile: keyPath, encoding: .utf8) else {
            throw MeshError(.invalidConfiguration, "\"clusterKeyFile\": cannot read \(keyPath)")
        }
        let key: ClusterKey
        do {
            key = try ClusterKey(hex: keyText.trimmingCharacters(in: .whitespacesAndNewlines))
        } catch {
            throw MeshError(.invalidConfiguration, "\"clusterKeyFile\" \(keyPath): \(error.message)")
        }
        let hostPart = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        var c = MeshConfiguration(address: "\(hostPart):\(port)", journalPath: resolve(journal, against: baseDirectory), clusterKey: key)
        if let v = try reader.milliseconds("retryInterval") { c.retryInterval = v }
        if let v = try reader.milliseconds("retryTimeout") { c.retryTimeout = v }
        if let v = try reader.milliseconds("reliableRetryTimeout") { c.retryTimeout = v }
        if let v = try reader.int("sendInterval"), v != 0 && v < 17 {
            throw MeshError(.invalidConfiguration, "\"sendInterval\" must be 0 or at least 17 (got \(v))")
        }
        if try reader.optional("strictCheckForExternal", as: Bool.self) == false {
            throw MeshError(.invalidConfiguration,
                "\"strictCheckForExternal\": false is not supported: Mesh authenticates every datagram with the cluster key")
        }
        if let v = try reader.string("durability") {
            guard let d = JournalConfiguration.Durability(rawValue: v) else {
                throw MeshError(.invalidConfiguration, "\"durability\" must be \"normal\" or \"full\" (got \"\(v)\")")
            }
            c.durability = d
        }
        if let v = try reader.string("nodeType") { c.nodeType = v }
        if let v = try reader.string("nodeRole") { c.nodeRole = v }
        if let v = try reader.optional("seeds", as: [String].self) { c.seeds = v }
        if let v = try reader.string("advertisedAddress") { c.advertisedAddress = v }
        if let v = try reader.milliseconds("peerTimeout") { c.peerTimeout = v }
        if let v = try reader.milliseconds("heartbeatInterval") { c.heartbeatInterval = v }
        if let v = try reader.milliseconds("memberTimeout") { c.memberTimeout = v }
        if let v = try reader.milliseconds("shutdownTimeout") { c.shutdownTimeout = v }
        if let v = try reader.milliseconds("pruneInterval") { c.pruneInterval = v }
        if reader.isNull("retention") {
            c.retention = nil
        } else if let v = try reader.milliseconds("retention") {
            c.retention = v
        }
        if let v = try reader.int("maxHandlerAttempts") { c.maxHandlerAttempts = v }
        if let v = try reader.optional("encrypt", as: Bool.self) { c.encrypt = v }
        if let v = try reader.optional("storesPayloadJSON", as: Bool.self) { c.storesPayloadJSON = v }
        if let v = try reader.int("minFreeDiskBytes") { c.minFreeDiskBytes = Int64(v) }
        for unsupported in ["nic", "marsAddress", "marsPort", "marsAddressCacheTTL"] where root[unsupported] != nil {
            throw MeshError(.invalidConfiguration, "\"\(unsupported)\" is not supported: Mesh needs no MARS directory; list \"seeds\" instead")
        }
        if let unknown = reader.unused.sorted().first {
            throw MeshError(.invalidConfiguration, "unknown key \"\(unknown)\"")
        }
        try c.validate()
        return c
    }

    private static func resolve(_ path: String, against base: String) -> String {
        path.hasPrefix("/") ? path : base + "/" + path
    }
}

/// Typed, tracked access to a JSON object's keys.
private struct JSONKeys {
    let object: [String: Any]
    private(set) var used: Set<String> = ["nic", "marsAddress", "marsPort", "marsAddressCacheTTL"]

    init(_ object: [String: Any]) { self.object = object }

    var unused: Set<String> { Set(object.keys).subtracting(used) }

    mutating func isNull(_ key: String) -> Bool {
        guard object[key] is NSNull else { return false }
        used.insert(key)
        return true
    }

    mutating func optional<T>(_ key: String, as type: T.Type) throws(MeshError) -> T? {
        guard let value = object[key] else { return nil }
        guard let typed = value as? T else {
            let expected = type == Bool.self ? "true or false" : type == [String].self ? "a list of strings" : "a string"
            throw MeshError(.invalidConfiguration, "\"\(key)\" must be \(expected)")
        }
        used.insert(key)
        return typed
    }

    mutating func string(_ key: String) throws(MeshError) -> String? {
        try optional(key, as: String.self)
    }

    mutating func int(_ key: String) throws(MeshError) -> Int? {
        guard let raw = object[key] else { return nil }
        guard !(raw is String), let number = raw as? NSNumber, let value = Int(exactly: number.doubleValue) else {
            throw MeshError(.invalidConfiguration, "\"\(key)\" must be a whole number")
        }
        used.insert(key)
        return value
    }

    mutating func milliseconds(_ key: String) throws(MeshError) -> Duration? {
        guard let value = try int(key) else { return nil }
        guard value >= 0 else { throw MeshError(.invalidConfiguration, "\"\(key)\" must not be negative (got \(value))") }
        return .milliseconds(value)
    }
}
