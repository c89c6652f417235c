import Logging
import Metrics
import MeshCore
import MeshFailpoints
import MeshJournal
import MeshTransport
import NIOConcurrencyHelpers
import NIOCore
import Synchronization

extension MeshNode {
    /// A read batch from the transport (on its event loop, through the ``InboundRouter``): membership is handled
    /// here; every other message is decoded into a journal row and the batch goes to the journal's writer in one
    /// job. Its commit confirms and dispatches the batch (``finishReceive(_:)``), in arrival order, since the
    /// writer runs jobs in submission order. Must not block.
    func received(_ batch: [ReceivedMessage]) {
        LatencyProbe.mark(.batchReceived)
        var rows: [InboundMessage] = []
        var tokens: [DeliveryToken] = []
        var envelopes: [Envelope] = []
        rows.reserveCapacity(batch.count)
        tokens.reserveCapacity(batch.count)
        envelopes.reserveCapacity(batch.count)
        let overloaded = inboundBacklog.load(ordering: .relaxed) >= Self.maxInboundBacklog
        // The kind of each command ID's chain, looked up once per batch; whether any message may run inline.
        var chains: [UInt16: Dispatcher.ChainKind] = [:]
        var inline = false
        for message in batch {
            if Self.isControl(message.commandID) {
                receiveControl(message)
                continue
            }
            if overloaded && message.reliability == .unreliable {
                metrics.droppedUnreliable.increment()
                continue
            }
            guard let envelope = Envelope.decode(message.payload) else {
                if message.token.needsConfirmation { transport.reject(message.token, reason: "malformed envelope") }
                logLimited(.notice, "dropped a malformed message", cause: "malformed", metadata: ["mesh.peer": "\(message.address)"])
                continue
            }
            // A response is journaled `handled`: the request waiting for it takes it right after the commit, and no
            // handler ever runs for it, so it never enters the open set (saving an index entry and a status write).
            let chain = envelope.kind == .response ? .none : chains[message.commandID] ?? dispatcher.chainKind(message.commandID)
            chains[message.commandID] = chain
            let status: InboundStatus = envelope.kind == .response ? .handled : chain == .none ? .unhandled : .received
            if chain == .synchronous { inline = true }
            // A node hears from a few peers: their id and address texts are made once, not per message.
            let (peer, node) = addressTexts.texts(address: message.address, node: message.node)
            var row = InboundMessage(
                originNode: node, originSeq: envelope.originSeq, commandID: message.commandID,
                kind: envelope.kind, peer: peer, payload: envelope.payload,
                correlationID: envelope.correlationID, replayOf: envelope.replayOf, status: status)
            // Its inline pass writes its state row once, with the status its chain ends in.
            row.stateWrittenInJob = chain == .synchronous
            if let relay = envelope.relay {
                row.relay = relay
                row.forwards = relayForwards(relay, commandID: message.commandID, kind: envelope.kind, payload: envelope.payload)
            }
            rows.append(row)
            tokens.append(message.token)
            envelopes.append(envelope)
        }
        guard !rows.isEmpty else { return }
        let (journaled, confirmations, decoded) = (rows, tokens, envelopes)
        inboundBacklog.add(journaled.count, ordering: .relaxed)
        // Lanes reserved by the inline pass, given back if the job fails.
        let reserved = NIOLockedValueBox<[DispatchLane]>([])
        var pass: (@Sendable (WorkerContext, [InboundAppendResult]) throws -> InlinePass)?
        if inline {
            pass = { context, results in try self.runInline(journaled, results: results, reserved: reserved, context: context) }
        }
        // A lone message (latency-bound traffic) is committed before this returns — it runs on the node's loop,
        // inside the transport's read handling — so its acknowledgement, its confirmation and an inline response
        // leave in one datagram. A burst is acknowledged first and committed right after: senders move their
        // windows on acknowledgements, and a burst's commit is the longer wait.
        journal.appendInboundRelaying(journaled, commitAtOnce: journaled.count == 1, then: pass) { result in
            self.inboundBacklog.subtract(journaled.count, ordering: .relaxed)
            switch result {
            case .success(let (results, forwards, inlinePass)):
                self.finishReceive(PreparedBatch(rows: journaled, tokens: confirmations, envelopes: decoded, results: results,
                                                 forwards: forwards, inline: inlinePass ?? InlinePass()))
            case .failure(let error):
                for lane in reserved.withLockedValue({ $0 }) { lane.release() }
                // Not durable: refuse, so every sender sees a failure instead of a silent loss.
                self.logLimited(.error, "could not journal received messages; refused them", cause: "receive",
                                metadata: ["mesh.count": "\(journaled.count)", "mesh.error": "\(error)"])
                for token in confirmations where token.needsConfirmation {
                    self.transport.reject(token, reason: "receiver journal: \(error)")
                }
            }
        }
    }

    /// Whether a journaled row's confirmation may wait for a datagram going to its sender anyway: a response (its
    /// sender waits for nothing), or a request whose handler runs on its lane after this commit (its sender waits
    /// for the response). A duplicate is confirmed at once: its sender is resending it.
    private func mayConfirmLater(_ row: InboundMessage, _ result: InboundAppendResult, _ fate: InlinePass.Fate?) -> Bool {
        guard case .inserted = result else { return false }
        switch (row.kind, fate) {
        case (.response, _): return true
        case (.request, .queue?): return true
        case (.request, nil): return row.status == .received
        default: return false
        }
    }

    /// A batch whose rows are journaled, ready to be confirmed and dispatched.
    struct PreparedBatch: Sendable {
        let rows: [InboundMessage]
        let tokens: [DeliveryToken]
        let envelopes: [Envelope]
        let results: [InboundAppendResult]
        /// Sequence numbers of the relay forwards journaled with each row.
        let forwards: [[UInt64]]
        /// What the synchronous chains did in the batch's transaction.
        let inline: InlinePass
    }

    /// On the journal's writer thread, right after the batch committed: confirm it to the senders, transmit relay
    /// forwards, hand responses to the requests waiting for them, and queue the rest in their command IDs' lanes
    /// (requests at once, other messages once the confirmations left: ``LaneHandoff``).
    func finishReceive(_ prepared: PreparedBatch) {
        LatencyProbe.mark(.batchCommitted)
        let (rows, tokens, envelopes, results) = (prepared.rows, prepared.tokens, prepared.envelopes, prepared.results)
        // Once per newly journaled message (not per batch, whose size depends on timing): `@N` is the N-th message.
        for result in results { if case .inserted = result { Failpoint.pass("inbound.after-insert") } }
        // Confirmations nobody waits for ride on the next datagram to their sender, if one leaves within the
        // transport's `maxAckDelay`: a request's for an async handler rides on its response (the requester waits for
        // that, and the node's thread goes from this commit straight to the response's instead of flushing a
        // confirmation first), a response's on the requester's next message. One datagram fewer each way.
        var confirmNow: [DeliveryToken] = []
        var confirmLater: [DeliveryToken] = []
        for (index, token) in tokens.enumerated() where token.needsConfirmation {
            if mayConfirmLater(rows[index], results[index], prepared.inline.fates[index]) {
                confirmLater.append(token)
            } else {
                confirmNow.append(token)
            }
        }
        transport.confirm(confirmNow)
        transport.confirm(confirmLater, mayWait: true)
        for (index, seqs) in prepared.forwards.enumerated() where !seqs.isEmpty {
            transmitCommitted(Array(zip(rows[index].forwards, seqs)))
        }
        transmitCommitted(prepared.inline.responses)
        var catchUps: Set<UInt16> = []  // one catch-up pass per command ID and batch is enough
        defer { for commandID in catchUps { laneHandoff.hand(.catchUp, to: lane(commandID), reserved: false, urgent: false) } }
        for (index, result) in results.enumerated() {
            guard case .inserted(let id) = result else {
                metrics.duplicates.increment()
                continue
            }
            metrics.received.increment()
            if rows[index].kind == .response {
                // A response is consumed by the request waiting for it (if any), not by handlers.
                if let requestID = rows[index].correlationID {
                    let envelope = envelopes[index]
                    if envelope.isError {
                        requests.resolve(requestID, .failure(MeshError(.handlerError, String(decoding: envelope.payload, as: UTF8.self))))
                    } else if let data = try? MeshCodec.decode(envelope.payload) {
                        requests.resolve(requestID, .success(data))
                    } else {
                        requests.resolve(requestID, .failure(MeshError(.decode, "undecodable response to \(requestID)")))
                    }
                }
                continue
            }
            switch prepared.inline.fates[index] {
            case .done: continue
            case .queue(let lane, let item):
                laneHandoff.hand(.message(item), to: lane, reserved: true, urgent: item.kind == .request)
                continue
            case nil: break
            }
            guard rows[index].status == .received else {
                // Journaled `unhandled`, but a handler may have been registered since: its catch-up pass could
                // have read the open rows before this one committed, so ask for another (claims prevent doubles).
                if !handlers(for: rows[index].commandID).isEmpty { catchUps.insert(rows[index].commandID) }
                continue
            }
            laneHandoff.hand(.message(DispatchItem(rows[index], id: id)), to: lane(rows[index].commandID), reserved: false,
                             urgent: rows[index].kind == .request)
        }
    }
}
