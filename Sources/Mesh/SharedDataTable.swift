import MeshCore
import MeshJournal

/// The cluster's shared data as one node holds it, as a pure state machine: local writes (checked against the
/// limits and an expected version), merges of entries other nodes gossiped (the winner per key is
/// ``SharedEntry/supersedes(_:)``, so every node converges to the same map whatever the arrival order), and the
/// entries to put in the next gossip datagram. ``MeshNode`` owns one under its lock, journals what it accepts and
/// sends the gossip. Unit-tested without sockets.
struct SharedDataTable: Sendable {
    /// The limits of ``SharedDataLimits``.
    let limits: SharedDataLimits
    private(set) var entries: [String: SharedEntry] = [:]
    /// Encoded bytes of the live (not removed) values, against ``SharedDataLimits/maxTotalBytes``.
    private(set) var totalBytes = 0
    /// Keys changed recently (newest last), gossiped first so a write spreads within a round or two.
    private var recent: [String] = []
    /// Where the rotation through every key continues (anti-entropy: each entry is gossiped again in turn).
    private var rotation: String?

    init(limits: SharedDataLimits) {
        self.limits = limits
    }

    /// Live keys (removed ones excluded).
    var liveCount: Int { entries.values.filter { !$0.isRemoved }.count }

    /// Why a local write is refused.
    enum Refusal: Error, Equatable {
        case versionConflict(current: UInt64)
        case tooManyKeys(limit: Int)
        case valueTooLarge(bytes: Int, limit: Int)
        case totalTooLarge(bytes: Int, limit: Int)
        case badKey(String)
    }

    /// The entry a local write of `value` (`nil` removes) to `key` would make: version one above the current one,
    /// written by `writer`. Refused if `ifVersion` is given and is not the current version (0 for a key never
    /// written; a removed key keeps its version), or if a limit would be crossed.
    func prepareWrite(_ key: String, _ value: MeshValue?, writer: String, nowMs: Int64, ifVersion: UInt64?) -> Result<SharedEntry, Refusal> {
        guard !key.isEmpty, key.utf8.count <= limits.maxKeyBytes else {
            return .failure(.badKey("a key is 1...\(limits.maxKeyBytes) bytes of UTF-8 (got \(key.utf8.count))"))
        }
        let current = entries[key]
        let currentVersion = current?.version ?? 0
        if let ifVersion, ifVersion != currentVersion { return .failure(.versionConflict(current: currentVersion)) }
        if let value {
            let bytes = Self.size(of: value)
            guard bytes <= limits.maxValueBytes else { return .failure(.valueTooLarge(bytes: bytes, limit: limits.maxValueBytes)) }
            let live = current.map { !$0.isRemoved } ?? false
            if !live && liveCount >= limits.maxKeys { return .failure(.tooManyKeys(limit: limits.maxKeys)) }
            let total = totalBytes - (current?.value.map(Self.size(of:)) ?? 0) + bytes
            guard total <= limits.maxTotalBytes else { return .failure(.totalTooLarge(bytes: total, limit: limits.maxTotalBytes)) }
        }
        return .success(SharedEntry(key: key, value: value, version: currentVersion + 1, writer: writer, updatedAtMs: nowMs))
    }

    /// Takes `entry` if it wins over the one held (or there is none). Returns whether it changed the map.
    @discardableResult
    mutating func merge(_ entry: SharedEntry) -> Bool {
        if let current = entries[entry.key], !entry.supersedes(current) { return false }
        totalBytes += (entry.value.map(Self.size(of:)) ?? 0) - (entries[entry.key]?.value.map(Self.size(of:)) ?? 0)
        entries[entry.key] = entry
        recent.removeAll { $0 == entry.key }
        recent.append(entry.key)
        if recent.count > 64 { recent.removeFirst(recent.count - 64) }
        return true
    }

    /// The recently changed entries, newest first, about `maxBytes` of them (at least one if any), each once: what
    /// a round triggered by a local write sends to every member.
    mutating func takeRecent(maxBytes: Int) -> [SharedEntry] {
        var chosen: [SharedEntry] = []
        var bytes = 0
        while let key = recent.last {
            guard let entry = entries[key] else { recent.removeLast(); continue }
            let size = (entry.value.map(Self.size(of:)) ?? 0) + key.utf8.count + 48
            if !chosen.isEmpty && bytes + size > maxBytes { break }
            recent.removeLast()
            chosen.append(entry)
            bytes += size
        }
        return chosen
    }

    /// Entries for the next gossip datagram, about `maxBytes` of them: the recently changed first (up to half the
    /// budget; each goes once this way), then the next ones of the rotation through every key (at least one per
    /// datagram, so the rotation always moves on and every entry is gossiped again in turn — what repairs a
    /// datagram lost, or a node that was away).
    mutating func nextGossip(maxBytes: Int) -> [SharedEntry] {
        guard !entries.isEmpty else { return [] }
        var chosen: [SharedEntry] = []
        var keys = Set<String>()
        var bytes = 0
        func size(_ entry: SharedEntry) -> Int { (entry.value.map(Self.size(of:)) ?? 0) + entry.key.utf8.count + 48 }
        while let key = recent.last {
            guard let entry = entries[key] else { recent.removeLast(); continue }
            if !chosen.isEmpty && bytes + size(entry) > maxBytes / 2 { break }
            recent.removeLast()
            chosen.append(entry)
            keys.insert(key)
            bytes += size(entry)
        }
        let sorted = entries.keys.sorted()
        let start = rotation.flatMap { last in sorted.firstIndex { $0 > last } } ?? 0
        var rotated = 0
        for offset in 0..<sorted.count {
            let key = sorted[(start + offset) % sorted.count]
            guard !keys.contains(key) else {
                rotation = key
                continue
            }
            let entry = entries[key]!
            if rotated > 0 && bytes + size(entry) > maxBytes { break }
            rotation = key
            chosen.append(entry)
            keys.insert(key)
            bytes += size(entry)
            rotated += 1
        }
        return chosen
    }

    /// The encoded size of a value (what the limits count).
    static func size(of value: MeshValue) -> Int {
        (try? MeshCodec.encode(["v": value]).count) ?? Int.max
    }
}

/// Limits of the shared data, far above Diarkis's (10 keys of int16), refused on write with a clear error.
public struct SharedDataLimits: Sendable, Hashable {
    /// Most live keys. Default 1,000.
    public var maxKeys: Int
    /// Most encoded bytes per value. Default 8 KiB (an entry must fit a gossip datagram).
    public var maxValueBytes: Int
    /// Most encoded bytes of all live values. Default 1 MiB.
    public var maxTotalBytes: Int
    /// Most UTF-8 bytes per key. Default 256.
    public var maxKeyBytes: Int

    /// The defaults.
    public init(maxKeys: Int = 1000, maxValueBytes: Int = 8192, maxTotalBytes: Int = 1 << 20, maxKeyBytes: Int = 256) {
        self.maxKeys = maxKeys
        self.maxValueBytes = maxValueBytes
        self.maxTotalBytes = maxTotalBytes
        self.maxKeyBytes = maxKeyBytes
    }
}
