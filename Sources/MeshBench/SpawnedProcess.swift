#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Synchronization

/// A child process started with `posix_spawn`, for the benchmarks, `mesh demo` and the tests.
///
/// Not Foundation's `Process`: on Linux (Swift 6.3.1) its `run()` reads past a buffer while it lists
/// `/proc/self/fd` and crashes now and then — the more descriptors the process has open (every node has its own
/// event loop and journal), the more often; the test suite crashed that way (swift-corelibs-foundation #5472).
/// The child gets only the three descriptors it is given (every other one is closed in it before the exec).
package final class SpawnedProcess: Sendable {
    /// What the child's standard input is.
    package enum Input: Sendable {
        case null
        /// These bytes, then end of file (written by a thread of its own).
        case bytes([UInt8])
    }

    /// Where the child's standard output or error goes.
    package enum Output: Sendable {
        case null
        /// A pipe whose read end is ``standardOutput`` / ``standardError``.
        case pipe
        /// A file, created or truncated.
        case file(String)
        /// (For standard error) wherever standard output goes.
        case standardOutput
    }

    /// How the child ended.
    package enum TerminationReason: Sendable, Equatable {
        case exit
        case uncaughtSignal
    }

    package let processIdentifier: pid_t
    /// The read end of the stdout pipe (with ``Output/pipe``), owned by the caller.
    package let standardOutput: Int32?
    /// The read end of the stderr pipe (with ``Output/pipe``), owned by the caller.
    package let standardError: Int32?
    /// The exit status once reaped.
    private let ended = Mutex<(reason: TerminationReason, status: Int32)?>(nil)

    /// Spawns one child at a time: a pipe is made close-on-exec in two steps (`pipe2` is not imported), and another
    /// child spawned in between would inherit its ends.
    private static let spawning = Mutex(())

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later; not imported into Swift).
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    /// A pipe whose two ends are close-on-exec (call with ``spawning`` held).
    private static func closeOnExecPipe(_ fds: inout [Int32]) -> Bool {
        guard pipe(&fds) == 0 else { return false }
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        return true
    }

    /// Starts `executable` with `arguments`; `environment` adds to (or replaces entries of) this process's.
    package convenience init(executable: String, arguments: [String], environment: [String: String] = [:], stdin: Input = .null,
                             stdout: Output = .null, stderr: Output = .null) throws {
        let spawned = try Self.spawning.withLock { _ in
            try Self.spawn(executable: executable, arguments: arguments, environment: environment, stdin: stdin, stdout: stdout, stderr: stderr)
        }
        self.init(spawned)
        if case .bytes(let bytes) = stdin, let writer = spawned.inputWriter {
            Thread.detachNewThread {
                var offset = 0
                while offset < bytes.count {
                    let n = bytes[offset...].withUnsafeBytes { write(writer, $0.baseAddress, $0.count) }
                    if n <= 0 { break }
                    offset += n
                }
                close(writer)
            }
        }
    }

    private struct Spawned {
        let pid: pid_t
        let readEnds: [Int32?]
        let inputWriter: Int32?
    }

    private init(_ spawned: Spawned) {
        processIdentifier = spawned.pid
        standardOutput = spawned.readEnds[0]
        standardError = spawned.readEnds[1]
    }

    private static func spawn(executable: String, arguments: [String], environment: [String: String], stdin: Input,
                              stdout: Output, stderr: Output) throws -> Spawned {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var closeInParent: [Int32] = []
        var readEnds: [Int32?] = [nil, nil]
        var inputWriter: Int32?
        func fail(_ what: String) -> any Error {
            for fd in closeInParent { close(fd) }
            return POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO, userInfo: [NSLocalizedDescriptionKey: what])
        }
        switch stdin {
        case .null:
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        case .bytes:
            var fds: [Int32] = [0, 0]
            guard Self.closeOnExecPipe(&fds) else { throw fail("pipe") }
            posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
            closeInParent.append(fds[0])
            inputWriter = fds[1]
        }
        for (index, output) in [stdout, stderr].enumerated() {
            let target = Int32(index + 1)
            switch output {
            case .null:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
            case .file(let path):
                posix_spawn_file_actions_addopen(&actions, target, path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
            case .standardOutput:
                posix_spawn_file_actions_adddup2(&actions, 1, target)
            case .pipe:
                var fds: [Int32] = [0, 0]
                guard Self.closeOnExecPipe(&fds) else { throw fail("pipe") }
                posix_spawn_file_actions_adddup2(&actions, fds[1], target)
                closeInParent.append(fds[1])
                readEnds[index] = fds[0]
            }
        }
        // Not every descriptor of this process is close-on-exec (SwiftNIO's sockets are not): a node's UDP socket
        // inherited by a long-running child would keep its port bound after the node closed it. The child keeps
        // only 0, 1 and 2.
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }
        var variables = ProcessInfo.processInfo.environment
        for (key, value) in environment { variables[key] = value }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = variables.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        for fd in closeInParent { close(fd) }
        guard rc == 0 else {
            for fd in readEnds.compactMap({ $0 }) { close(fd) }
            if let inputWriter { close(inputWriter) }
            errno = rc
            throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO, userInfo: [NSLocalizedDescriptionKey: "cannot start \(executable)"])
        }
        return Spawned(pid: pid, readEnds: readEnds, inputWriter: inputWriter)
    }

    /// Reads one of the pipe read ends chunk by chunk until end of file, then closes it unless `closing` is false
    /// (its owner closes it) (blocks: call it off the cooperative pool).
    package static func readChunks(_ fd: Int32, closing: Bool = true, _ body: (ArraySlice<UInt8>) -> Void) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            body(buffer[0..<n])
        }
        if closing { close(fd) }
    }

    /// Reads one of the pipe read ends to end of file and closes it (blocks: call it off the cooperative pool).
    package static func readToEnd(_ fd: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        readChunks(fd) { bytes += $0 }
        return bytes
    }

    /// Reads both piped outputs to end of file (stderr on a thread of its own, so a child filling one pipe while
    /// the other is read never stalls), then waits for the exit. Blocks: call it off the cooperative pool.
    package func finish() -> (stdout: String, stderr: String) {
        let errors = Mutex<[UInt8]>([])
        let done = DispatchSemaphore(value: 0)
        if let fd = standardError {
            Thread.detachNewThread {
                let bytes = Self.readToEnd(fd)
                errors.withLock { $0 = bytes }
                done.signal()
            }
        } else {
            done.signal()
        }
        let output = standardOutput.map { Self.readToEnd($0) } ?? []
        done.wait()
        waitUntilExit()
        return (String(decoding: output, as: UTF8.self), errors.withLock { String(decoding: $0, as: UTF8.self) })
    }

    /// Whether the child still runs (reaps it if it ended).
    package var isRunning: Bool {
        if ended.withLock({ $0 }) != nil { return false }
        return !reap(blocking: false)
    }

    /// Blocks until the child ended (call it off the cooperative pool).
    package func waitUntilExit() {
        while ended.withLock({ $0 }) == nil { _ = reap(blocking: true) }
    }

    /// The exit status, or the signal that ended it (with ``terminationReason``); 0 while it runs.
    package var terminationStatus: Int32 { ended.withLock { $0?.status } ?? 0 }

    /// Whether it exited or was killed by a signal (`.exit` while it runs).
    package var terminationReason: TerminationReason { ended.withLock { $0?.reason } ?? .exit }

    /// Sends SIGTERM.
    package func terminate() { kill(processIdentifier, SIGTERM) }

    /// Sends `signal`.
    package func signal(_ signal: Int32) { kill(processIdentifier, signal) }

    /// One `waitpid`; true once the child ended (its status recorded).
    private func reap(blocking: Bool) -> Bool {
        var status: Int32 = 0
        let rc = waitpid(processIdentifier, &status, blocking ? 0 : WNOHANG)
        if rc == 0 { return false }
        if rc < 0 {
            if errno == EINTR { return false }
            // Already reaped (by an earlier call that recorded it), or not our child any more: its status is lost.
            ended.withLock { if $0 == nil { $0 = (.exit, -1) } }
            return true
        }
        let signalled = status & 0x7F
        let result: (TerminationReason, Int32) = signalled == 0 ? (.exit, (status >> 8) & 0xFF) : (.uncaughtSignal, signalled)
        ended.withLock { if $0 == nil { $0 = result } }
        return true
    }
}
