import Logging
import MeshCore
import Metrics
import MeshJournal
import MeshFailpoints
import Synchronization

/// The dispatcher's work: running a message's handler chain on its command ID's lane (retries, dead letters, the
/// response to a request) and the catch-up pass after a first registration. Runs on the lane's task.
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
        LatencyProbe.mark(.laneStart)
        let handlers = handlers(for: item.commandID)
        guard !handlers.isEmpty else {
            try? await journal.setInboundStatus(id: item.inboundID, .unhandled, attempts: item.attempts)
            return
        }
        let data: MeshData
        do {
            data = try MeshCodec.decode(item.payload)
        } catch {
            try? await journal.setInboundStatus(id: item.inboundID, .dead, attempts: item.attempts + 1, error: noteUndecodable(item, error))
            return
        }
        var attempt = item.attempts
        while !Task.isCancelled {
            attempt += 1
            let info = MessageInfo(originNode: item.originNode, originSeq: item.originSeq, sender: item.peer, commandID: item.commandID,
                                   kind: item.kind, attempt: attempt, isResumed: item.inboundID <= resumeBoundary.load(ordering: .relaxed))
            var failure: String?
            var firstResponse: MeshData?
            // Invocation records and statuses are posted to the journal writer (ordered, batched by group commit)
            // rather than awaited one by one.
            for (index, handler) in handlers.enumerated() {
                if index > 0 { Failpoint.pass("handler.between", note: info.messageID) }
                let ticket = journal.postInvocationStart(inboundID: item.inboundID, handlerIndex: index, attempt: attempt)
                do {
                    let response = try await handler.call(data, info)
                    LatencyProbe.mark(.handlerReturned)
                    if firstResponse == nil { firstResponse = response }
                    // The chain's last record carries the message's status: one writer job, not two — and, for a
                    // request, its response, so a crash never leaves it handled but unanswered.
                    guard index == handlers.count - 1 else {
                        journal.postInvocationFinish(ticket, outcome: .ok, response: response)
                        continue
                    }
                    // A request's response, if one handler's, is encoded once for its invocation's record and the message.
                    let answering = item.kind == .request && !item.isAnswered
                    let encoded = answering && handlers.count == 1 ? response.flatMap { try? EncodedResponse($0) } : nil
                    if answering, let (answer, _) = responseMessage(to: item, with: encoded.map { .encoded($0) } ?? .data(firstResponse ?? MeshData())) {
                        journal.finishInvocation(ticket, outcome: .ok, response: response, encodedResponse: encoded,
                                                 status: (.handled, attempt, nil), answering: answer) {
                            self.answerCommitted(answer, $0)
                        }
                    } else {
                        journal.postInvocationFinish(ticket, outcome: .ok, response: response, status: (.handled, attempt, nil))
                    }
                } catch {
                    // Cancelled at shutdown: neither a failure nor an attempt; the next start runs the chain again.
                    if Task.isCancelled { return }
                    failure = "\(error)"
                    journal.postInvocationFinish(ticket, outcome: .error, error: failure)
                    break
                }
            }
            guard let failure else { return }
            metrics.handlerErrors.increment()
            if attempt >= configuration.maxHandlerAttempts {
                noteDeadLetter(item, failure: failure)
                if item.kind == .request && !item.isAnswered, let (answer, _) = responseMessage(to: item, with: .error(failure)) {
                    journal.setInboundStatus(id: item.inboundID, .dead, attempts: attempt, error: failure, answering: answer) {
                        self.answerCommitted(answer, $0)
                    }
                } else {
                    journal.postInboundStatus(id: item.inboundID, .dead, attempts: attempt, error: failure)
                }
                return
            }
            journal.postInboundStatus(id: item.inboundID, .failed, attempts: attempt, error: failure)
        }
    }

    /// From the commit of a response journaled with its request's final status (on the node's thread): transmits it
    /// (behind the resend of older messages to the requester, if one is running); logs a journal failure (then
    /// nothing was written, and the request runs again at the next start). A full disk does not end up here: the
    /// writer retries the job until space returns.
    private func answerCommitted(_ answer: OutboundMessage, _ result: Result<UInt64, any Error>) {
        switch result {
        case .success(let seq):
            LatencyProbe.mark(.responseCommitted)
            Failpoint.pass("handler.after-chain", note: answer.correlationID ?? "")
            Failpoint.pass("outbound.after-insert")
            transmitCommitted([(answer, seq)])
        case .failure(let error):
            logLimited(.error, "could not journal a response", cause: "response",
                       metadata: ["mesh.request": "\(answer.correlationID ?? "")", "mesh.error": "\(error)"])
        }
    }

    /// Counts and logs a message dead-lettered because its handlers kept failing (the lane's and the inline path's).
    func noteDeadLetter(_ item: DispatchItem, failure: String) {
        metrics.deadLetters.increment()
        logger.warning("dead-lettered a message whose handler keeps failing", metadata: [
            "mesh.message": "\(item.originNode):\(item.originSeq)", "mesh.command": "\(item.commandID)", "mesh.error": "\(failure)",
        ])
    }

    /// Logs a message dead-lettered because its payload does not decode; returns the error text to journal.
    func noteUndecodable(_ item: DispatchItem, _ error: any Error) -> String {
        logger.warning("dead-lettered an undecodable message", metadata: ["mesh.message": "\(item.originNode):\(item.originSeq)"])
        return "undecodable payload: \(error)"
    }
}
