#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Crash-test failpoints: named places in a message's life where a test can make the process die as a
/// SIGKILL would, to check that a restart on the same journal loses nothing and duplicates nothing.
///
/// Compiled into every build and inert unless the environment variable `MESH_FAILPOINT` names one when the
/// process starts: `MESH_FAILPOINT=inbound.after-insert@500` kills the process (SIGKILL, no cleanup) at the
/// 500th time it passes that point (`@1` when omitted). An inert failpoint costs one load of a static.
///
/// Every failpoint counts messages (or, for `outbound.after-send`, batches of acknowledgements), never read
/// batches, whose sizes depend on timing.
///
/// | name | where |
/// |---|---|
/// | `outbound.after-insert` | an outbound message is committed, not yet handed to the transport |
/// | `outbound.after-send` | a message was sent and confirmed by its receiver, the ack is not yet journaled |
/// | `inbound.after-insert` | a received message is committed, not yet acknowledged or dispatched |
/// | `handler.inside` | inside a handler of `mesh node` (`--sink`, `--echo`, `--fail`): it was called, it has not returned |
/// | `handler.between` | one handler of a command ID returned, the next has not been called |
/// | `handler.after-chain` | a request's async handler chain ended (handled, or dead-lettered with an error response): its end and its response are committed in one transaction, the response is not yet handed to the transport |
/// | `prune.during` | inside a pruning transaction that deleted rows in both directions, before it commits (its note lists them) |
/// | `migration.during` | inside a migration's transaction, after its SQL ran, before it commits |
public enum Failpoint {
    private static let armed: (name: String, at: Int)? = parse(getenv("MESH_FAILPOINT").map { String(cString: $0) })
    private static let passes = Atomic<Int>(0)

    /// Every failpoint name (see the table above).
    public static let names = ["outbound.after-insert", "outbound.after-send", "inbound.after-insert", "handler.inside",
                               "handler.between", "handler.after-chain", "prune.during", "migration.during"]

    /// Passes the failpoint `name`: kills the process if it is the armed one and this is the armed pass.
    @inline(__always)
    public static func pass(_ name: String) {
        guard let armed, armed.name == name else { return }
        if passes.add(1, ordering: .relaxed).newValue == armed.at { kill(getpid(), SIGKILL) }
    }

    /// ``pass(_:)``, writing `note` (what the process was doing) to standard error just before it dies, so a
    /// crash test can check exactly that work after the restart. `note` is evaluated only when armed.
    public static func pass(_ name: String, note: @autoclosure () -> String) {
        guard let armed, armed.name == name else { return }
        if passes.add(1, ordering: .relaxed).newValue == armed.at {
            let line = Array("failpoint \(name): \(note())\n".utf8)
            _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
            kill(getpid(), SIGKILL)
        }
    }

    /// Whether `name` is the armed failpoint (to gather what its note reports only then).
    public static func isArmed(_ name: String) -> Bool { armed?.name == name }

    /// `name@count` → (name, count); nil for an unset or malformed value (a typo disarms, it never crashes).
    static func parse(_ value: String?) -> (name: String, at: Int)? {
        guard let value, !value.isEmpty else { return nil }
        let parts = value.split(separator: "@", maxSplits: 1).map(String.init)
        guard names.contains(parts[0]) else { return nil }
        if parts.count == 1 { return (parts[0], 1) }
        guard let at = Int(parts[1]), at >= 1 else { return nil }
        return (parts[0], at)
    }
}
