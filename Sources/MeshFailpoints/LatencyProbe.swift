#if MESH_PROBES
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization
#endif

/// Timestamps at named points of a message's way through a node — the caller, the node's thread, SQLite, the
/// socket — for the per-stage timeline that `Tools/latency-timeline.sh` prints for both nodes of `mesh bench`.
///
/// Compiled in only when the build defines `MESH_PROBES` (`swift build -Xswiftc -DMESH_PROBES`, which the script
/// does in a build folder of its own); otherwise ``mark(_:)`` and ``dump()`` are empty and inlined away. A probe
/// build keeps up to ``capacity`` marks per process in memory (no I/O on the measured path) and writes them when a
/// node shuts down (``dump()``) to `$MESH_PROBE_DIR/probe-<pid>.txt`, one `<point> <nanoseconds>` line each
/// (`CLOCK_MONOTONIC`, comparable across the processes of one machine), if that variable is set.
public enum LatencyProbe {
    /// The probed points. The raw values are the file format's; `Tools/latency-timeline.py` names them.
    public enum Point: UInt8, Sendable {
        /// A caller entered `sendRequest` or `sendConfirmed`.
        case callStart = 1
        /// Its message committed (`sendConfirmed`: handed to the transport, right after; the caller still waits).
        case callCommitted = 2
        /// A datagram arrived at the transport (before its tag is checked).
        case datagramIn = 3
        /// A received batch committed, before its confirmations and dispatch.
        case batchCommitted = 4
        /// A `sendConfirmed` message was confirmed by its receiver.
        case confirmed = 5
        /// The caller's call returns.
        case callEnd = 6
        /// The node took a batch of received messages to journal.
        case batchReceived = 7
        /// A lane began running a message's handlers.
        case laneStart = 8
        /// An async handler returned.
        case handlerReturned = 9
        /// A response journaled by a lane committed.
        case responseCommitted = 10
        /// A datagram was handed to the channel (sealed).
        case datagramWritten = 11
        /// The channel was flushed (the datagrams are with the kernel).
        case flushed = 12
        /// The transport's mailbox was drained on its event loop.
        case mailboxDrained = 13
        /// The transport began a flush (acknowledgements, queued messages).
        case flushStart = 15
        /// The writer began a transaction (`BEGIN IMMEDIATE`).
        case transactionStart = 20
        /// `BEGIN IMMEDIATE` returned.
        case begun = 21
        /// The transaction's jobs ran; `COMMIT` follows.
        case committing = 22
        /// `COMMIT` returned.
        case committed = 23
        /// The transaction's jobs were told their results.
        case transactionDone = 24
        /// A checkpoint began: a background pass (on a checkpointer's thread) or the writer's inline one.
        case checkpointStart = 50
        /// That checkpoint ended.
        case checkpointEnd = 51
        /// A datagram passed the transport's state machine.
        case ingested = 40
        /// The channel finished a read (the transport flushes next).
        case readComplete = 42
    }

    /// Marks kept per process; later ones are dropped.
    public static let capacity = 2_000_000

    #if MESH_PROBES
    nonisolated(unsafe) private static let marks = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
    private static let count = Atomic<Int>(0)
    #endif

    /// Records `point` with the current time (a probe build only).
    @inline(__always)
    public static func mark(_ point: Point) {
        #if MESH_PROBES
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let index = count.add(1, ordering: .relaxed).oldValue
        guard index < capacity else { return }
        // The point in the top byte, the time (ns, below 2^56: about two years of uptime) in the rest.
        marks[index] = UInt64(point.rawValue) << 56 | (UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec))
        #endif
    }

    /// Writes the marks so far to `$MESH_PROBE_DIR/probe-<pid>.txt` (a probe build with that variable set only).
    public static func dump() {
        #if MESH_PROBES
        guard let directory = getenv("MESH_PROBE_DIR").map({ String(cString: $0) }) else { return }
        let total = min(count.load(ordering: .relaxed), capacity)
        var text = ""
        text.reserveCapacity(total * 20)
        for index in 0..<total {
            let mark = marks[index]
            text += "\(mark >> 56) \(mark & (1 << 56 - 1))\n"
        }
        guard let file = fopen("\(directory)/probe-\(getpid()).txt", "w") else { return }
        fputs(text, file)
        fclose(file)
        #endif
    }
}
