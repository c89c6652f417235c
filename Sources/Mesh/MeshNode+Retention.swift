import Logging
import MeshJournal
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Retention and the low-disk guard: finished messages older than ``MeshConfiguration/retention`` are pruned
/// in batches (each a short transaction, so sends interleave), the WAL is checkpointed after, and sends fail
/// with `diskFull` while the journal's file system is below ``MeshConfiguration/minFreeDiskBytes``.
extension MeshNode {
    /// Prunes finished messages that completed before `cutoff` (Unix ms; default now minus the retention) until
    /// none is left, then checkpoints. Returns how many rows went.
    @discardableResult
    public func prune(completedBeforeMs cutoff: Int64? = nil) async throws -> PruneResult {
        guard let cutoff = cutoff ?? configuration.retention.map({ WallClock.nowMs() - Self.milliseconds($0) }) else {
            return PruneResult(outbound: 0, inbound: 0)
        }
        var total = PruneResult(outbound: 0, inbound: 0)
        while true {
            let pass = try await journal.pruneFinished(completedBeforeMs: cutoff, batchSize: 1000)
            total.outbound += pass.outbound
            total.inbound += pass.inbound
            if pass.outbound + pass.inbound == 0 { break }
            await Task.yield()
        }
        if total.outbound + total.inbound > 0 {
            try await journal.checkpoint(.passive)
            logger.info("pruned the journal", metadata: ["mesh.outbound": "\(total.outbound)", "mesh.inbound": "\(total.inbound)"])
        }
        return total
    }

    /// Runs until shutdown: the disk check every second, the floors of the unsettled messages recorded every ten
    /// (``Journal/persistFloors()``: where the next start's reads of them begin), retention every prune interval.
    func maintenanceLoop() async {
        var lastPrune = ContinuousClock.now
        var lastFloors = ContinuousClock.now
        while !isStopped {
            updateDiskState()
            if ContinuousClock.now - lastFloors >= .seconds(10) {
                lastFloors = .now
                do {
                    try await journal.persistFloors()
                } catch {
                    logger.debug("recording the journal's floors failed; retrying in ten seconds", metadata: ["mesh.error": "\(error)"])
                }
            }
            if configuration.retention != nil, ContinuousClock.now - lastPrune >= configuration.pruneInterval {
                lastPrune = .now
                do {
                    try await prune()
                } catch {
                    logger.warning("pruning failed; retrying at the next interval", metadata: ["mesh.error": "\(error)"])
                }
            }
            try? await Task.sleep(for: min(.seconds(1), configuration.pruneInterval))
        }
    }

    /// Free bytes on the journal's file system, or `nil` if unknown.
    func freeDiskBytes() -> Int64? {
        let path = configuration.journalPath
        let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
        var info = statvfs()
        guard statvfs(directory.isEmpty ? "/" : directory, &info) == 0 else { return nil }
        return Int64(info.f_bavail) * Int64(info.f_frsize)
    }

    func updateDiskState() {
        guard configuration.minFreeDiskBytes > 0, let free = freeDiskBytes() else { return }
        let low = free < configuration.minFreeDiskBytes
        let was = lowDisk.exchange(low, ordering: .relaxed)
        if low != was {
            if low {
                logger.error("journal disk nearly full: sends are refused", metadata: ["mesh.free": "\(free)"])
            } else {
                logger.notice("journal disk has room again: sends resume", metadata: ["mesh.free": "\(free)"])
            }
        }
    }

    /// Throws `diskFull` while the journal's disk is below the configured free space.
    func checkDiskSpace() throws(MeshError) {
        if lowDisk.load(ordering: .relaxed) {
            throw MeshError(.diskFull, "less than \(configuration.minFreeDiskBytes) bytes free for the journal \(configuration.journalPath)")
        }
    }

    static func milliseconds(_ d: Duration) -> Int64 {
        d.components.seconds * 1000 + d.components.attoseconds / 1_000_000_000_000_000
    }
}
