import Foundation

/// The whole machine's CPU time by state, read from the first line of `/proc/stat` (all CPUs summed, in clock ticks).
///
/// A benchmark samples it before and after its timed run to report how much of the machine's CPU time the
/// hypervisor gave to something else meanwhile (`steal`): on a shared VM that time is taken from whichever threads
/// were running, so a run with much of it has a longer tail than the code accounts for. Disk I/O is one cause on
/// these VMs: the host's side of a write or flush runs on the cores the VM's CPUs run on.
package struct MachineCPUTime: Sendable, Equatable {
    /// Ticks in every state (user, nice, system, idle, iowait, irq, softirq, steal).
    package var total: UInt64
    /// Ticks idle (idle and iowait).
    package var idle: UInt64
    /// Ticks stolen by the hypervisor.
    package var steal: UInt64

    /// A sample with these counts (tests build them by hand).
    package init(total: UInt64, idle: UInt64, steal: UInt64) {
        self.total = total
        self.idle = idle
        self.steal = steal
    }

    /// The machine's CPU time now, or `nil` where `/proc/stat` cannot tell (not Linux, an unexpected format).
    package static func now() -> MachineCPUTime? {
        guard let text = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) else { return nil }
        return parse(text)
    }

    /// Reads the `cpu ` line of a `/proc/stat` text: `cpu user nice system idle iowait irq softirq steal …`.
    package static func parse(_ text: String) -> MachineCPUTime? {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix("cpu ") }) else { return nil }
        let fields = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard fields.count >= 8 else { return nil }
        return MachineCPUTime(total: fields[0..<8].reduce(0, +), idle: fields[3] + fields[4], steal: fields[7])
    }

    /// The shares of the machine's CPU time between `earlier` and this sample: stolen and idle, in percent
    /// (`nil`: no tick passed, or the counters went back).
    package func percentages(since earlier: MachineCPUTime) -> (steal: Double, idle: Double)? {
        guard total > earlier.total, idle >= earlier.idle, steal >= earlier.steal else { return nil }
        let ticks = Double(total - earlier.total)
        return (Double(steal - earlier.steal) * 100 / ticks, Double(idle - earlier.idle) * 100 / ticks)
    }
}
