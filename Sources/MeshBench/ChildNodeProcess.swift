import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A `mesh node` child process, started and read until its first stdout line ("listening on HOST:PORT node …")
/// gives its address. Used by `mesh bench`, `mesh demo` and the CLI tests.
package final class ChildNodeProcess: Sendable {
    package let process: SpawnedProcess
    /// The address from the first line, `HOST:PORT`.
    package let address: String
    /// The whole first line the node printed.
    package let firstLine: String
    /// Standard output read after the first line and not yet consumed by ``awaitLine(containing:seconds:)``.
    private let unread: Mutex<[UInt8]>

    /// Starts `executable` with `arguments` (normally `node …`) and waits up to 30 s for its first line.
    /// - Parameter environment: variables added to this process's environment (e.g. `MESH_FAILPOINT`).
    /// - Parameter stderrPath: a file that receives the child's standard error (its logs); discarded if `nil`.
    /// - Throws: if it cannot start or prints no `listening on` line (it is then terminated).
    package init(executable: String, arguments: [String], environment: [String: String] = [:], stderrPath: String? = nil) throws {
        process = try SpawnedProcess(executable: executable, arguments: arguments, environment: environment,
                                     stdout: .pipe, stderr: stderrPath.map { .file($0) } ?? .null)
        let out = process.standardOutput!
        var line: [UInt8] = []
        let deadline = Date().addingTimeInterval(30)
        while !line.contains(UInt8(ascii: "\n")), let more = Self.read(out, until: deadline) { line += more }
        let text = String(decoding: line, as: UTF8.self)
        guard let range = text.range(of: "listening on "), let end = text[range.upperBound...].firstIndex(of: " ") else {
            process.terminate()
            throw BenchmarkFailure("the mesh node did not start: \(text)")
        }
        address = String(text[range.upperBound..<end])
        let newline = line.firstIndex(of: UInt8(ascii: "\n"))
        firstLine = String(decoding: newline.map { line[...$0] } ?? line[...], as: UTF8.self)
        unread = Mutex(newline.map { Array(line[($0 + 1)...]) } ?? [])
    }

    /// Waits up to `seconds` for a stdout line containing `text` (lines before it are consumed); returns it, or `nil`
    /// at the deadline or the end of the output. Reads off the cooperative pool.
    package func awaitLine(containing text: String, seconds: Double) async -> String? {
        guard let out = process.standardOutput else { return nil }
        let deadline = Date().addingTimeInterval(seconds)
        return await offThePool { [self] in
            while true {
                let found: String? = unread.withLock { bytes in
                    while let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) {
                        let line = String(decoding: bytes[..<newline], as: UTF8.self)
                        bytes.removeFirst(newline + 1)
                        if line.contains(text) { return line }
                    }
                    return nil
                }
                if let found { return found }
                guard let more = Self.read(out, until: deadline) else { return nil }
                unread.withLock { $0 += more }
            }
        }
    }

    /// The next bytes of `fd`, waiting for them at most until `deadline` (a read alone would block for ever on a
    /// node that prints nothing); `nil` at the deadline or the end of the output. Blocks the calling thread.
    private static func read(_ fd: Int32, until deadline: Date) -> [UInt8]? {
        guard Date() < deadline else { return nil }
        var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000))) > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        return n > 0 ? Array(buffer.prefix(n)) : nil
    }

    deinit {
        // A child whose handle is dropped while it runs (a test that threw before terminating it) is killed, not
        // left behind holding its port and journal.
        if process.isRunning { Glibc.kill(process.processIdentifier, SIGKILL) }
        // The stdout pipe stays open while the child runs (a write to a closed pipe would kill it with SIGPIPE).
        if let out = process.standardOutput { close(out) }
    }

    /// SIGTERM (a graceful shutdown) if still running; waits for the exit and returns its status and what the
    /// node printed on stdout after its first line (`mesh node` prints a `stopped: …` summary last). Reads off
    /// the cooperative pool.
    package func terminateReadingOutput() async -> (status: Int32, output: String) {
        let process = self.process
        if process.isRunning { process.terminate() }
        return await offThePool { [self] in
            var bytes = unread.withLock { $0 }
            // Not closed here: the deinit closes the pipe.
            if let out = process.standardOutput { SpawnedProcess.readChunks(out, closing: false) { bytes += $0 } }
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: bytes, as: UTF8.self))
        }
    }

    /// Waits up to `seconds` for the process to exit by itself. Returns the signal that killed it (0 for a
    /// normal exit), or nil if it is still running (it is then left running). Suspends between checks rather
    /// than blocking a thread of the cooperative pool.
    package func waitForExit(seconds: Double) async -> Int32? {
        let deadline = ContinuousClock.now + .seconds(seconds)
        while process.isRunning && ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(10)) }
        guard !process.isRunning else { return nil }
        return process.terminationReason == .uncaughtSignal ? process.terminationStatus : 0
    }

    /// Starts it (see ``init(executable:arguments:environment:stderrPath:)``) from a thread of its own, so the wait
    /// for the first line never blocks a thread of Swift's cooperative pool (two on these machines: one blocked
    /// thread halves every concurrent test).
    package static func launch(executable: String, arguments: [String], environment: [String: String] = [:],
                               stderrPath: String? = nil) async throws -> ChildNodeProcess {
        try await offThePool {
            try ChildNodeProcess(executable: executable, arguments: arguments, environment: environment, stderrPath: stderrPath)
        }
    }

    /// A UDP port on 127.0.0.1, free now and below the kernel's ephemeral range, for a node that is killed and
    /// restarted on its port: a bind to port 0 anywhere else (other tests, other nodes) never takes it while the node
    /// is down. A port the kernel had handed out is up for grabs in that window (a restart found its port taken).
    package static func restartablePort() -> Int {
        let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))?
            .split(whereSeparator: \.isWhitespace).compactMap { Int($0) } ?? []
        let ephemeralLow = range.first ?? 32768
        for _ in 0..<200 {
            let port = Int.random(in: 10_000..<max(10_001, ephemeralLow))
            let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            guard fd >= 0 else { continue }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(port).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            close(fd)
            if bound == 0 { return port }
        }
        return 0
    }

    /// SIGKILL, as a crash would, and waits for the exit.
    package func kill() {
        Glibc.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// ``kill()``, waiting off the cooperative pool.
    package func kill() async {
        let process = self.process
        Glibc.kill(process.processIdentifier, SIGKILL)
        await offThePool { process.waitUntilExit() }
    }

    /// SIGTERM (a graceful shutdown) if still running; waits and returns the exit status.
    @discardableResult
    package func terminate() -> Int32 {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// ``terminate()``, waiting off the cooperative pool.
    @discardableResult
    package func terminate() async -> Int32 {
        let process = self.process
        if process.isRunning { process.terminate() }
        return await offThePool {
            process.waitUntilExit()
            return process.terminationStatus
        }
    }
}

/// Runs blocking `work` on a new thread and suspends until it finishes: process waits and pipe reads must not
/// hold a thread of Swift's cooperative pool.
package func offThePool<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}

/// ``offThePool(_:)`` for work that cannot fail.
package func offThePool<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: work()) }
    }
}
