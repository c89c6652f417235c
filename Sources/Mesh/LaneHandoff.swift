import MeshTransport
import NIOCore
import Synchronization

/// Hands journaled messages to their command IDs' lanes after the node's thread has flushed what their batch sends
/// (acknowledgements, confirmations): waking a lane's task costs the node's thread a wake-up of a pool thread, and
/// the sender of a message is waiting for its confirmation, not for its handler.
///
/// A request is handed over at once when nothing waits ahead of it — its response, which the handler writes, is
/// what its sender waits for. Work for a lane is handed over in the order it came (one queue for every lane), and
/// each piece reserves its lane when it comes (``DispatchLane/reserve()``), so a lane holding work here is not
/// idle and no later message of its command ID runs inline ahead of it.
///
/// Called on the node's thread (from a receive job's commit); the deferred hand-over runs there too, as the next
/// task of its event loop — after the flush of the read or the step that committed the batch.
final class LaneHandoff: Sendable {
    private struct Item: Sendable {
        let lane: DispatchLane
        let work: DispatchWork
    }

    private let eventLoop: any EventLoop
    /// The node loop's count of work handed to it: a hand-over queued behind the transport's idle spin ends it.
    private let activity: LoopActivity
    /// Work waiting for the next task, in arrival order; a lock that is never contended (one thread).
    private let waiting = Mutex<[Item]>([])

    init(eventLoop: any EventLoop, activity: LoopActivity) {
        self.eventLoop = eventLoop
        self.activity = activity
    }

    /// Queues `work` on `lane`: now if `urgent` and nothing waits, else in the next task. `reserved`: the caller
    /// reserved the lane for it already.
    func hand(_ work: DispatchWork, to lane: DispatchLane, reserved: Bool, urgent: Bool) {
        if !reserved { lane.reserve() }
        let now: Bool? = waiting.withLock { waiting in
            if urgent && waiting.isEmpty { return nil }
            waiting.append(Item(lane: lane, work: work))
            return waiting.count == 1
        }
        switch now {
        case nil: lane.enqueueReserved(work)
        case true?:
            activity.note()
            eventLoop.execute { self.handOver() }
        case false?: break
        }
    }

    /// Queues everything waiting, in order per lane: each lane's pieces together, so that a lane whose runner
    /// starts inline runs them all in one task.
    private func handOver() {
        let items = waiting.withLock { waiting in
            let items = waiting
            waiting = []
            return items
        }
        guard items.count > 1 else {
            for item in items { item.lane.enqueueReserved(item.work) }
            return
        }
        var groups: [(lane: DispatchLane, works: [DispatchWork])] = []
        var groupOf: [ObjectIdentifier: Int] = [:]
        for item in items {
            if let index = groupOf[ObjectIdentifier(item.lane)] {
                groups[index].works.append(item.work)
            } else {
                groupOf[ObjectIdentifier(item.lane)] = groups.count
                groups.append((item.lane, [item.work]))
            }
        }
        for group in groups { group.lane.enqueueReserved(group.works) }
    }
}
