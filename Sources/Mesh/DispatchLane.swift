import MeshJournal
import Synchronization

/// Work for one command ID's dispatcher.
enum DispatchWork: Sendable {
    /// A journaled message to hand to the handlers.
    case message(DispatchItem)
    /// A handler was registered: dispatch the messages that arrived `unhandled`, in their order.
    case catchUp
}

/// A journaled inbound message, as the dispatcher needs it.
struct DispatchItem: Sendable {
    let inboundID: Int64
    let commandID: UInt16
    let kind: MessageKind
    let originNode: String
    let originSeq: UInt64
    let peer: String
    let payload: [UInt8]
    let correlationID: String?
    /// Attempts already made (from the journal).
    var attempts: Int
    /// A request already answered (a re-queued dead request, or a chain re-run after a crash that followed its
    /// response): its handlers run again, no second response is sent.
    var isAnswered = false
}

extension DispatchItem {
    /// The dispatch view of a journaled inbound row.
    init(_ row: StoredInbound) {
        self.init(inboundID: row.id, commandID: row.commandID, kind: row.kind, originNode: row.originNode, originSeq: row.originSeq,
                  peer: row.peer, payload: row.payload, correlationID: row.correlationID, attempts: row.attempts,
                  isAnswered: row.isAnswered)
    }

    /// A message just journaled as row `id` (no attempt made yet).
    init(_ row: InboundMessage, id: Int64) {
        self.init(inboundID: id, commandID: row.commandID, kind: row.kind, originNode: row.originNode, originSeq: row.originSeq,
                  peer: row.peer, payload: row.payload, correlationID: row.correlationID, attempts: 0)
    }
}

/// Runs one command ID's messages through its handlers, one message at a time, in arrival order: a slow or
/// failing message holds up only its own command ID.
///
/// A synchronous chain may run a message inline on the node's thread instead (see `MeshNode+Inline.swift`), but
/// only while the lane is idle: ``outstanding`` counts work queued, running, or reserved by a receive job that has
/// not committed yet, so an inline message never overtakes one of its command ID waiting here.
final class DispatchLane: Sendable {
    let commandID: UInt16
    private let continuation: AsyncStream<DispatchWork>.Continuation
    private let worker: Task<Void, Never>
    /// Work queued, running or reserved; incremented before a yield, decremented after the work ran.
    private let outstanding: Outstanding

    /// The count behind ``isIdle``, shared with the worker task.
    private final class Outstanding: Sendable {
        let count = Atomic<Int>(0)
    }

    /// Starts the lane's task, which runs each piece of work with `run`, in order.
    init(commandID: UInt16, run: @escaping @Sendable (DispatchWork) async -> Void) {
        self.commandID = commandID
        let (stream, continuation) = AsyncStream.makeStream(of: DispatchWork.self)
        self.continuation = continuation
        let outstanding = Outstanding()
        self.outstanding = outstanding
        self.worker = Task {
            for await work in stream {
                if Task.isCancelled { break }
                await run(work)
                outstanding.count.subtract(1, ordering: .releasing)
            }
        }
    }

    func enqueue(_ work: DispatchWork) {
        outstanding.count.add(1, ordering: .acquiringAndReleasing)
        continuation.yield(work)
    }

    /// Nothing of this command ID is queued, running or reserved.
    var isIdle: Bool { outstanding.count.load(ordering: .acquiring) == 0 }

    /// Holds the lane busy for work a receive job will queue once it commits (``enqueueReserved(_:)``), or give
    /// back if it fails (``release()``).
    func reserve() { outstanding.count.add(1, ordering: .acquiringAndReleasing) }

    /// Queues work for which ``reserve()`` was called.
    func enqueueReserved(_ work: DispatchWork) { continuation.yield(work) }

    /// Gives back a reservation whose work will not come.
    func release() { outstanding.count.subtract(1, ordering: .releasing) }

    func finish() { continuation.finish() }

    func drained() async { await worker.value }

    /// Cancels the worker (a handler that honours cancellation stops; the rest of the queue is dropped).
    func cancel() { worker.cancel() }
}
