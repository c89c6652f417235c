import Dispatch
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
    /// A synchronous handler (see ``handleCommandInline(_:_:)``): runs on the node's own thread and must not
    /// block.
    public typealias SyncHandler = @Sendable (MeshData, MessageInfo) throws -> MeshData?

    /// Command IDs Mesh keeps for its own protocol (membership, health): 65000...65535. Registering one throws.
    public static let reservedCommandIDs: ClosedRange<UInt16> = 65000...65535

    /// Control traffic (membership gossip): handled on arrival, never journaled. Mesh's other reserved command IDs
    /// (``sharedDataCommand``) are messages like any other: journaled, dispatched to Mesh's own handlers.
    static func isControl(_ commandID: UInt16) -> Bool { commandID == membershipCommand }

    /// The node's settings.
    public let configuration: MeshConfiguration
    /// The journal (for audits and tools; the node owns its lifecycle).
    public let journal: Journal
    /// The address the node listens on, `host:port`.
    public let address: String
    /// This node's id (the journal's) and boot epoch.
    public var identity: JournalIdentity { journal.identity }
    /// The node's own thread as a task executor. A task that prefers it runs its nonisolated code on the thread
    /// that owns the node's socket and journal writer, so its sends, requests and their results cross no thread:
    /// `Task(executorPreference: node.taskExecutor) { … }` or `withTaskExecutorPreference(node.taskExecutor) { … }`.
    /// Such code must not block (as a synchronous handler): it holds up every message of the node while it runs.
    public var taskExecutor: any TaskExecutor { loop.taskExecutor }

    let transport: MeshTransport
    /// The node's own thread: its socket and its journal's writer (see ``NodeLoop``).
    let loop: NodeLoop
    let logger: Logger
    private let state: NIOLockedValueBox<State>
    /// The highest inbound row id journaled before this start: rows up to it are dispatched with
    /// ``MessageInfo/isResumed`` set.
    let resumeBoundary = Atomic<Int64>(0)
    /// Handlers and the lanes that run them.
    let dispatcher = Dispatcher()
    /// Requests waiting for their responses.
    let requests: RequestTable
    /// Hands received messages to their lanes after their batch's acknowledgements left.
    let laneHandoff: LaneHandoff
    /// Peers whose pending messages are still being resent after a restart.
    let resumes = ResumeCoordinator()
    /// The seeds, names resolved at every membership round.
    let seeds: SeedResolver
    /// Fired when the first gossip record from another member arrived (``initialSync(timeout:)``).
    let synced = OnceSignal()
    /// Fired when shutdown begins (``run()`` waits on it).
    let stopSignal = OnceSignal()
    /// Fired when shutdown finished (a second, concurrent ``shutdown()`` waits on it).
    private let shutDownSignal = OnceSignal()
    /// Received messages handed to the journal's writer and not yet committed (see ``maxInboundBacklog``).
    let inboundBacklog = Atomic<Int>(0)
    /// Most received messages waiting for the journal before unreliable ones are dropped on arrival. Reliable
    /// messages are always taken: each sender's window (`windowMessages`) bounds how many it has unconfirmed.
    static let maxInboundBacklog = 65_536
    /// Peer addresses and node ids parsed and printed once, not per message (see ``AddressTexts``).
    let addressTexts = AddressTexts()
    /// Sequence numbers confirmed by their receivers, waiting for the writer to journal them as acked.
    let ackedSeqs = NIOLockedValueBox<[UInt64]>([])
    /// Hands the transport's deliveries to this node on the event loop (held until ``resume()`` finished).
    let router: InboundRouter
    /// What this node knows about the cluster (see `MeshNode+Membership.swift`).
    let membership: NIOLockedValueBox<MembershipTable>
    /// The shared data as this node holds it (see `MeshNode+SharedData.swift`).
    let sharedData: NIOLockedValueBox<SharedDataTable>
    /// Local shared-data writes, one at a time (each reads the version it writes the next of).
    let sharedWrites = AsyncSerializer()
    /// Subscribers of ``sharedDataChanges()``.
    let sharedBroadcaster = Broadcaster<SharedEntry>()
    /// Subscribers of ``membershipEvents()``.
    let membershipBroadcaster = Broadcaster<MembershipEvent>()
    /// Set by the maintenance loop while the journal's disk is below ``MeshConfiguration/minFreeDiskBytes``.
    let lowDisk = Atomic<Bool>(false)
    let metrics = NodeMetrics()
    /// Rate limit of log lines whose cause can repeat per message (a full disk, a flood of malformed messages).
    private let logLimiter = Mutex(LogRateLimiter())

    /// The node's lifecycle: its background tasks and whether shutdown began.
    struct State {
        var tasks: [Task<Void, Never>] = []
        var stopped = false
        /// Tasks that only sleep between rounds: cancelled at shutdown.
        var cancelOnStop: [Task<Void, Never>] = []
    }

    private init(configuration: MeshConfiguration, journal: Journal, transport: MeshTransport, loop: NodeLoop, router: InboundRouter,
                 logger: Logger) {
        self.loop = loop
        self.requests = RequestTable(eventLoop: loop.eventLoop)
        self.laneHandoff = LaneHandoff(eventLoop: loop.eventLoop, activity: loop.activity)
        self.configuration = configuration
        self.router = router
        self.journal = journal
        self.transport = transport
        self.logger = logger
        let address = MeshAddress.text(transport.localAddress)
        self.address = address
        self.state = NIOLockedValueBox(State())
        self.membership = NIOLockedValueBox(Self.makeMembershipTable(configuration: configuration, identity: journal.identity, address: address))
        self.sharedData = NIOLockedValueBox(SharedDataTable(limits: configuration.sharedDataLimits))
        // Validated already: every seed parses.
        self.seeds = SeedResolver(seeds: configuration.seeds.compactMap { try? Seed.parse($0) },
                                  ipv6: transport.localAddress.protocol == .inet6, logger: logger)
        dispatcher.attach(startsInline: configuration.startsAsyncHandlersInline) { [weak self] work, commandID in
            await self?.dispatch(work, commandID: commandID)
        }
    }

    var isStopped: Bool { state.withLockedValue { $0.stopped } }

    /// Adds a task that only loops until shutdown (cancelled then), or cancels it at once if shutdown began.
    func addBackgroundTask(_ task: Task<Void, Never>) {
        let stopped = state.withLockedValue { state -> Bool in
            if !state.stopped { state.cancelOnStop.append(task) }
            return state.stopped
        }
        if stopped { task.cancel() }
    }

    /// Logs `message` unless the same `cause` was logged less than a second ago; the line then carries how many
    /// times it happened since (`mesh.occurrences`).
    func logLimited(_ level: Logger.Level, _ message: Logger.Message, cause: String, metadata: Logger.Metadata = [:]) {
        guard let count = logLimiter.withLock({ $0.admit(cause, now: DispatchTime.now().uptimeNanoseconds) }) else { return }
        var metadata = metadata
        if count > 1 { metadata["mesh.occurrences"] = "\(count)" }
        logger.log(level: level, message, metadata: metadata)
    }

    /// Throws `notStarted` once ``shutdown()`` began: the public send calls check it first, so a send after
    /// shutdown fails with the node's error, not the journal's. (Responses of handlers still draining at
    /// shutdown are journaled all the same: they go out at the next start.)
    func checkRunning() throws(MeshError) {
        if isStopped { throw Self.shutDownError }
    }

    /// What a send gets once the node shut down (before it journaled anything).
    static let shutDownError = MeshError(.notStarted, "the node is shut down: nothing was journaled or sent")

    /// Opens the journal (a new boot epoch), binds the transport, resends what was never acknowledged and
    /// re-dispatches what was never handled.
    ///
    /// Register the handlers in `registering`: it runs before the node resumes its journal and before any
    /// message is taken from the network, so every message — resumed or new — runs the whole chain of its
    /// command ID. Handlers registered after `start` returns also work (a message for a command ID without
    /// handler is journaled `unhandled` and dispatched once one is registered), but a message dispatched
    /// between two registrations of the same command ID runs only the handlers registered so far.
    ///
    /// ```swift
    /// let node = try await MeshNode.start(configuration: configuration, logger: logger) { node in
    ///     try node.handleCommand(1024) { data in print(try data.getString("myName")); return nil }
    /// }
    /// ```
    /// - Throws: ``MeshError`` (`invalidConfiguration`, `invalidAddress`), ``JournalError`` (the journal cannot
    ///   be opened, is corrupt or is in use by another node), the transport's bind error, or what `registering`
    ///   throws (the node is then shut down).
    public static func start(configuration: MeshConfiguration, logger: Logger,
                             registering: (MeshNode) throws -> Void = { _ in }) async throws -> MeshNode {
        try configuration.validate()
        let bind = try MeshAddress.parse(configuration.address)
        let loop = NodeLoop()
        let journal: Journal
        do {
            journal = try await Journal.open(path: configuration.journalPath,
                                             configuration: .init(durability: configuration.durability,
                                                                  storesPayloadJSON: configuration.storesPayloadJSON),
                                             writerExecutor: loop.journalExecutor, logger: logger)
        } catch {
            await loop.shutdown()
            throw error
        }
        let transport: MeshTransport
        let router = InboundRouter()
        do {
            var t = TransportConfiguration(bindAddress: bind, nodeID: NodeID(hex: journal.identity.nodeID)!,
                                           epoch: UInt32(truncatingIfNeeded: journal.identity.bootEpoch), keyring: configuration.keyring)
            t.retryInterval = configuration.retryInterval
            t.retryTimeout = configuration.retryTimeout
            t.peerTimeout = configuration.peerTimeout
            t.maxPeers = configuration.maxPeers
            t.forgetPeersAfter = configuration.forgetPeersAfter
            t.encrypt = configuration.encrypt
            t.idleSpinMicroseconds = configuration.idleSpinMicroseconds
            t.segmentationOffload = configuration.segmentationOffload
            transport = try await MeshTransport.bind(configuration: t, logger: logger, group: loop.eventLoop, inboundHandler: router,
                                                     activity: loop.activity)
        } catch {
            await journal.close()
            await loop.shutdown()
            throw error
        }
        let node = MeshNode(configuration: configuration, journal: journal, transport: transport, loop: loop, router: router,
                            logger: logger)
        do {
            try registering(node)
        } catch {
            await node.shutdown()
            throw error
        }
        node.registerSharedDataService()
        router.attach(node)
        do {
            try await node.loadShared()
            try await node.resume()
        } catch {
            await node.shutdown()
            throw error
        }
        // Messages that arrived during the resume were held: journaled now, they queue behind the resumed ones.
        await router.activate(on: loop.eventLoop)
        await node.loadKnownPeers()
        let eventsTask = Task { await node.watchTransportEvents() }
        let membershipTask = Task { await node.membershipLoop() }
        node.updateDiskState()
        let maintenanceTask = Task { await node.maintenanceLoop() }
        node.state.withLockedValue {
            $0.tasks += [eventsTask]
            $0.cancelOnStop += [membershipTask, maintenanceTask]
        }
        logger.info("mesh node started", metadata: [
            "mesh.address": "\(node.address)", "mesh.node": "\(journal.identity.nodeID)", "mesh.epoch": "\(journal.identity.bootEpoch)",
        ])
        return node
    }

    /// Stops receiving, lets running handlers finish, and closes the transport and the journal. Requests
    /// still waiting fail with `peerDown`. Later and concurrent calls return once the first one finished.
    public func shutdown() async {
        let (tasks, sleepers, wasStopped) = state.withLockedValue { state in
            let wasStopped = state.stopped
            state.stopped = true
            return (state.tasks, state.cancelOnStop, wasStopped)
        }
        if wasStopped {
            await shutDownSignal.wait()
            return
        }
        defer { shutDownSignal.fire() }
        LatencyProbe.dump()  // a probe build's marks, before shutting down adds its own
        stopSignal.fire()
        for sleeper in sleepers { sleeper.cancel() }
        await announceLeaving()
        finishMembershipEvents()
        sharedBroadcaster.finish()
        requests.close(failing: MeshError(.peerDown, "the node shut down"))
        await transport.close()
        // Nothing arrives any more; once the writer ran every queued job, and the node's loop the hand-overs those
        // jobs' commits queued behind them (``LaneHandoff``), every journaled message is in its lane.
        router.close()
        try? await journal.barrier()
        try? await loop.eventLoop.submit {}.get()
        for task in tasks + sleepers { await task.value }
        let lanes = dispatcher.lanes
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
        await loop.shutdown()
    }

    /// Runs `work` and returns true if it finished within `timeout`, false otherwise — without waiting for it
    /// past the timeout (a task group would join it), so a hung handler cannot hang the caller.
    package static func race(timeout: Duration, _ work: @escaping @Sendable () async -> Void) async -> Bool {
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
    ///
    /// Each command ID's messages run on its lane, one at a time. A handler starts on the node's own thread and runs
    /// there until its first suspension, then on Swift's cooperative pool
    /// (``MeshConfiguration/startsAsyncHandlersInline``): long computation belongs after an `await`, or the setting off.
    /// - Throws: ``MeshError`` (`reservedCommand`) for an ID in ``reservedCommandIDs``.
    public func handleCommand(_ commandID: UInt16, _ handler: @escaping Handler) throws(MeshError) {
        try register(.async(handler), for: commandID)
    }

    /// Registers a synchronous handler for `commandID`: a plain function, as Diarkis handlers are, that the node
    /// runs on its own thread inside the transaction that journals the message, so the message, the handler's
    /// invocation record, the message's status and the response to a request commit together and the response
    /// leaves right after that commit — no thread handoff and no extra commit per message.
    ///
    /// **It must not block** (no I/O, no locks held long, no waiting): while it runs, the node neither reads its
    /// socket nor commits. Work that waits belongs in an async handler (``handleCommand(_:_:)``) or in a task the
    /// handler starts. A synchronous handler runs inline only when every handler of its command ID is
    /// synchronous and no earlier message of that command ID is still queued (a retry, a resumed message);
    /// otherwise it runs on the command ID's lane like any handler, in order.
    ///
    /// ```swift
    /// try node.handleCommandInline(2001) { data, _ in data }  // an echo
    /// ```
    ///
    /// What stays the same: at-least-once, order per command ID, retries and dead letters. What differs: the
    /// handler runs before its message's commit rather than after, so if the node dies (or the disk fills) before
    /// that commit, the message was neither acknowledged nor recorded: its sender sends it again and the handler
    /// runs again — the same as a crash while an async handler runs.
    /// - Throws: ``MeshError`` (`reservedCommand`) for an ID in ``reservedCommandIDs``.
    public func handleCommandInline(_ commandID: UInt16, _ handler: @escaping SyncHandler) throws(MeshError) {
        try register(.sync(handler), for: commandID)
    }

    private func register(_ handler: RegisteredHandler, for commandID: UInt16) throws(MeshError) {
        guard !Self.reservedCommandIDs.contains(commandID) else {
            throw MeshError(.reservedCommand, "command ID \(commandID) is reserved for Mesh (\(Self.reservedCommandIDs))")
        }
        dispatcher.register(handler, for: commandID)?.enqueue(.catchUp)
    }

    /// Registers a handler that takes only the data.
    public func handleCommand(_ commandID: UInt16, _ handler: @escaping @Sendable (MeshData) async throws -> MeshData?) throws(MeshError) {
        try handleCommand(commandID) { data, _ in try await handler(data) }
    }

    func handlers(for commandID: UInt16) -> [RegisteredHandler] { dispatcher.handlers(for: commandID) }

    func lane(_ commandID: UInt16) -> DispatchLane { dispatcher.lane(commandID) }

    /// Whether nothing of `commandID` is queued or running on its lane (a message of an all-synchronous chain
    /// arriving now runs inline). Tests await it: registering a first handler queues a catch-up pass.
    package func isLaneIdle(_ commandID: UInt16) -> Bool { dispatcher.isLaneIdle(commandID) }
    /// Whether the caller runs on the node's own thread now (tests of ``taskExecutor``).
    package var isOnNodeThread: Bool { loop.eventLoop.inEventLoop }

    // MARK: - Sending

    /// A journaled message on its way: ``outcome()`` waits until the receiver's journal has it (or it failed).
    public struct Delivery: Sendable {
        /// The message id, `node_id:seq`, as in the audit views.
        public var messageID: String { "\(nodeID):\(seq)" }
        let nodeID: String
        /// This node's sequence number of the message.
        public let seq: UInt64
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

    /// Sends `data` reliably to `address` for `commandID` and returns once its outcome is known — in the
    /// receiver's journal (`.confirmed`) or failed: ``send(_:to:_:)`` followed by ``Delivery/outcome()``, with one
    /// suspension instead of two (the caller wakes once, with the outcome, not also when the message is journaled
    /// here). The returned delivery's ``Delivery/outcome()`` returns at once.
    /// - Throws: as ``send(_:to:_:)``.
    public func sendConfirmed(_ commandID: UInt16, to address: String, _ data: MeshData) async throws -> Delivery {
        LatencyProbe.mark(.callStart)
        defer { LatencyProbe.mark(.callEnd) }
        let (message, target) = try outboundMessage(commandID, kind: .send, to: address, data)
        if resumes.isResuming { await awaitResume(of: message.peer) }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Delivery, any Error>) in
            journalThenTransmit(message, to: target, sent: { _, delivery in
                LatencyProbe.mark(.callCommitted)
                delivery.receipt.whenComplete { _ in
                    LatencyProbe.mark(.confirmed)
                    continuation.resume(returning: delivery)
                }
            }, failed: { _, error in
                continuation.resume(throwing: error)
            })
        }
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
        LatencyProbe.mark(.callStart)
        defer { LatencyProbe.mark(.callEnd) }
        let (message, target) = try outboundMessage(commandID, kind: .request, to: address, data)
        // After a restart, older messages to this peer go first.
        if resumes.isResuming { await awaitResume(of: message.peer) }
        // One suspension for the whole exchange: the request is journaled, registered and handed to the transport
        // from its commit, on the node's thread, and the caller wakes once, with the result.
        let slot = ResponseSlot()
        return try await slot.value {
            journalThenTransmit(message, to: target, committed: { seq in
                LatencyProbe.mark(.callCommitted)
                // Registered before the request can leave: a fast response finds it.
                self.requests.register(self.messageID(seq), slot, timeout: timeout)
            }, sent: { seq, delivery in
                delivery.receipt.whenComplete { outcome in
                    if case .failed(let error) = outcome { self.requests.resolve(self.messageID(seq), .failure(MeshError(error))) }
                }
            }, failed: { seq, error in
                if let seq { self.requests.resolve(self.messageID(seq), .failure(error)) } else { slot.resolve(.failure(error)) }
            })
        }
    }

    /// Journals `message` and hands it to the transport from its commit, on the node's thread, without waiting for
    /// either: `committed` runs right after the commit (before the message can leave), `sent` once the transport
    /// took it, `failed` if it could not be journaled (`seq` nil) or handed over. The callbacks run on the node's
    /// thread, or on a task when the peer's window is full and the message waits for space. Messages passed here
    /// leave in the order they were passed (the writer's order), like every journaled message.
    func journalThenTransmit(_ message: OutboundMessage, to target: SocketAddress,
                             committed: @escaping @Sendable (UInt64) -> Void = { _ in },
                             sent: @escaping @Sendable (UInt64, Delivery) -> Void = { _, _ in },
                             failed: @escaping @Sendable (UInt64?, any Error) -> Void) {
        journal.appendOutbound([message]) { result in
            let seq: UInt64
            switch result {
            case .failure(let error as JournalError) where error.code == .closed:
                // The node shut down while the message waited for the writer: nothing was journaled.
                return failed(nil, Self.shutDownError)
            case .failure(let error):
                return failed(nil, error)
            case .success(let seqs):
                seq = seqs[0]
            }
            Failpoint.pass("outbound.after-insert")
            committed(seq)
            let envelope = Self.envelope(message, seq: seq)
            if let delivery = self.transmitNow(seq: seq, envelope, commandID: message.commandID, to: target) {
                return sent(seq, delivery)
            }
            // The peer's window is full: wait for space off the node's thread.
            Task {
                do {
                    sent(seq, try await self.transmit(seq: seq, envelope, commandID: message.commandID, to: target))
                } catch {
                    failed(seq, error)
                }
            }
        }
    }

    /// The MeshCodec bytes of `data`, or an `encoding` error.
    static func encodePayload(_ data: MeshData) throws(MeshError) -> [UInt8] {
        do {
            return try MeshCodec.encode(data)
        } catch {
            throw MeshError(.encoding, "\(error)")
        }
    }

    /// Sends the response to a request (kind `response`, correlated with the request's message id).
    enum ResponseBody: Sendable {
        case data(MeshData)
        /// A handler's response encoded once for its invocation's record and the message (``EncodedResponse``).
        case encoded(EncodedResponse)
        case error(String)
    }

    /// Journals and transmits the response to `item` without waiting for its commit (the lane goes on with its
    /// next message; the writer keeps the order), after a running resend to the requester.
    func respond(to item: DispatchItem, with response: ResponseBody) async {
        guard let (message, target) = responseMessage(to: item, with: response) else { return }
        if resumes.isResuming { await awaitResume(of: message.peer) }
        journalThenTransmit(message, to: target, failed: { _, error in
            self.logLimited(.error, "could not send a response", cause: "response",
                            metadata: ["mesh.request": "\(message.correlationID ?? "")", "mesh.error": "\(error)"])
        })
    }

    /// The response to `item` (kind `response`, correlated with the request's message id, marking the request
    /// answered when journaled) and where it goes; `nil` (logged) if it cannot be encoded or addressed.
    func responseMessage(to item: DispatchItem, with response: ResponseBody) -> (OutboundMessage, SocketAddress)? {
        guard let (target, _) = try? addressTexts.parse(item.peer) else { return nil }
        let requestID = "\(item.originNode):\(item.originSeq)"
        let payload: [UInt8]
        let json: String?
        let isError: Bool
        switch response {
        case .data(let data):
            guard let encoded = try? MeshCodec.encode(data) else {
                logger.error("could not encode a response", metadata: ["mesh.request": "\(requestID)"])
                return nil
            }
            (payload, json, isError) = (encoded, configuration.storesPayloadJSON ? MeshJSON.string(from: data) : nil, false)
        case .encoded(let encoded):
            (payload, json, isError) = (encoded.bytes, configuration.storesPayloadJSON ? encoded.json : nil, false)
        case .error(let text):
            (payload, json, isError) = (Array(text.utf8), configuration.storesPayloadJSON ? MeshJSON.string(from: ["error": .string(text)] as MeshData) : nil, true)
        }
        var message = OutboundMessage(commandID: item.commandID, kind: .response, peer: item.peer, payload: payload,
                                      payloadJSON: json, correlationID: requestID)
        message.isErrorResponse = isError
        message.answersInboundID = item.inboundID
        return (message, target)
    }

    /// The transport's counters since start (`datagrams_in`, `datagrams_out`, `retransmits`, `fast_retransmits`,
    /// `timeouts`, `duplicates`, `replays`, `stale`, `dropped_over_limit`, `auth_failures`, `malformed`,
    /// `peers_refused`, `peers_forgotten`; the node thread's idle polls ``MeshConfiguration/idleSpinMicroseconds``
    /// made: `idle_polls` run, `idle_polls_caught` ended by a datagram or work rather than by their time; the
    /// segmented writes of ``MeshConfiguration/segmentationOffload``: `segmented_writes`, the datagrams they carried
    /// `segmented_datagrams`, and `segmentation_offload`, 1 while on) and the peer sessions held now (`peers`).
    public func transportStatistics() async throws -> [String: Int] { try await transport.statistics() }

    /// Re-drives a recorded message (`mesh replay`): new traffic from this node, journaled with `replay_of`
    /// set to the original message id so audits tell live from replayed. `payload` is the recorded MeshCodec
    /// encoding; responses cannot be re-driven.
    /// - Throws: ``MeshError`` (`invalidAddress`, `invalidConfiguration` for a response, `diskFull`), journal errors.
    @discardableResult
    public func redrive(_ commandID: UInt16, kind: MessageKind, payload: [UInt8], replayOf: String,
                        to address: String) async throws -> Delivery {
        try checkRunning()
        guard kind != .response else { throw MeshError(.invalidConfiguration, "responses cannot be re-driven") }
        let (target, peer) = try addressTexts.parse(address)
        try checkDiskSpace()
        return try await journalAndTransmit([OutboundMessage(commandID: commandID, kind: kind, peer: peer,
                                                             payload: payload, replayOf: replayOf)], to: [target])[0]
    }

    func send(_ commandID: UInt16, to address: String, _ data: MeshData, kind: MessageKind,
              correlationID: String? = nil) async throws -> Delivery {
        let (message, target) = try outboundMessage(commandID, kind: kind, to: address, data, correlationID: correlationID)
        return try await journalAndTransmit([message], to: [target])[0]
    }

    /// The journal row of a message of this node to `address`, and where it goes: the checks every send makes
    /// first, in order — the node runs, the address parses, the data encodes, the disk has room.
    private func outboundMessage(_ commandID: UInt16, kind: MessageKind, to address: String, _ data: MeshData,
                                 correlationID: String? = nil) throws(MeshError) -> (OutboundMessage, SocketAddress) {
        try checkRunning()
        let (target, peer) = try addressTexts.parse(address)
        let payload = try Self.encodePayload(data)
        try checkDiskSpace()
        let message = OutboundMessage(commandID: commandID, kind: kind, peer: peer, payload: payload,
                                      payloadJSON: configuration.storesPayloadJSON ? MeshJSON.string(from: data) : nil,
                                      correlationID: correlationID)
        return (message, target)
    }

    /// The audit id of an outbound message of this node.
    func messageID(_ seq: UInt64) -> String { "\(journal.identity.nodeID):\(seq)" }

    /// Journals `messages` in one transaction and hands each to the transport straight from the commit, on the
    /// journal's writer thread (no hop through the cooperative pool on the message's way out). Under
    /// backpressure the rest are handed over from here, waiting for window space, in order.
    /// - Parameter committed: runs on the writer thread for each sequence number, after the commit and before
    ///   the message can leave (a request registers its response slot there).
    func journalAndTransmit(_ messages: [OutboundMessage], to targets: [SocketAddress],
                            committed: (@Sendable (UInt64) -> Void)? = nil) async throws -> [Delivery] {
        // After a restart, older messages to these peers go first.
        if resumes.isResuming {
            for peer in Set(messages.map(\.peer)) { await awaitResume(of: peer) }
        }
        let (seqs, sent) = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<([UInt64], [Delivery?]), any Error>) in
            journal.appendOutbound(messages) { result in
                switch result {
                case .failure(let error as JournalError) where error.code == .closed:
                    // The node shut down while the message waited for the writer: nothing was journaled.
                    continuation.resume(throwing: Self.shutDownError)
                case .failure(let error):
                    continuation.resume(throwing: error)
                case .success(let seqs):
                    // Once per message, so `@N` is the N-th journaled message whatever the batching.
                    for _ in seqs { Failpoint.pass("outbound.after-insert") }
                    var sent: [Delivery?] = []
                    sent.reserveCapacity(seqs.count)
                    var blocked = false
                    for (index, seq) in seqs.enumerated() {
                        committed?(seq)
                        // Once one message has to wait for window space, the ones after it wait too (order).
                        let delivery = blocked ? nil : self.transmitNow(seq: seq, Self.envelope(messages[index], seq: seq),
                                                                        commandID: messages[index].commandID, to: targets[index])
                        blocked = delivery == nil
                        sent.append(delivery)
                    }
                    continuation.resume(returning: (seqs, sent))
                }
            }
        }
        var deliveries: [Delivery] = []
        deliveries.reserveCapacity(seqs.count)
        for (index, seq) in seqs.enumerated() {
            if let delivery = sent[index] {
                deliveries.append(delivery)
            } else {
                deliveries.append(try await transmit(seq: seq, Self.envelope(messages[index], seq: seq),
                                                     commandID: messages[index].commandID, to: targets[index]))
            }
        }
        return deliveries
    }

    /// The node-level envelope of a journaled outbound message.
    static func envelope(_ message: OutboundMessage, seq: UInt64) -> Envelope {
        Envelope(kind: message.kind, originSeq: seq, correlationID: message.correlationID, replayOf: message.replayOf,
                 isError: message.isErrorResponse, relay: message.relay, payload: message.payload)
    }

    /// Hands a journaled message to the transport if it can take it without waiting (from any thread); `nil`
    /// under backpressure.
    func transmitNow(seq: UInt64, _ envelope: Envelope, commandID: UInt16, to target: SocketAddress) -> Delivery? {
        guard let receipt = transport.trySend(envelope.encode(), commandID: commandID, to: target,
                                              reliability: envelope.kind == .usend ? .unreliable : .reliable) else { return nil }
        return track(seq: seq, receipt)
    }

    /// Hands a journaled message to the transport, waiting for window space if the peer's backlog is full.
    func transmit(seq: UInt64, _ envelope: Envelope, commandID: UInt16, to target: SocketAddress) async throws -> Delivery {
        let receipt = try await transport.send(envelope.encode(), commandID: commandID, to: target,
                                               reliability: envelope.kind == .usend ? .unreliable : .reliable)
        return track(seq: seq, receipt)
    }

    /// Journals what becomes of a transmitted message, from the event loop that settles it.
    private func track(seq: UInt64, _ receipt: MeshTransport.Receipt) -> Delivery {
        receipt.whenComplete { outcome in self.recordOutcome(seq, outcome) }
        metrics.transmitted.increment()
        // The id text is made only if asked for: one allocation less per message.
        return Delivery(nodeID: journal.identity.nodeID, seq: seq, receipt: receipt)
    }

    /// Acknowledgements are gathered and journaled by one deferrable writer job per batch (the job takes
    /// whatever has gathered when the writer reaches it); failures are journaled one by one, with their error.
    private func recordOutcome(_ seq: UInt64, _ outcome: MessageOutcome) {
        switch outcome {
        case .confirmed, .sent:
            let first = ackedSeqs.withLockedValue { acked in
                acked.append(seq)
                return acked.count == 1
            }
            guard first else { return }
            let acked = ackedSeqs
            journal.postOutboundAcked {
                Failpoint.pass("outbound.after-send")
                return acked.withLockedValue { seqs in
                    defer { seqs.removeAll(keepingCapacity: true) }
                    return seqs
                }
            }
        case .failed(let error) where error.code == .closed:
            // This node is shutting down: the message stays pending and the next start resends it.
            return
        case .failed(let error):
            metrics.failed.increment()
            journal.postOutboundFailed(seq, error: error.description)
        }
    }

    // MARK: - Resume

    /// After a restart: resend pending outbound messages (same message ids) and re-dispatch unfinished inbound
    /// ones, per command ID in their original order. Messages for command IDs without a handler are marked
    /// `unhandled` until one is registered.
    private func resume() async throws {
        // Messages journaled before this start may have been handled, in part or whole, by the previous run.
        let boundary = try await journal.read { db in try db.scalarInt("SELECT coalesce(max(id), 0) FROM mesh_inbound") } ?? 0
        resumeBoundary.store(boundary, ordering: .relaxed)
        // Resends run in the background, one task per peer, so a peer that is down (its window full, its messages
        // waiting for their give-up time) delays neither this start nor the other peers. New messages to a peer
        // wait until its resend has handed over every older one (``awaitResume(of:)``): order per command ID holds.
        let peers = try await journal.pendingOutboundPeers()
        let commandIDs = peers.isEmpty ? [] : try await journal.pendingOutboundCommandIDs()
        for peer in peers {
            _ = resumes.begin(peer)
            let task = Task { await resend(to: peer, commandIDs: commandIDs) }
            state.withLockedValue { $0.tasks.append(task) }
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
        if redispatched > 0 {
            logger.info("resumed from journal", metadata: ["mesh.redispatched": "\(redispatched)"])
        }
    }
}

extension MeshNode {
    /// Resends every pending message to `peer`, command ID by command ID (`commandIDs`: those with pending
    /// messages at start) in sequence order (the order that matters), through the pending index; then lets new
    /// messages to `peer` through.
    func resend(to peer: String, commandIDs: [UInt16]) async {
        defer { resumes.end(peer) }
        var resent = 0
        do {
            for commandID in commandIDs {
                var after: UInt64 = 0
                while true {
                    let page = try await journal.pendingOutbound(commandID: commandID, peer: peer, afterSeq: after, limit: 1000)
                    guard !page.isEmpty else { break }
                    try await journal.recordOutboundAttempts(page.map(\.seq))
                    for row in page {
                        after = row.seq
                        guard let (target, _) = try? addressTexts.parse(row.peer) else {
                            try await journal.markOutboundFailed(row.seq, error: "unparseable peer address \(row.peer)")
                            continue
                        }
                        let envelope = Envelope(kind: row.kind, originSeq: row.seq, correlationID: row.correlationID, replayOf: row.replayOf,
                                                isError: row.isErrorResponse, relay: row.relay, payload: row.payload)
                        _ = try await transmit(seq: row.seq, envelope, commandID: row.commandID, to: target)
                        resent += 1
                    }
                }
            }
            if resent > 0 { logger.info("resent from journal", metadata: ["mesh.peer": "\(peer)", "mesh.resent": "\(resent)"]) }
        } catch {
            // The transport closed (shutdown) or the journal failed: what was not handed over stays pending for the
            // next start.
            logger.notice("resend stopped", metadata: ["mesh.peer": "\(peer)", "mesh.resent": "\(resent)", "mesh.error": "\(error)"])
        }
    }

    /// Waits until the messages that were pending to `peer` at start have been handed to the transport.
    func awaitResume(of peer: String) async {
        await resumes.gate(of: peer)?.wait()
    }

    /// Whether a resend to `peer` is still handing over older messages.
    func isResuming(_ peer: String) -> Bool {
        resumes.gate(of: peer) != nil
    }
}

/// What a handler knows about the message it handles.
public struct MessageInfo: Sendable {
    /// `origin_node:origin_seq`, as in the audit views.
    public var messageID: String { "\(originNode):\(originSeq)" }
    /// The message's origin node and sequence, kept apart so that a handler that never reads ``messageID`` costs no
    /// string built for it.
    private let originNode: String
    private let originSeq: UInt64
    /// The sender's address, `host:port`.
    public let sender: String
    /// The command ID.
    public let commandID: UInt16
    /// Send, usend, request or response.
    public let kind: MessageKind
    /// 1 for the first attempt; more after a handler failure. A chain interrupted by a crash may run again with
    /// the same number (its start was not journaled yet): see ``isResumed``.
    public let attempt: Int
    /// The message was journaled by an earlier run of this node (it is dispatched after a restart, or re-queued
    /// from the dead letters): its handlers may already have run, in part or in whole, before that run ended
    /// (at-least-once). A handler with side effects that must not repeat checks them by ``messageID`` when this
    /// is true.
    public let isResumed: Bool
    /// The replay run when the handler is being replayed (``MeshNode/replay(commandID:from:to:limit:sendResponses:)``),
    /// `nil` for live traffic: a handler can skip side effects that must not happen twice.
    public let replayRun: Int64?

    init(originNode: String, originSeq: UInt64, sender: String, commandID: UInt16, kind: MessageKind, attempt: Int,
         isResumed: Bool = false, replayRun: Int64? = nil) {
        self.isResumed = isResumed
        self.originNode = originNode
        self.originSeq = originSeq
        self.sender = sender
        self.commandID = commandID
        self.kind = kind
        self.attempt = attempt
        self.replayRun = replayRun
    }
}
