import Logging
import MeshCore
import MeshFailpoints
import MeshJournal
import MeshTransport
import Metrics
import NIOConcurrencyHelpers

/// What the inline pass of one receive job did, returned from its transaction to its commit.
struct InlinePass: Sendable {
    /// What became of a row whose command ID has a synchronous chain.
    enum Fate: Sendable {
        /// Its chain ran inline and ended (handled, or dead-lettered): nothing to queue.
        case done
        /// To queue on its lane (reserved) after the commit: the lane was busy, or the inline attempt failed and
        /// the message is retried there.
        case queue(DispatchLane, DispatchItem)
    }

    /// By row index; rows without an entry take the lane path of any message.
    var fates: [Int: Fate] = [:]
    /// Responses journaled by the pass, transmitted right after the commit (``MeshNode/transmitCommitted(_:)``).
    var responses: [(message: OutboundMessage, seq: UInt64)] = []
}

extension MeshNode {
    /// Runs, inside the transaction that journals a received batch (on the node's thread, right after the rows
    /// were written), the synchronous chains of its new messages, and writes their invocations, statuses and
    /// responses in the same transaction. A message whose lane is not idle, or whose inline attempt failed, is
    /// reserved on its lane (``DispatchLane/reserve()``) so that no later message of its command ID overtakes it;
    /// `reserved` collects those lanes so a failed job gives the reservations back.
    func runInline(_ rows: [InboundMessage], results: [InboundAppendResult], reserved: NIOLockedValueBox<[DispatchLane]>, context: WorkerContext) throws -> InlinePass {
        var pass = InlinePass()
        for (index, result) in results.enumerated() {
            guard case .inserted(let id) = result, rows[index].status == .received, rows[index].kind != .response,
                  let (chain, lane) = dispatcher.inlineChain(for: rows[index].commandID) else { continue }
            let item = DispatchItem(rows[index], id: id)
            func reserve() {
                lane.reserve()
                reserved.withLockedValue { $0.append(lane) }
            }
            guard lane.isIdle else {
                reserve()
                pass.fates[index] = .queue(lane, item)
                continue
            }
            let failure = try runChain(chain, item, context: context, pass: &pass)
            if let failure {
                metrics.handlerErrors.increment()
                if configuration.maxHandlerAttempts <= 1 {
                    try deadLetter(item, failure: failure, context: context, pass: &pass)
                    pass.fates[index] = .done
                } else {
                    try Journal.writeInboundStatus(id: id, commandID: item.commandID, .failed, attempts: 1, error: failure, context: context)
                    reserve()
                    var retry = item
                    retry.attempts = 1
                    pass.fates[index] = .queue(lane, retry)
                }
            } else {
                pass.fates[index] = .done
            }
        }
        return pass
    }

    /// Runs `chain` once on `item` (attempt 1) and writes each invocation; on success writes the status and, for a
    /// request, the response. Returns the failure text if a handler threw (nothing more is written then).
    private func runChain(_ chain: [SyncHandler], _ item: DispatchItem, context: WorkerContext,
                          pass: inout InlinePass) throws -> String? {
        let data: MeshData
        do {
            data = try MeshCodec.decode(item.payload)
        } catch {
            try Journal.writeInboundStatus(id: item.inboundID, commandID: item.commandID, .dead, attempts: 1, error: noteUndecodable(item, error), context: context)
            return nil
        }
        let info = MessageInfo(originNode: item.originNode, originSeq: item.originSeq, sender: item.peer, commandID: item.commandID,
                               kind: item.kind, attempt: 1)
        var firstResponse: MeshData?
        // A chain of one handler that returns: its invocation goes with the status, into the state row.
        var ending: Journal.FinishedInvocation?
        // A request's response, if one handler's: encoded once for its invocation's record and the message.
        var encoded: EncodedResponse?
        for (index, handler) in chain.enumerated() {
            if index > 0 { Failpoint.pass("handler.between", note: info.messageID) }
            let started = WallClock.nowMs()
            switch Result(catching: { try handler(data, info) }) {
            case .success(let response):
                if firstResponse == nil { firstResponse = response }
                var invocation = Journal.FinishedInvocation(inboundID: item.inboundID, handlerIndex: index, attempt: 1, startedAt: started,
                                                            outcome: .ok, response: response)
                if chain.count == 1 {
                    if item.kind == .request, let response { encoded = try? EncodedResponse(response) }
                    invocation.encodedResponse = encoded
                    ending = invocation
                } else {
                    try Journal.write(invocation, context: context)
                }
            case .failure(let error):
                let text = "\(error)"
                try Journal.write(.init(inboundID: item.inboundID, handlerIndex: index, attempt: 1, startedAt: started, outcome: .error,
                                        error: text), context: context)
                return text
            }
        }
        try Journal.writeInboundStatus(id: item.inboundID, commandID: item.commandID, .handled, attempts: 1, error: nil, invocation: ending,
                                       context: context)
        if item.kind == .request {
            try writeResponse(to: item, encoded.map { .encoded($0) } ?? .data(firstResponse ?? MeshData()), context: context, pass: &pass)
        }
        return nil
    }

    /// Dead-letters `item` after its last attempt failed inline, answering a request with the error.
    private func deadLetter(_ item: DispatchItem, failure: String, context: WorkerContext, pass: inout InlinePass) throws {
        noteDeadLetter(item, failure: failure)
        try Journal.writeInboundStatus(id: item.inboundID, commandID: item.commandID, .dead, attempts: 1, error: failure, context: context)
        if item.kind == .request { try writeResponse(to: item, .error(failure), context: context, pass: &pass) }
    }

    /// Journals the response to `item` in the pass's transaction; it is transmitted after the commit.
    private func writeResponse(to item: DispatchItem, _ body: ResponseBody, context: WorkerContext, pass: inout InlinePass) throws {
        guard let (message, _) = responseMessage(to: item, with: body) else { return }
        pass.responses.append((message, try Journal.writeOutbound([message], context: context)[0]))
    }
}
