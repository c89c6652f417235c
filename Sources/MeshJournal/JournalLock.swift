#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The exclusive ownership of a journal by one writer (a node, or `mesh journal migrate`) for as long as it has
/// the journal open: an advisory `flock` on a lock file beside the journal, `PATH-lock`.
///
/// Two nodes on one journal (a double deploy, or two `MeshNode`s in one process) would both take the same
/// sequence numbers and fail each other's writes; the second one is refused at open instead, with an error
/// naming the journal and the holder. The lock belongs to the open file description, so it is released when
/// the holder closes the journal or dies (SIGKILL included) — never left stale. The lock file itself stays
/// (deleting it would let a third opener lock a new file while the second still holds the old one). Read-only
/// tools (`mesh journal stats`, the `sqlite3` shell) do not take it and keep working on a live journal.
///
/// Owned by whoever opened the journal; ``release()`` is called once, by ``Journal/close()``.
package final class JournalLock: Sendable {
    /// The lock file.
    package let path: String
    private let descriptor: Int32

    private init(path: String, descriptor: Int32) {
        self.path = path
        self.descriptor = descriptor
    }

    /// The lock file of the journal at `journalPath`.
    package static func lockPath(forJournal journalPath: String) -> String { journalPath + "-lock" }

    /// Takes the lock of the journal at `journalPath`, creating the lock file if needed, and records the holder
    /// (process id, host, program, start time) in it for the error a second opener gets.
    /// - Throws: ``JournalError`` `inUse` naming the journal and the holder when another open holds it; `sqlite`
    ///   when the lock file cannot be created (a read-only directory).
    package static func acquire(journalPath: String, nowMs: Int64) throws(JournalError) -> JournalLock {
        let path = lockPath(forJournal: journalPath)
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            let reason = String(cString: strerror(errno))
            throw JournalError(.sqlite, "cannot create the lock file \(path) of journal \(journalPath): \(reason)")
        }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            let code = errno
            if code == EINTR { continue }
            let holder = readHolder(fd)
            close(fd)
            if code == EWOULDBLOCK {
                throw JournalError(.inUse, """
                    \(journalPath) is in use by \(holder.isEmpty ? "another process" : holder): a journal has one owner \
                    (stop that node first, or give this one its own journal)
                    """)
            }
            throw JournalError(.sqlite, "cannot lock \(path): \(String(cString: strerror(code)))")
        }
        writeHolder(fd, nowMs: nowMs)
        return JournalLock(path: path, descriptor: fd)
    }

    /// ``acquire(journalPath:nowMs:)``, retrying for up to `patience` while the lock is held: a lock is released
    /// only once every copy of its descriptor is closed, and a child process this process is starting holds a copy
    /// until its `exec` closes it (the descriptor is close-on-exec) — on a loaded machine, long enough for a node
    /// restarted in the same process to find its journal still "in use". A real second owner is still refused,
    /// `patience` later.
    package static func acquire(journalPath: String, nowMs: Int64, patience: Duration) async throws -> JournalLock {
        let deadline = ContinuousClock.now + patience
        while true {
            switch Result(catching: { () throws(JournalError) in try acquire(journalPath: journalPath, nowMs: nowMs) }) {
            case .success(let lock):
                return lock
            case .failure(let error) where error.code == .inUse && ContinuousClock.now < deadline:
                try await Task.sleep(for: .milliseconds(10))
            case .failure(let error):
                throw error
            }
        }
    }

    /// Releases the lock (closing the descriptor). Call once.
    package func release() {
        close(descriptor)
    }

    /// Records who holds the lock: `pid 1234 (mesh) on host since 2026-11-30T10:00:00Z`.
    private static func writeHolder(_ fd: Int32, nowMs: Int64) {
        var host = [CChar](repeating: 0, count: 256)
        _ = gethostname(&host, host.count - 1)
        let hostName = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let program = CommandLine.arguments.first.map { $0.split(separator: "/").last.map(String.init) ?? $0 } ?? "?"
        let text = "pid \(getpid()) (\(program)) on \(hostName) since \(WallClock.iso8601(nowMs))\n"
        _ = ftruncate(fd, 0)
        _ = text.utf8CString.withUnsafeBufferPointer { buffer in pwrite(fd, buffer.baseAddress, buffer.count - 1, 0) }
    }

    /// What the holder recorded (trimmed), or "" if nothing could be read.
    private static func readHolder(_ fd: Int32) -> String {
        var buffer = [UInt8](repeating: 0, count: 512)
        let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
        guard n > 0 else { return "" }
        let text = String(decoding: buffer.prefix(n), as: UTF8.self)
        return String(text.split(separator: "\n").first ?? "")
    }
}
