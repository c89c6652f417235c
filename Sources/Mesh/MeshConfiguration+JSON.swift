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
/// | `journal` | string | required (unless given to `load`) | journal file (relative paths are relative to the JSON file) |
/// | `clusterKeyFile` | string | required (unless a key is given to `load`) | file with the 64-hex-digit cluster key |
/// | `durability` | `"normal"`/`"full"` | `"normal"` | what a commit survives |
/// | `nodeType`, `nodeRole` | string | `"UDP"` | Diarkis `SetNodeType` / role |
/// | `seeds` | [string] | [] | addresses to join through |
/// | `advertisedAddress` | string | none | address other nodes use |
/// | `endpoint` | string | none | public address for clients (Diarkis `SetEndPoint`) |
/// | `guest` | bool | false | a guest: sends and requests, never a member |
/// | `sharedDataMaxKeys`, `sharedDataMaxValueBytes`, `sharedDataMaxTotalBytes`, `sharedDataMaxKeyBytes` | number | 1000, 8192, 1048576, 256 | limits of the shared data |
/// | `peerTimeout`, `forgetPeersAfter`, `heartbeatInterval`, `memberTimeout`, `shutdownTimeout`, `pruneInterval` | ms | see ``MeshConfiguration`` | |
/// | `maxPeers` | number | 4096 | peers held at once |
/// | `retention` | ms or null | 7 days | null keeps everything |
/// | `maxHandlerAttempts` | number | 3 | |
/// | `encrypt`, `storesPayloadJSON`, `startsAsyncHandlersInline` | bool | false, true, true | |
/// | `minFreeDiskBytes` | number | 67108864 | |
/// | `idleSpinMicroseconds` | number | 300 (0 with `durability` `full`) | 0...10000 |
/// | `segmentationOffload` | bool | true where the kernel supports it | UDP segmentation offload |
extension MeshConfiguration {
    /// Reads and validates a JSON configuration file.
    /// - Parameters:
    ///   - journalPath: a journal given elsewhere (a command line's `--journal`) in place of the file's `journal`.
    ///   - clusterKey: a key given elsewhere (`--key-file`, `--insecure`) in place of the file's `clusterKeyFile`.
    ///   A file may leave out a key given this way; if it has it, its type is still checked but its value is not used
    ///   (a key file it names is not read).
    /// - Throws: ``MeshError`` `invalidConfiguration` naming the file and the key at fault.
    public static func load(jsonFile path: String, journalPath: String? = nil,
                            clusterKey: ClusterKey? = nil) throws(MeshError) -> MeshConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw MeshError(.invalidConfiguration, "cannot read the configuration file \(path)")
        }
        let base = (path as NSString).deletingLastPathComponent
        do {
            return try parse(json: Array(data), baseDirectory: base.isEmpty ? "." : base, journalPath: journalPath,
                             clusterKey: clusterKey)
        } catch {
            throw MeshError(.invalidConfiguration, "\(path): \(error.message)")
        }
    }

    /// Parses a JSON configuration; relative paths in it are resolved against `baseDirectory`. `journalPath` and
    /// `clusterKey` take the place of the file's `journal` and `clusterKeyFile`, as in
    /// ``load(jsonFile:journalPath:clusterKey:)``.
    ///
    /// Strict: every key's JSON type is checked (`true` is not a number, `1` is not a boolean, `"3000"` is not a
    /// duration), a key may appear once, and unknown keys are refused.
    public static func parse(json: [UInt8], baseDirectory: String, journalPath: String? = nil,
                             clusterKey: ClusterKey? = nil) throws(MeshError) -> MeshConfiguration {
        guard case .object(let members) = try ConfigurationJSON.parse(json) else {
            throw MeshError(.invalidConfiguration, "the top level must be an object")
        }
        var reader = JSONKeys(members)
        let host = try reader.string("address") ?? "127.0.0.1"
        let port: Int
        if case .string(let text)? = reader.peek("port") {
            guard let value = Int(text), text.allSatisfy(\.isASCII) else {
                throw MeshError(.invalidConfiguration, "\"port\" must be a number (got \"\(text)\")")
            }
            _ = try reader.string("port")
            port = value
        } else {
            port = try reader.int("port") ?? 8000
        }
        guard (0...65535).contains(port) else { throw MeshError(.invalidConfiguration, "\"port\" must be 0...65535 (got \(port))") }
        let journalInFile = try reader.string("journal")
        guard let journal = journalPath ?? journalInFile.map({ resolve($0, against: baseDirectory) }) else {
            throw MeshError(.invalidConfiguration, "\"journal\" is required")
        }
        let keyFile = try reader.string("clusterKeyFile")
        let key: ClusterKey
        if let clusterKey {
            key = clusterKey
        } else {
            guard let keyFile else {
                throw MeshError(.invalidConfiguration, "\"clusterKeyFile\" is required (`mesh keygen > FILE` makes one)")
            }
            do {
                key = try ClusterKey(contentsOfFile: resolve(keyFile, against: baseDirectory))
            } catch {
                throw MeshError(.invalidConfiguration, "\"clusterKeyFile\": \(error.message)")
            }
        }
        let hostPart = host.contains(":") && !host.hasPrefix("[") ? "[\(host)]" : host
        var c = MeshConfiguration(address: "\(hostPart):\(port)", journalPath: journal, clusterKey: key)
        if let v = try reader.milliseconds("retryInterval") { c.retryInterval = v }
        if let v = try reader.milliseconds("retryTimeout") { c.retryTimeout = v }
        if let v = try reader.milliseconds("reliableRetryTimeout") { c.retryTimeout = v }
        if let v = try reader.int("sendInterval"), v != 0 && v < 17 {
            throw MeshError(.invalidConfiguration, "\"sendInterval\" must be 0 or at least 17 (got \(v))")
        }
        if try reader.bool("strictCheckForExternal") == false {
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
        if let v = try reader.strings("seeds") { c.seeds = v }
        if let v = try reader.string("advertisedAddress") { c.advertisedAddress = v }
        if let v = try reader.string("endpoint") { c.endpoint = v }
        if let v = try reader.bool("guest") { c.guest = v }
        if let v = try reader.int("sharedDataMaxKeys") { c.sharedDataLimits.maxKeys = v }
        if let v = try reader.int("sharedDataMaxValueBytes") { c.sharedDataLimits.maxValueBytes = v }
        if let v = try reader.int("sharedDataMaxTotalBytes") { c.sharedDataLimits.maxTotalBytes = v }
        if let v = try reader.int("sharedDataMaxKeyBytes") { c.sharedDataLimits.maxKeyBytes = v }
        if let v = try reader.milliseconds("peerTimeout") { c.peerTimeout = v }
        if let v = try reader.int("maxPeers") { c.maxPeers = v }
        if let v = try reader.milliseconds("forgetPeersAfter") { c.forgetPeersAfter = v }
        if let v = try reader.milliseconds("heartbeatInterval") { c.heartbeatInterval = v }
        if let v = try reader.milliseconds("memberTimeout") { c.memberTimeout = v }
        if let v = try reader.milliseconds("shutdownTimeout") { c.shutdownTimeout = v }
        if let v = try reader.milliseconds("pruneInterval") { c.pruneInterval = v }
        if reader.takeNull("retention") {
            c.retention = nil
        } else if let v = try reader.milliseconds("retention") {
            c.retention = v
        }
        if let v = try reader.int("maxHandlerAttempts") { c.maxHandlerAttempts = v }
        if let v = try reader.bool("encrypt") { c.encrypt = v }
        if let v = try reader.bool("storesPayloadJSON") { c.storesPayloadJSON = v }
        if let v = try reader.bool("startsAsyncHandlersInline") { c.startsAsyncHandlersInline = v }
        if let v = try reader.int("minFreeDiskBytes") { c.minFreeDiskBytes = Int64(v) }
        if let v = try reader.int("idleSpinMicroseconds") { c.idleSpinMicroseconds = v }
        if let v = try reader.bool("segmentationOffload") { c.segmentationOffload = v }
        for unsupported in ["nic", "marsAddress", "marsPort", "marsAddressCacheTTL"] where reader.peek(unsupported) != nil {
            throw MeshError(.invalidConfiguration, "\"\(unsupported)\" is not supported: Mesh needs no MARS directory; list \"seeds\" instead")
        }
        if let unknown = reader.unused.first {
            throw MeshError(.invalidConfiguration, "unknown key \"\(unknown)\"")
        }
        try c.validate()
        return c
    }

    private static func resolve(_ path: String, against base: String) -> String {
        path.hasPrefix("/") ? path : base + "/" + path
    }
}

/// Typed, tracked access to a JSON object's keys: each accessor checks the JSON type and names the key and
/// what was found when it is wrong.
private struct JSONKeys {
    private let members: [(key: String, value: ConfigurationJSON)]
    private var used: Set<String> = []

    init(_ members: [(key: String, value: ConfigurationJSON)]) { self.members = members }

    /// Keys not read yet, in file order.
    var unused: [String] { members.map(\.key).filter { !used.contains($0) } }

    func peek(_ key: String) -> ConfigurationJSON? { members.first { $0.key == key }?.value }

    private mutating func take(_ key: String) -> ConfigurationJSON? {
        guard let value = peek(key) else { return nil }
        used.insert(key)
        return value
    }

    private func wrongType(_ key: String, _ expected: String, _ found: ConfigurationJSON) -> MeshError {
        MeshError(.invalidConfiguration, "\"\(key)\" must be \(expected) (got \(found.kind))")
    }

    mutating func takeNull(_ key: String) -> Bool {
        guard peek(key) == .null else { return false }
        used.insert(key)
        return true
    }

    mutating func string(_ key: String) throws(MeshError) -> String? {
        guard let value = take(key) else { return nil }
        guard case .string(let text) = value else { throw wrongType(key, "a string", value) }
        return text
    }

    mutating func bool(_ key: String) throws(MeshError) -> Bool? {
        guard let value = take(key) else { return nil }
        guard case .bool(let flag) = value else { throw wrongType(key, "true or false", value) }
        return flag
    }

    mutating func strings(_ key: String) throws(MeshError) -> [String]? {
        guard let value = take(key) else { return nil }
        guard case .array(let elements) = value else { throw wrongType(key, "a list of strings", value) }
        var texts: [String] = []
        for element in elements {
            guard case .string(let text) = element else { throw wrongType(key, "a list of strings", element) }
            texts.append(text)
        }
        return texts
    }

    /// A whole number written as one (`3000`, not `3000.5`, `3e3` or `true`).
    mutating func int(_ key: String) throws(MeshError) -> Int? {
        guard let value = take(key) else { return nil }
        guard case .number(let text) = value, let number = Int(text) else { throw wrongType(key, "a whole number", value) }
        return number
    }

    mutating func milliseconds(_ key: String) throws(MeshError) -> Duration? {
        guard let value = try int(key) else { return nil }
        guard value >= 0 else { throw MeshError(.invalidConfiguration, "\"\(key)\" must not be negative (got \(value))") }
        return .milliseconds(value)
    }
}
