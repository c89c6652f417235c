import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// CPU time (user + system, all threads) a process has used so far, read from `/proc/<pid>/stat`.
///
/// A benchmark reads it for both of its processes before and after the timed run, so the figure covers the steady
/// state only (not start-up, journal opening or shutdown). CPU per message is steadier than latency on a shared
/// VM whose clock speed drifts: on a stop-and-wait path the two are nearly the same thing, as only one side runs
/// at a time. Resolution is one clock tick (usually 10 ms), so runs should last a second or more.
package enum ProcessCPUTime {
    /// Seconds of CPU used by `pid` (0 for this process), or `nil` where `/proc` cannot tell.
    package static func seconds(of pid: pid_t = 0) -> Double? {
        let path = pid == 0 ? "/proc/self/stat" : "/proc/\(pid)/stat"
        guard let text = try? String(contentsOfFile: path, encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return ticks > 0 ? (user + system) / ticks : nil
    }
}
