import Logging
import MeshCore
import Metrics
import MeshJournal
import MeshFailpoints
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
    let attempts: Int
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

    init(commandID: UInt16, node: MeshNode) {
        self.commandID = commandID
        let (stream, continuation) = AsyncStream.makeStream(of: DispatchWork.self)
        self.continuation = continuation
        let outstanding = Outstanding()
        self.outstanding = outstanding
        self.worker = Task {
            for await work in stream {
                if Task.isCancelled { break }
                await node.dispatch(work, commandID: commandID)
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

extension MeshNode {
    func dispatch(_ work: DispatchWork, commandID: UInt16) async {
        switch work {
        case .message(let item):
            await process(item)
        case .catchUp:
            var afterID: Int64 = 0
            while let page = try? await journal.openInbound(commandID: commandID, afterID: afterID, limit: 500), !page.isEmpty {
                for row in page {
                    afterID = row.id
                    guard row.status == .unhandled, !handlers(for: commandID).isEmpty,
                          (try? await journal.claimUnhandled(id: row.id)) == true else { continue }
                    await process(DispatchItem(row))
                }
            }
        }
    }

    /// Runs every handler of the message's command ID in registration order, journaling each invocation. A
    /// throwing handler stops the chain; the message is retried (the whole chain) up to `maxHandlerAttempts`
    /// times, then dead-lettered. A request gets one response (the first non-nil return, or the error), unless
    /// it was answered before.
    ///
    /// Cancellation (the shutdown timeout ran out while a handler ran) is not a failure: the message is left as
    /// it is — open, its interrupted invocation unfinished — and runs again at the next start, like after a crash.
    func process(_ item: DispatchItem) async {
        let handlers = handlers(for: item.commandID)
        guard !handlers.isEmpty else {
            try? await journal.setInboundStatus(id: item.inboundID, .unhandled, attempts: item.attempts)
            return
        }
        let data: MeshData
        do {
            data = try MeshCodec.decode(item.payload)
        } catch {
            logger.warning("dead-lettered an undecodable message", metadata: ["mesh.message": "\(item.originNode):\(item.originSeq)"])
            try? await journal.setInboundStatus(id: item.inboundID, .dead, attempts: item.attempts + 1, error: "undecodable payload: \(error)")
            return
        }
        var attempt = item.attempts
        while !Task.isCancelled {
            attempt += 1
            let info = MessageInfo(messageID: "\(item.originNode):\(item.originSeq)", sender: item.peer, commandID: item.commandID,
                                   kind: item.kind, attempt: attempt, isResumed: item.inboundID <= resumeBoundary.load(ordering: .relaxed))
            var failure: String?
            var firstResponse: MeshData?
            // Invocation records and statuses are streamed to the journal writer (ordered, batched by group commit)
            // rather than awaited one by one.
            for (index, handler) in handlers.enumerated() {
                if index > 0 { Failpoint.pass("handler.between", note: info.messageID) }
                let ticket = journal.streamInvocationStart(inboundID: item.inboundID, handlerIndex: index, attempt: attempt)
                do {
                    let response = try await handler.call(data, info)
                    if firstResponse == nil { firstResponse = response }
                    // The chain's last record carries the message's status: one writer job, not two.
                    journal.streamInvocationFinish(ticket, outcome: .ok, response: response,
                                                   status: index == handlers.count - 1 ? (.handled, attempt, nil) : nil)
                } catch {
                    // Cancelled at shutdown: neither a failure nor an attempt; the next start runs the chain again.
                    if Task.isCancelled { return }
                    failure = "\(error)"
                    journal.streamInvocationFinish(ticket, outcome: .error, error: failure)
                    break
                }
            }
            guard let failure else {
                if item.kind == .request && !item.isAnswered { await respond(to: item, with: .data(firstResponse ?? MeshData())) }
                return
            }
            metrics.handlerErrors.increment()
            if attempt >= configuration.maxHandlerAttempts {
                metrics.deadLetters.increment()
                logger.warning("dead-lettered a message whose handler keeps failing", metadata: [
                    "mesh.message": "\(info.messageID)", "mesh.command": "\(item.commandID)", "mesh.error": "\(failure)",
                ])
                journal.streamInboundStatus(id: item.inboundID, .dead, attempts: attempt, error: failure)
                if item.kind == .request && !item.isAnswered { await respond(to: item, with: .error(failure)) }
                return
            }
            journal.streamInboundStatus(id: item.inboundID, .failed, attempts: attempt, error: failure)
        }
    }
}
