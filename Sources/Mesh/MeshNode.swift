import Logging
import MeshCore
import Metrics
import MeshJournal
import MeshTransport
import NIOConcurrencyHelpers
import NIOCore
import Synchronization
import MeshFailpoints

/// A Mesh node: the Diarkis mesh API on top of a journal and the authenticated UDP transport, where every
/// message is committed to the node's SQLite journal before it moves.
///
/// - `send` commits the message (status `pending`) before the first datagram leaves; it is marked `acked` when
///   the receiver confirms it — which the receiver does only after committing it to *its* journal — or `failed`
///   with the error once the transport gives up.
/// - A received message is committed before it is confirmed and before any handler runs; a duplicate (same
///   origin node and sequence) is confirmed again but neither journaled nor dispatched twice.
/// - Handlers run per command ID in arrival order, several per ID in registration order; every invocation is
///   journaled (start, finish, outcome, error, response).
/// - After a crash, ``start(configuration:logger:)`` on the same journal resends every pending outbound message
///   (same message id, so the receiver deduplicates) and re-dispatches every message whose handlers had not all
///   finished.
///
/// ```swift
/// let node = try await MeshNode.start(configuration: .init(address: "127.0.0.1:8000", journalPath: "node.sqlite",
///                                                          clusterKey: key), logger: logger)
/// try node.handleCommand(1024) { data in print(try data.getString("myName")); return nil }
/// try await node.send(1024, to: "127.0.0.1:8001", ["myName": "Jon"])
/// await node.shutdown()
/// ```
public final class MeshNode: Sendable {
    /// A handler: receives the message data, returns an optional response (for requests) or throws.
    public typealias Handler = @Sendable (MeshData, MessageInfo) async throws -> MeshData?

    /// Command IDs Mesh keeps for its own protocol (membership, health): 65000...65535. Registering one throws.
    public static let reservedCommandIDs: ClosedRange<UInt16> = 65000...65535

    /// The node's settings.
    public let configuration: MeshConfiguration
    /// The journal (for audits and tools; the node owns its lifecycle).
    public let journal: Journal
    /// The address the node listens on, `host:port`.
    public let address: String
    /// This node's id (the journal's) and boot epoch.
    public var identity: JournalIdentity { journal.identity }

    let transport: MeshTransport
    let logger: Logger
    private let state: NIOLockedValueBox<State>
    private let outcomes = OutcomeQueue()
    /// What this node knows about the cluster (see `MeshNode+Membership.swift`).
    let membership: NIOLockedValueBox<MembershipTable>
    let subscribers = NIOLockedValueBox(Subscribers())
    /// Set by the maintenance loop while the journal's disk is below ``MeshConfiguration/minFreeDiskBytes``.
    let lowDisk = Atomic<Bool>(false)
    let metrics = NodeMetrics()

    struct State {
        var handlers: [UInt16: [Handler]] = [:]
        var lanes: [UInt16: DispatchLane] = [:]
        var tasks: [Task<Void, Never>] = []
        var stopped = false
        /// Tasks that only sleep between rounds: cancelled at shutdown.
        var cancelOnStop: [Task<Void, Never>] = []
        /// Requests waiting for their response, by request message id.
        var pendingRequests: [String: ResponseSlot] = [:]
    }

    private init(configuration: MeshConfiguration, journal: Journal, transport: MeshTransport, logger: Logger) {
        self.configuration = configuration
        self.journal = journal
        self.transport = transport
        self.logger = logger
        let address = MeshAddress.text(transport.localAddress)
        self.address = address
        self.state = NIOLockedValueBox(State())
        self.membership = NIOLockedValueBox(Self.makeMembershipTable(configuration: configuration, identity: journal.identity, address: address))
    }

    var isStopped: Bool { state.withLockedValue { $0.stopped } }

    /// Opens the journal (a new boot epoch), binds the transport, resends what was never acknowledged and
    /// re-dispatches what was never handled. Handlers can be registered before messages arrive: a message for
    /// a command ID without handler is journaled `unhandled` and dispatched once a handler is registered.
    public static func start(configuration: MeshConfiguration, logger: Logger) async throws -> MeshNode {
        try configuration.validate()
        let bind = try MeshAddress.parse(configuration.address)
        let journal = try await Journal.open(path: configuration.journalPath,
                                             configuration: .init(durability: configuration.durability,
                                                                  storesPayloadJSON: configuration.storesPayloadJSON),
                                             logger: logger)
        let transport: MeshTransport
        do {
            var t = TransportConfiguration(bindAddress: bind, nodeID: NodeID(hex: journal.identity.nodeID)!,
                                           epoch: UInt32(truncatingIfNeeded: journal.identity.bootEpoch), keyring: configuration.keyring)
            t.retryInterval = configuration.retryInterval
            t.retryTimeout = configuration.retryTimeout
            t.peerTimeout = configuration.peerTimeout
            t.encrypt = configuration.encrypt
            transport = try await MeshTransport.bind(configuration: t, logger: logger)
        } catch {
            await journal.close()
            throw error
        }
        let node = MeshNode(configuration: configuration, journal: journal, transport: transport, logger: logger)
        let outcomeTask = Task { await node.recordOutcomes() }
        do {
            try await node.resume()
        } catch {
            await node.shutdown()
            outcomeTask.cancel()
            throw error
        }
        let inboundTask = Task { await node.receiveLoop() }
        await node.loadKnownPeers()
        let eventsTask = Task { await node.watchTransportEvents() }
        let membershipTask = Task { await node.membershipLoop() }
        node.updateDiskState()
        let maintenanceTask = Task { await node.maintenanceLoop() }
        node.state.withLockedValue {
            $0.tasks += [outcomeTask, inboundTask, eventsTask]
            $0.cancelOnStop += [membershipTask, maintenanceTask]
        }
        logger.info("mesh node started", metadata: [
            "mesh.address": "\(node.address)", "mesh.node": "\(journal.identity.nodeID)", "mesh.epoch": "\(journal.identity.bootEpoch)",
        ])
        return node
    }

    /// Stops receiving, lets running handlers finish, and closes the transport and the journal. Requests
    /// still waiting fail with `peerDown`.
    public func shutdown() async {
        let (tasks, waiting, sleepers, wasStopped) = state.withLockedValue { state in
            let wasStopped = state.stopped
            state.stopped = true
            defer { state.pendingRequests.removeAll() }
            return (state.tasks, Array(state.pendingRequests.values), state.cancelOnStop, wasStopped)
        }
        for sleeper in sleepers { sleeper.cancel() }
        if !wasStopped { await announceLeaving() }
        finishMembershipEvents()
        for waiter in waiting { waiter.resolve(.failure(MeshError(.peerDown, "the node shut down"))) }
        await transport.close()
        outcomes.finish()
        // The receive loop ends with the transport; once it has, every journaled message is in its lane.
        for task in tasks + sleepers { await task.value }
        let lanes = state.withLockedValue { Array($0.lanes.values) }
        for lane in lanes { lane.finish() }
        // Let running handlers finish, within the shutdown timeout.
        let timeout = configuration.shutdownTimeout
        let drainedInTime = await Self.race(timeout: timeout) {
            for lane in lanes { await lane.drained() }
        }
        if !drainedInTime {
            logger.warning("handlers still running after the shutdown timeout; cancelling them", metadata: ["mesh.timeout": "\(timeout)"])
            for lane in lanes { lane.cancel() }
        }
        // The last view of the cluster, so the next start rejoins through it.
        await persistMembers(membership.withLockedValue { $0.members }.filter { $0.isReachable })
        await journal.close()
    }

    /// Runs `work` and returns true if it finished within `timeout`, false otherwise — without waiting for it
    /// past the timeout (a task group would join it), so a hung handler cannot hang the caller.
    static func race(timeout: Duration, _ work: @escaping @Sendable () async -> Void) async -> Bool {
        let once = NIOLockedValueBox<CheckedContinuation<Bool, Never>?>(nil)
        return await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
            once.withLockedValue { $0 = continuation }
            Task {
                await work()
                once.withLockedValue { $0.take() }?.resume(returning: true)
            }
            Task {
                try? await Task.sleep(for: timeout)
                once.withLockedValue { $0.take() }?.resume(returning: false)
            }
        }
    }

    // MARK: - Handlers

    /// Registers a handler for `commandID` (Diarkis `HandleCommand`). Several handlers may share an ID; they run
    /// in registration order for each message. Registering after start works; messages that arrived without a
    /// handler (`unhandled`) are then dispatched, in their original order.
    /// - Throws: ``MeshError`` (`reservedCommand`) for an ID in ``reservedCommandIDs``.
    public func handleCommand(_ commandID: UInt16, _ handler: @escaping Handler) throws(MeshError) {
        guard !Self.reservedCommandIDs.contains(commandID) else {
            throw MeshError(.reservedCommand, "command ID \(commandID) is reserved for Mesh (\(Self.reservedCommandIDs))")
        }
        let catchUp: DispatchLane? = state.withLockedValue { state in
            let first = state.handlers[commandID]?.isEmpty ?? true
            state.handlers[commandID, default: []].append(handler)
            guard first else { return nil }
            return lane(commandID, &state)
        }
        catchUp?.enqueue(.catchUp)
    }

    /// Registers a handler that takes only the data.
    public func handleCommand(_ commandID: UInt16, _ handler: @escaping @Sendable (MeshData) async throws -> MeshData?) throws(MeshError) {
        try handleCommand(commandID) { data, _ in try await handler(data) }
    }

    func handlers(for commandID: UInt16) -> [Handler] {
        state.withLockedValue { $0.handlers[commandID] ?? [] }
    }

    private func lane(_ commandID: UInt16, _ state: inout State) -> DispatchLane {
        if let lane = state.lanes[commandID] { return lane }
        let lane = DispatchLane(commandID: commandID, node: self)
        state.lanes[commandID] = lane
        return lane
    }

    func lane(_ commandID: UInt16) -> DispatchLane {
        state.withLockedValue { lane(commandID, &$0) }
    }

    // MARK: - Sending

    /// A journaled message on its way: ``outcome()`` waits until the receiver's journal has it (or it failed).
    public struct Delivery: Sendable {
        /// The message id, `node_id:seq`, as in the audit views.
        public let messageID: String
        let receipt: MeshTransport.Receipt

        /// `.confirmed` once the message is in the receiver's journal; `.failed` with the transport's error.
        public func outcome() async -> MessageOutcome { await receipt.outcome() }
    }

    /// Sends `data` reliably to `address` for `commandID` (Diarkis `Send`). Returns once the message is
    /// committed to this node's journal and queued; await ``Delivery/outcome()`` to know it reached the
    /// receiver's journal.
    @discardableResult
    public func send(_ commandID: UInt16, to address: String, _ data: MeshData) async throws -> Delivery {
        try await send(commandID, to: address, data, kind: .send)
    }

    /// Sends `data` once, unreliably (Diarkis `USend`), journaled all the same.
    @discardableResult
    public func usend(_ commandID: UInt16, to address: String, _ data: MeshData) async throws -> Delivery {
        try await send(commandID, to: address, data, kind: .usend)
    }

    /// Sends a `Codable` value (encoded with ``MeshDataEncoder``).
    @discardableResult
    public func send<T: Encodable>(_ commandID: UInt16, to address: String, _ value: T) async throws -> Delivery {
        try await send(commandID, to: address, try MeshDataEncoder().encode(value), kind: .send)
    }

    /// Sends a request and waits for its response (Diarkis `SendRequest` / `SendRPC`). The response is what the
    /// remote handlers returned: the first non-nil return, in registration order, or an empty map.
    /// - Throws: ``MeshError``: `handlerError` (with the remote error text) if a remote handler threw on every
    ///   attempt, `timeout` without a response within `timeout`, `peerDown` if the request could not be
    ///   delivered, `decode` for an undecodable response.
    public func sendRequest(_ commandID: UInt16, to address: String, _ data: MeshData,
                            timeout: Duration = .seconds(3)) async throws -> MeshData {
        let target = try MeshAddress.parse(address)
        let payload = try Self.encodePayload(data)
        try checkDiskSpace()
        let seq = try await journal.appendOutbound(OutboundMessage(
            commandID: commandID, kind: .request, peer: MeshAddress.text(target), payload: payload,
            payloadJSON: MeshJSON.string(from: data)))
        let requestID = "\(journal.identity.nodeID):\(seq)"
        let slot = ResponseSlot()
        state.withLockedValue { $0.pendingRequests[requestID] = slot }
        // Transmit here rather than from a new task (one thread hop less on the request's path); what becomes
        // of the request message and the timeout are watched off that path.
        do {
            let delivery = try await transmit(seq: seq, commandID: commandID, kind: .request, to: target, payload: payload,
                                              correlationID: nil)
            Task {
                if case .failed(let error) = await delivery.outcome() { resolveRequest(requestID, .failure(MeshError(error))) }
            }
        } catch {
            resolveRequest(requestID, .failure(error))
        }
        let timer = Task {
            guard (try? await Task.sleep(for: timeout)) != nil else { return }  // cancelled: the request finished
            resolveRequest(requestID, .failure(MeshError(.timeout, "no response to \(requestID) within \(timeout)")))
        }
        defer { timer.cancel() }
        return try await slot.value()
    }

    /// The MeshCodec bytes of `data`, or an `encoding` error.
    static func encodePayload(_ data: MeshData) throws(MeshError) -> [UInt8] {
        do {
            return try MeshCodec.encode(data)
        } catch {
            throw MeshError(.encoding, "\(error)")
        }
    }

    /// Completes a waiting request once; later results (a late response, a timeout after it) are ignored.
    func resolveRequest(_ requestID: String, _ result: Result<MeshData, any Error>) {
        let slot = state.withLockedValue { $0.pendingRequests.removeValue(forKey: requestID) }
        slot?.resolve(result)
    }

    /// Sends the response to a request (kind `response`, correlated with the request's message id).
    enum ResponseBody: Sendable {
        case data(MeshData)
        case error(String)
    }

    func respond(to item: DispatchItem, with response: ResponseBody) async {
        guard let target = try? MeshAddress.parse(item.peer) else { return }
        let requestID = "\(item.originNode):\(item.originSeq)"
        do {
            let data: MeshData
            let isError: Bool
            switch response {
            case .data(let d):
                data = d
                isError = false
            case .error(let text):
                data = ["error": .string(text)]
                isError = true
            }
            let payload = isError ? Array(((try? data.getString("error")) ?? "").utf8) : try MeshCodec.encode(data)
            let seq = try await journal.appendOutbound(OutboundMessage(
                commandID: item.commandID, kind: .response, peer: item.peer, payload: payload,
                payloadJSON: MeshJSON.string(from: data), correlationID: requestID))
            let envelope = Envelope(kind: .response, originSeq: seq, correlationID: requestID, isError: isError, payload: payload)
            let receipt = try await transport.send(envelope.encode(), commandID: item.commandID, to: target)
            outcomes.push((seq, receipt))
        } catch {
            logger.error("could not send a response", metadata: ["mesh.request": "\(requestID)", "mesh.error": "\(error)"])
        }
    }

    /// The transport's counters since start (`datagrams_in`, `datagrams_out`, `retransmits`, `fast_retransmits`,
    /// `timeouts`, `duplicates`, `replays`, `stale`, `dropped_over_limit`, `auth_failures`, `malformed`).
    public func transportStatistics() async throws -> [String: Int] { try await transport.statistics() }

    /// Re-drives a recorded message (`mesh replay`): new traffic from this node, journaled with `replay_of`
    /// set to the original message id so audits tell live from replayed. `payload` is the recorded MeshCodec
    /// encoding; responses cannot be re-driven.
    /// - Throws: ``MeshError`` (`invalidAddress`, `invalidConfiguration` for a response, `diskFull`), journal errors.
    @discardableResult
    public func redrive(_ commandID: UInt16, kind: MessageKind, payload: [UInt8], replayOf: String,
                        to address: String) async throws -> Delivery {
        guard kind != .response else { throw MeshError(.invalidConfiguration, "responses cannot be re-driven") }
        let target = try MeshAddress.parse(address)
        try checkDiskSpace()
        let seq = try await journal.appendOutbound(OutboundMessage(
            commandID: commandID, kind: kind, peer: MeshAddress.text(target), payload: payload, replayOf: replayOf))
        return try await transmit(seq: seq, commandID: commandID, kind: kind, to: target, payload: payload, correlationID: nil,
                                  replayOf: replayOf)
    }

    func send(_ commandID: UInt16, to address: String, _ data: MeshData, kind: MessageKind,
              correlationID: String? = nil) async throws -> Delivery {
        let target = try MeshAddress.parse(address)
        let payload = try Self.encodePayload(data)
        let peer = MeshAddress.text(target)
        try checkDiskSpace()
        let seq = try await journal.appendOutbound(OutboundMessage(
            commandID: commandID, kind: kind, peer: peer, payload: payload,
            payloadJSON: configuration.storesPayloadJSON ? MeshJSON.string(from: data) : nil, correlationID: correlationID))
        Failpoint.pass("outbound.after-insert")
        return try await transmit(seq: seq, commandID: commandID, kind: kind, to: target, payload: payload, correlationID: correlationID)
    }

    func transmit(seq: UInt64, commandID: UInt16, kind: MessageKind, to target: SocketAddress, payload: [UInt8],
                  correlationID: String?, replayOf: String? = nil, relay: String? = nil) async throws -> Delivery {
        let envelope = Envelope(kind: kind, originSeq: seq, correlationID: correlationID, replayOf: replayOf, relay: relay, payload: payload)
        let receipt = try await transport.send(envelope.encode(), commandID: commandID, to: target,
                                               reliability: kind == .usend ? .unreliable : .reliable)
        outcomes.push((seq, receipt))
        metrics.transmitted.increment()
        return Delivery(messageID: "\(journal.identity.nodeID):\(seq)", receipt: receipt)
    }

    /// Journals outcomes as they arrive: everything queued is taken at once, its outcomes awaited in order,
    /// and the acknowledgements journaled in one call (one group-commit job per batch, not per message).
    private func recordOutcomes() async {
        while let items = await outcomes.drain() {
            var acked: [UInt64] = []
            for (seq, receipt) in items {
                switch await receipt.outcome() {
                case .confirmed, .sent: acked.append(seq)
                case .failed(let error) where error.code == .closed:
                    // This node is shutting down: the message stays pending and the next start resends it.
                    continue
                case .failed(let error):
                    metrics.failed.increment()
                    do {
                        try await journal.markOutboundFailed(seq, error: error.description)
                    } catch {
                        logger.error("could not journal a send failure", metadata: ["mesh.seq": "\(seq)", "mesh.error": "\(error)"])
                    }
                }
            }
            guard !acked.isEmpty else { continue }
            Failpoint.pass("outbound.after-send")
            do {
                try await journal.markOutboundAcked(acked)
            } catch {
                logger.error("could not journal acknowledgements", metadata: ["mesh.count": "\(acked.count)", "mesh.error": "\(error)"])
            }
        }
    }

    // MARK: - Receiving

    /// Journals received batches in a pipeline: up to 32 batches' appends are in flight at once (so group
    /// commit can gather them), while confirmations and dispatch still happen batch by batch, in arrival order,
    /// each only after its own batch committed.
    private func receiveLoop() async {
        await withTaskGroup(of: Void.self) { group in
            let (ordered, queue) = AsyncStream.makeStream(of: Task<PreparedBatch?, Never>.self, bufferingPolicy: .unbounded)
            let slots = AsyncSemaphore(32)
            group.addTask {
                for await task in ordered {
                    if let prepared = await task.value { await self.finishReceive(prepared) }
                    slots.signal()
                }
            }
            for await batch in transport.inbound {
                await slots.wait()
                queue.yield(Task { await self.journalBatch(batch) })
            }
            queue.finish()
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
    }

    /// Journals a batch of received messages, confirms them, then dispatches the new ones.
    func receive(_ batch: [ReceivedMessage]) async {
        if let prepared = await journalBatch(batch) { await finishReceive(prepared) }
    }

    func journalBatch(_ batch: [ReceivedMessage]) async -> PreparedBatch? {
        var rows: [InboundMessage] = []
        var tokens: [DeliveryToken] = []
        var envelopes: [Envelope] = []
        for message in batch {
            if Self.reservedCommandIDs.contains(message.commandID) {
                await receiveControl(message)
                continue
            }
            guard let envelope = Envelope.decode(message.payload) else {
                if message.token.needsConfirmation { transport.reject(message.token, reason: "malformed envelope") }
                logger.notice("dropped a malformed message", metadata: ["mesh.peer": "\(message.address)"])
                continue
            }
            let hasHandler = envelope.kind == .response || !handlers(for: message.commandID).isEmpty
            var row = InboundMessage(
                originNode: message.node.description, originSeq: envelope.originSeq, commandID: message.commandID,
                kind: envelope.kind, peer: MeshAddress.text(message.address), payload: envelope.payload,
                correlationID: envelope.correlationID, replayOf: envelope.replayOf, status: hasHandler ? .received : .unhandled)
            if let relay = envelope.relay {
                row.relay = relay
                row.forwards = relayForwards(relay, commandID: message.commandID, kind: envelope.kind, payload: envelope.payload)
            }
            rows.append(row)
            tokens.append(message.token)
            envelopes.append(envelope)
        }
        guard !rows.isEmpty else { return nil }
        let results: [InboundAppendResult]
        let forwards: [[UInt64]]
        do {
            (results, forwards) = try await journal.appendInboundRelaying(rows)
        } catch {
            // Not durable: refuse, so every sender sees a failure instead of a silent loss.
            logger.error("could not journal received messages", metadata: ["mesh.count": "\(rows.count)", "mesh.error": "\(error)"])
            for token in tokens where token.needsConfirmation { transport.reject(token, reason: "receiver journal: \(error)") }
            return nil
        }
        return PreparedBatch(rows: rows, tokens: tokens, envelopes: envelopes, results: results, forwards: forwards)
    }

    func finishReceive(_ prepared: PreparedBatch) async {
        let (rows, tokens, envelopes, results) = (prepared.rows, prepared.tokens, prepared.envelopes, prepared.results)
        Failpoint.pass("inbound.after-insert")
        transport.confirm(tokens.filter(\.needsConfirmation))
        for (index, seqs) in prepared.forwards.enumerated() where !seqs.isEmpty {
            await transmitForwards(rows[index], seqs: seqs)
        }
        var catchUps: Set<UInt16> = []  // one catch-up pass per command ID and batch is enough
        defer { for commandID in catchUps { lane(commandID).enqueue(.catchUp) } }
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
                        resolveRequest(requestID, .failure(MeshError(.handlerError, String(decoding: envelope.payload, as: UTF8.self))))
                    } else if let data = try? MeshCodec.decode(envelope.payload) {
                        resolveRequest(requestID, .success(data))
                    } else {
                        resolveRequest(requestID, .failure(MeshError(.decode, "undecodable response to \(requestID)")))
                    }
                }
                journal.streamInboundStatus(id: id, .handled, attempts: 1)
                continue
            }
            guard rows[index].status == .received else {
                // Journaled `unhandled`, but a handler may have been registered since: its catch-up pass could
                // have read the open rows before this one committed, so ask for another (claims prevent doubles).
                if !handlers(for: rows[index].commandID).isEmpty { catchUps.insert(rows[index].commandID) }
                continue
            }
            lane(rows[index].commandID).enqueue(.message(DispatchItem(
                inboundID: id, commandID: rows[index].commandID, kind: rows[index].kind, originNode: rows[index].originNode,
                originSeq: rows[index].originSeq, peer: rows[index].peer, payload: rows[index].payload,
                correlationID: rows[index].correlationID, attempts: 0)))
        }
    }

    // MARK: - Resume

    /// After a restart: resend pending outbound messages (same message ids) and re-dispatch unfinished inbound
    /// ones, per command ID in their original order. Messages for command IDs without a handler are marked
    /// `unhandled` until one is registered.
    private func resume() async throws {
        // Command ID by command ID (the order that matters), each through its partial index.
        var resent = 0
        for commandID in try await journal.pendingOutboundCommandIDs() {
          var after: UInt64 = 0
          while true {
            let page = try await journal.pendingOutbound(commandID: commandID, afterSeq: after, limit: 1000)
            guard !page.isEmpty else { break }
            try await journal.recordOutboundAttempts(page.map(\.seq))
            for row in page {
                after = row.seq
                guard let target = try? MeshAddress.parse(row.peer) else {
                    try await journal.markOutboundFailed(row.seq, error: "unparseable peer address \(row.peer)")
                    continue
                }
                _ = try await transmit(seq: row.seq, commandID: row.commandID, kind: row.kind, to: target, payload: row.payload,
                                       correlationID: row.correlationID, replayOf: row.replayOf, relay: row.relay)
                resent += 1
            }
          }
        }
        var redispatched = 0
        for commandID in try await journal.openInboundCommandIDs() {
          var afterID: Int64 = 0
          while true {
            let page = try await journal.openInbound(commandID: commandID, afterID: afterID, limit: 1000)
            guard !page.isEmpty else { break }
            for row in page {
                afterID = row.id
                guard row.status != .unhandled else { continue }
                if handlers(for: row.commandID).isEmpty {
                    try await journal.setInboundStatus(id: row.id, .unhandled, attempts: row.attempts, error: row.error)
                    continue
                }
                lane(row.commandID).enqueue(.message(DispatchItem(row)))
                redispatched += 1
            }
          }
        }
        if resent + redispatched > 0 {
            logger.info("resumed from journal", metadata: ["mesh.resent": "\(resent)", "mesh.redispatched": "\(redispatched)"])
        }
    }
}

/// What a handler knows about the message it handles.
public struct MessageInfo: Sendable {
    /// `origin_node:origin_seq`, as in the audit views.
    public let messageID: String
    /// The sender's address, `host:port`.
    public let sender: String
    /// The command ID.
    public let commandID: UInt16
    /// Send, usend, request or response.
    public let kind: MessageKind
    /// 1 for the first attempt; more after a handler failure or a crash.
    public let attempt: Int
    /// The replay run when the handler is being replayed (``MeshNode/replay(commandID:from:to:limit:sendResponses:)``),
    /// `nil` for live traffic: a handler can skip side effects that must not happen twice.
    public let replayRun: Int64?

    init(messageID: String, sender: String, commandID: UInt16, kind: MessageKind, attempt: Int, replayRun: Int64? = nil) {
        self.messageID = messageID
        self.sender = sender
        self.commandID = commandID
        self.kind = kind
        self.attempt = attempt
        self.replayRun = replayRun
    }
}
