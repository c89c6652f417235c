import CoreMetrics
import Logging
import MeshFailpoints
import NIOCore

/// The thin NIO layer: reads datagrams, authenticates them, feeds the state machine, and carries out its
/// actions (write datagrams with one flush per batch, schedule the single timer, complete promises, publish
/// deliveries and events). Everything here runs on the channel's event loop.
final class TransportHandler: ChannelInboundHandler {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    typealias OutboundOut = AddressedEnvelope<ByteBuffer>

    let machine: TransportStateMachine
    let sealer: DatagramSealer
    let logger: Logger
    let metrics: TransportMetrics
    let deliveries: AsyncStream<[ReceivedMessage]>.Continuation
    let inboundHandler: (any TransportInboundHandler)?
    private var pendingDeliveries: [ReceivedMessage] = []
    let events: AsyncStream<TransportEvent>.Continuation
    private var context: ChannelHandlerContext?
    private var outcomes: [UInt64: OutcomeBox] = [:]
    private var backlogWaiters: [SocketAddress: [EventLoopPromise<Void>]] = [:]
    /// Messages whose senders wait for window space: queued into the state machine as room appears. Changed in
    /// place only (a copy taken out and stored back would copy every parked send at each change).
    private var parked: [SocketAddress: CircularBuffer<ParkedSend>] = [:]
    /// Tells senders on other threads whether anything is parked (see ``SendGate``).
    let gate: SendGate
    /// The event loop of every socket this handler serves (a replacement socket uses the same one).
    let eventLoop: any EventLoop
    /// The owner closes the socket on purpose: the next close fails what is unfinished.
    var closeRequested = false
    /// The socket closed without being asked to and a new one is being bound.
    private(set) var detached = false
    /// Called (on the event loop) when the socket closed without being asked to.
    var onSocketLost: (() -> Void)?
    /// Called (on the event loop) at every flush, after inbound messages were handed over and before datagrams are
    /// built: the owner queues what waits in its mailbox, so that messages sent while the inbound handler ran (a
    /// response committed right there) leave in this flush, with the acknowledgements.
    var beforeFlush: (() -> Void)?

    struct ParkedSend {
        let payload: ByteBuffer
        let commandID: UInt16
        let reliability: Reliability
        let outcome: OutcomeBox
        let room: EventLoopPromise<Void>?
    }
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    private var flushScheduled = false
    /// A flush is handing messages over and about to build its datagrams: what asks for a flush meanwhile (a
    /// confirmation or a send made from the inbound handler) is carried by it, so none is scheduled.
    private var flushPreparing = false
    private var closed = false
    private var lastCounters = TransportCounters()
    private var rttRecorders: [SocketAddress: Recorder] = [:]
    private var lastGaugeExport: NIODeadline?
    /// The export of gauges skipped by the rate limit, made up later.
    private var gaugeCatchUp: Scheduled<Void>?
    /// When datagrams of each kind of rejection (authentication, malformed) were last logged, and how many
    /// arrived since.
    private var lastRejectLog: [Bool: NIODeadline] = [:]
    private var rejectsSinceLog: [Bool: Int] = [:]
    /// The recvmmsg calls per readable event a channel starts with (its `maxMessagesPerRead`, set by the bootstrap).
    static let initialReadsPerEvent = 1
    /// Datagrams read since the last read completed, and the channel's current `maxMessagesPerRead`: see
    /// ``adaptReadsPerEvent(_:)``.
    private var datagramsThisRead = 0
    private var readsPerEvent = initialReadsPerEvent
    /// The poll after each flush (`nil`: none), on ``socketDescriptor``, which the owner sets after each bind.
    let idleSpin: IdleSpin?
    var socketDescriptor: CInt?
    /// When the queued idle spin ends.
    private var spinDeadline = IdleSpin.Deadline()
    /// Idle polls queued, and those ended by a datagram or work rather than by their time.
    private(set) var idlePolls = (run: 0, caught: 0)
    /// Gathers each flush's datagrams into segmented writes (``TransportConfiguration/segmentationOffload``);
    /// `nil`: one write per datagram (turned off, unsupported, or a segmented write failed).
    private var coalescer: DatagramCoalescer?
    /// A segmented write failed: the next ``perform(_:)`` drops the coalescer (set from a write's failure, which
    /// may come while the coalescer is in use).
    private var segmentationFailed = false
    /// Segmented writes made, and the datagrams they carried.
    private(set) var segmented = (writes: 0, datagrams: 0)
    /// Whether datagrams are gathered into segmented writes now.
    var segmentationOffload: Bool { coalescer != nil && !segmentationFailed }

    init(machine: TransportStateMachine, sealer: DatagramSealer, logger: Logger, metrics: TransportMetrics,
         deliveries: AsyncStream<[ReceivedMessage]>.Continuation, events: AsyncStream<TransportEvent>.Continuation,
         inboundHandler: (any TransportInboundHandler)?, gate: SendGate, eventLoop: any EventLoop, idleSpin: IdleSpin?,
         coalescer: DatagramCoalescer? = nil) {
        self.inboundHandler = inboundHandler
        self.coalescer = coalescer
        self.idleSpin = idleSpin
        self.gate = gate
        self.eventLoop = eventLoop
        self.machine = machine
        self.sealer = sealer
        self.logger = logger
        self.metrics = metrics
        self.deliveries = deliveries
        self.events = events
    }

    /// The handler writes to a channel only once it is active (its socket bound): a replacement socket gets the handler
    /// before that, and SwiftNIO asserts that a channel whose writes fill its buffer is active (a segmented write alone
    /// may fill it).
    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { attach(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        attach(context)
        context.fireChannelActive()
    }

    private func attach(_ context: ChannelHandlerContext) {
        guard self.context !== context else { return }
        self.context = context
        if detached {
            detached = false
            logger.notice("transport socket open again", metadata: ["mesh.address": "\(context.channel.localAddress.map { "\($0)" } ?? "?")"])
            flushNow()
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) { socketClosed(context) }

    func channelInactive(context: ChannelHandlerContext) {
        socketClosed(context)
        context.fireChannelInactive()
    }

    /// The socket closed. Asked for (``shutdown()`` or ``closeRequested``): everything unfinished fails with
    /// `closed`. Not asked for — SwiftNIO closes a datagram socket on a send error it deems fatal, such as
    /// `ENETUNREACH` while the host's interface is down — the protocol state is kept, datagrams are not sent
    /// (retransmission covers them) and ``onSocketLost`` asks the owner to bind a new socket to the same address.
    private func socketClosed(_ closing: ChannelHandlerContext) {
        guard let current = self.context, current === closing else { return }  // an old socket, already replaced
        self.context = nil
        socketDescriptor = nil
        if closeRequested || closed {
            failEverything(TransportError(.closed, "the transport was closed"))
            return
        }
        detached = true
        logger.error("transport socket closed unexpectedly; binding a new one", metadata: [
            "mesh.address": "\(closing.channel.localAddress.map { "\($0)" } ?? "?")",
        ])
        onSocketLost?()
    }

    private func failEverything(_ error: TransportError) {
        closed = true
        gate.close()
        timer?.cancel()
        gaugeCatchUp?.cancel()
        for (_, promise) in outcomes { promise.complete(.failed(error)) }
        outcomes.removeAll()
        for (_, waiters) in backlogWaiters { for w in waiters { w.fail(error) } }
        backlogWaiters.removeAll()
        for (_, sends) in parked {
            for p in sends {
                p.outcome.complete(.failed(error))
                p.room?.fail(error)
            }
        }
        parked.removeAll()
        deliveries.finish()
        events.finish()
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        LatencyProbe.mark(.datagramIn)
        datagramsThisRead += 1
        let envelope = unwrapInboundIn(data)
        metrics.bytesIn.increment(by: envelope.data.readableBytes)
        let verdict = machine.ingest(envelope.data, sealer: sealer, from: envelope.remoteAddress, now: .now())
        LatencyProbe.mark(.ingested)
        switch verdict {
        case .accepted:
            perform(machine.takeActions())
        case .replayed:
            break  // counted by the state machine, exported with its counters
        case .oversized, .malformed:
            metrics.malformed.increment()
            noteRejected("\(verdict)", envelope.remoteAddress, authentication: false)
        case .unknownKey, .badTag:
            metrics.authFailures.increment()
            noteRejected("\(verdict)", envelope.remoteAddress, authentication: true)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        LatencyProbe.mark(.readComplete)
        adaptReadsPerEvent(context)
        flushNow()
        context.fireChannelReadComplete()
    }

    /// SwiftNIO reads a readable socket up to `maxMessagesPerRead` times (`readBatch` datagrams each) before the
    /// read completes, and the last call finds the socket empty (EAGAIN) unless that limit ends the loop first. A
    /// lone datagram (latency-bound traffic) would pay for that empty call before it is journaled, while a burst
    /// wants several full reads per event so that one commit covers more of it. So four reads per event once every
    /// read came back full, and one again once even the first came back short (the socket was drained); in between
    /// (a burst's tail) it stays as it is, so a read batch of one does not flip it on every event. The loop's epoll
    /// is level-triggered: whatever one read leaves is read on the next turn.
    private func adaptReadsPerEvent(_ context: ChannelHandlerContext) {
        let readBatch = machine.configuration.readBatch
        let read = datagramsThisRead
        datagramsThisRead = 0
        let wanted = read >= readBatch * readsPerEvent ? 4 : read < readBatch ? 1 : readsPerEvent
        guard wanted != readsPerEvent, let options = context.channel.syncOptions else { return }
        readsPerEvent = wanted
        try? options.setOption(.maxMessagesPerRead, value: UInt(wanted))
    }

    /// Rejected datagrams are never answered; they are counted, and logged at most once a second per kind.
    /// Authentication failures are warnings (visible at a node's default level): a peer with another cluster key
    /// is a deployment mistake the operator must see. Malformed datagrams are notices.
    private func noteRejected(_ why: String, _ from: SocketAddress, authentication: Bool) {
        rejectsSinceLog[authentication, default: 0] += 1
        let now = NIODeadline.now()
        if let last = lastRejectLog[authentication], now - last < .seconds(1) { return }
        let count = rejectsSinceLog[authentication] ?? 1
        if authentication {
            logger.warning("dropped datagrams that failed authentication: is the sender using another cluster key?", metadata: [
                "mesh.reason": "\(why)", "mesh.from": "\(from)", "mesh.count": "\(count)",
            ])
        } else {
            logger.notice("dropped malformed datagrams", metadata: ["mesh.reason": "\(why)", "mesh.from": "\(from)", "mesh.count": "\(count)"])
        }
        lastRejectLog[authentication] = now
        rejectsSinceLog[authentication] = 0
    }

    // MARK: API entry points (called on the event loop)

    func send(_ payload: ByteBuffer, commandID: UInt16, to address: SocketAddress, reliability: Reliability,
              promise: OutcomeBox) {
        guard !closed else {
            promise.complete(.failed(TransportError(.closed, "the transport was closed")))
            return
        }
        switch machine.send(payload, lane: commandID, reliability: reliability, to: address, now: .now()) {
        case .failure(let error): promise.complete(.failed(error))
        case .success(let token): outcomes[token] = promise
        }
        perform(machine.takeActions())
        scheduleFlush()
    }

    /// Queues messages in one hop. If the peer's backlog is full they are parked (in order) and `room` succeeds
    /// only once they are queued, so a caller awaiting `room` is held back (backpressure) and memory stays
    /// bounded by the callers waiting.
    func sendOrPark(_ messages: [(payload: ByteBuffer, commandID: UInt16)], to address: SocketAddress, reliability: Reliability,
                    outcomes: [OutcomeBox], room: EventLoopPromise<Void>?) {
        guard !closed else {
            let error = TransportError(.closed, "the transport was closed")
            for o in outcomes { o.complete(.failed(error)) }
            room?.fail(error)
            return
        }
        if parked[address] == nil && hasRoom(address) {
            for (message, promise) in zip(messages, outcomes) {
                enqueue(message.payload, commandID: message.commandID, to: address, reliability: reliability, promise: promise)
            }
            room?.succeed(())
            perform(machine.takeActions())
            scheduleFlush()
            return
        }
        gate.parked(messages.count)
        for (i, (message, promise)) in zip(messages, outcomes).enumerated() {
            park(ParkedSend(payload: message.payload, commandID: message.commandID, reliability: reliability,
                            outcome: promise, room: i == messages.count - 1 ? room : nil), for: address)
        }
    }

    /// Queues what ``MeshTransport/trySend(_:commandID:to:reliability:)`` left in the mailbox, in order: each
    /// message goes straight into the state machine while its peer has room and nothing parked, and is parked
    /// otherwise (as ``sendOrPark(_:to:reliability:outcomes:room:)`` does, without a waiting sender). One
    /// pass of actions and one flush for the whole drain.
    func queue(_ sends: [MeshTransport.QueuedSend]) {
        guard !closed else {
            let error = TransportError(.closed, "the transport was closed")
            for send in sends { send.box.complete(.failed(error)) }
            return
        }
        for send in sends {
            if parked[send.address] == nil && hasRoom(send.address) {
                enqueue(send.payload, commandID: send.commandID, to: send.address, reliability: send.reliability, promise: send.box)
            } else {
                gate.parked(1)
                park(ParkedSend(payload: send.payload, commandID: send.commandID, reliability: send.reliability,
                                outcome: send.box, room: nil), for: send.address)
            }
        }
        perform(machine.takeActions())
        // Taken by the mailbox's own task: flushed in it, not one loop iteration later. (Taken at the start of a
        // flush, they leave in that flush.)
        if !flushPreparing { flushNow() }
    }

    /// Whether the peer's backlog is below the window, so a message can go into the state machine now.
    /// Parks `send` behind the sends already waiting for `address`, in place (see ``parked``).
    private func park(_ send: ParkedSend, for address: SocketAddress) {
        parked[address, default: CircularBuffer()].append(send)
    }

    private func hasRoom(_ address: SocketAddress) -> Bool {
        machine.backlogCount(address) < machine.configuration.windowMessages
    }

    private func enqueue(_ payload: ByteBuffer, commandID: UInt16, to address: SocketAddress, reliability: Reliability,
                         promise: OutcomeBox) {
        switch machine.send(payload, lane: commandID, reliability: reliability, to: address, now: .now()) {
        case .failure(let error): promise.complete(.failed(error))
        case .success(let token): outcomes[token] = promise
        }
    }

    /// Succeeds when the peer's backlog is below the window (backpressure for `send`).
    func waitForRoom(_ address: SocketAddress, promise: EventLoopPromise<Void>) {
        if closed {
            promise.fail(TransportError(.closed, "the transport was closed"))
        } else if hasRoom(address) {
            promise.succeed(())
        } else {
            backlogWaiters[address, default: []].append(promise)
        }
    }

    func sendOnLoop(_ payload: ByteBuffer, commandID: UInt16, to address: SocketAddress, reliability: Reliability) {
        guard !closed else { return }
        _ = machine.send(payload, lane: commandID, reliability: reliability, to: address, now: .now())
        scheduleFlush()
    }

    func confirm(_ tokens: [DeliveryToken], mayWait: Bool = false) {
        guard !tokens.isEmpty else { return }
        if mayWait {
            let now = NIODeadline.now()
            for token in tokens { machine.confirmWhenConvenient(token, now: now) }
        } else {
            for token in tokens { machine.confirm(token) }
        }
        scheduleFlush()
    }

    func reject(_ token: DeliveryToken, reason: String) {
        machine.reject(token, reason: reason)
        scheduleFlush()
    }

    func shutdown() {
        closeRequested = true
        machine.shutdown()
        flushNow()
        // Between sockets: no close will come to fail what is unfinished.
        if detached { failEverything(TransportError(.closed, "the transport was closed")) }
    }

    var counters: TransportCounters { machine.counters }
    /// Peer sessions held now.
    var sessionCount: Int { machine.sessions.count }

    // MARK: Carrying out actions

    private func scheduleFlush() {
        guard !flushScheduled, !flushPreparing, !closed else { return }
        flushScheduled = true
        idleSpin?.activity?.note()  // a spin queued before this flush gives way to it
        eventLoop.assumeIsolated().execute { [self] in
            flushScheduled = false
            flushNow()
        }
    }

    private func flushNow() {
        guard !closed else { return }
        LatencyProbe.mark(.flushStart)
        let preparing = flushPreparing
        flushPreparing = true
        deliverPending()
        beforeFlush?()
        flushPreparing = preparing
        machine.flush(now: .now())
        perform(machine.takeActions())
        context?.flush()
        LatencyProbe.mark(.flushed)
        releaseBacklogWaiters()
        exportCounters()
        let timers = machine.timers()
        moveTimer(to: timers.deadline)
        if !preparing { queueIdleSpin(awaitingAcknowledgement: timers.awaitsAcknowledgement) }
    }

    /// Queues the idle spin behind what the loop already has to do (a lane's hand-over queued by the commit this
    /// flush followed, say): the spin only starts once that ran. Work handed to the loop while it polls (counted in
    /// its ``LoopActivity``) queues it again behind that work, until the socket is readable or the time is up; a flush
    /// meanwhile (that work's, say) moves the end to its own (``IdleSpin/Deadline``).
    private func queueIdleSpin(awaitingAcknowledgement: Bool) {
        guard let idleSpin, !closed,
              spinDeadline.flushed(until: idleSpin.end(timer: timerDeadline, awaiting: awaitingAcknowledgement))
        else { return }
        idlePolls.run += 1
        queueIdleSpin(idleSpin, since: idleSpin.activity?.value)
    }

    private func queueIdleSpin(_ idleSpin: IdleSpin, since seen: UInt64?) {
        eventLoop.assumeIsolated().execute { [self] in
            guard let end = spinDeadline.end, let socketDescriptor, !closed else {
                spinDeadline.finished()
                return
            }
            let outcome = idleSpin.run(socket: socketDescriptor, until: end, since: seen)
            guard case .workArrived(let now) = outcome, NIODeadline.now() < end else {  // else the work's flush queues a fresh one
                if outcome != .timeUp { idlePolls.caught += 1 }
                spinDeadline.finished()
                return
            }
            // Queued again behind the work that arrived; that work's flush may move the end (read when it runs).
            queueIdleSpin(idleSpin, since: now)
        }
    }

    private func perform(_ actions: consuming [TransportAction]) {
        // Each action is moved out of the array before it runs, so that a datagram's buffer has no other owner when
        // the sealer writes its header and tag into it (one more owner would make that write copy the buffer).
        var actions = actions
        actions.reverse()
        if segmentationFailed { coalescer = nil }
        defer {
            machine.recycle(actions)
            coalescer?.finish { write($0) }
        }
        while let action = actions.popLast() {
            switch consume action {
            case .transmit(let address, let header, let body):
                guard let context else { continue }  // no socket for a moment: retransmission covers it
                let datagram = sealer.seal(header: header, body: consume body, allocator: context.channel.allocator)
                metrics.bytesOut.increment(by: datagram.readableBytes)
                if coalescer != nil {
                    coalescer!.add(datagram, to: address) { write($0) }
                } else {
                    write(DatagramCoalescer.Write(address: address, buffer: datagram, segmentSize: nil))
                }
                LatencyProbe.mark(.datagramWritten)
            case .deliver(let message):
                pendingDeliveries.append(message)
            case .outcome(let token, let outcome):
                outcomes.removeValue(forKey: token)?.complete(outcome)
            case .event(let event):
                switch event {
                case .peerDown(let address, let node, let reason):
                    logger.info("peer down", metadata: ["mesh.peer": "\(address)", "mesh.node": "\(node?.description ?? "?")", "mesh.reason": "\(reason)"])
                case .peerLeft(let address, let node):
                    logger.info("peer left", metadata: ["mesh.peer": "\(address)", "mesh.node": "\(node)"])
                case .peerRestarted(let address, let node, let old, let new):
                    logger.info("peer restarted", metadata: ["mesh.peer": "\(address)", "mesh.node": "\(node)", "mesh.epochs": "\(old)->\(new)"])
                case .peerUp(let address, let node, let epoch):
                    logger.debug("peer up", metadata: ["mesh.peer": "\(address)", "mesh.node": "\(node)", "mesh.epoch": "\(epoch)"])
                }
                events.yield(event)
            }
        }
    }

    /// Writes a run the coalescer gathered: as it is if it holds one datagram, else segmented. A segmented write
    /// that fails turns segmentation off for good (logged once); the datagrams it carried are retransmitted.
    private func write(_ write: DatagramCoalescer.Write) {
        guard let context else { return }
        guard let segmentSize = write.segmentSize else {
            context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: write.address, data: write.buffer)), promise: nil)
            return
        }
        segmented.writes += 1
        metrics.segmentedWrites.increment()
        segmented.datagrams += (write.buffer.readableBytes + segmentSize - 1) / segmentSize
        let metadata = AddressedEnvelope<ByteBuffer>.Metadata(ecnState: .transportNotCapable, packetInfo: nil, segmentSize: segmentSize)
        let promise = context.eventLoop.makePromise(of: Void.self)
        let peer = write.address  // not the whole run: the closure would hold its buffer
        promise.futureResult.assumeIsolated().whenFailure { [self] error in
            // A socket closing fails what it had queued: that says nothing about segmentation.
            if let error = error as? ChannelError, error == .ioOnClosedChannel || error == .alreadyClosed { return }
            guard !segmentationFailed else { return }
            segmentationFailed = true
            logger.warning("UDP segmentation offload failed; sending datagram by datagram from now on",
                           metadata: ["mesh.error": "\(error)", "mesh.peer": "\(peer)"])
        }
        context.write(wrapOutboundOut(AddressedEnvelope(remoteAddress: write.address, data: write.buffer, metadata: metadata)),
                      promise: promise)
    }

    /// Hands what arrived in this read batch to the application: to the on-loop handler if there is one
    /// (which may confirm and reply right here), otherwise as one element of the ``MeshTransport/inbound``
    /// stream, so the consumer wakes once per batch, not once per message.
    private func deliverPending() {
        guard !pendingDeliveries.isEmpty else { return }
        let batch = pendingDeliveries
        pendingDeliveries.removeAll(keepingCapacity: true)
        if let inboundHandler {
            inboundHandler.received(batch, responder: TransportResponder(handler: self))
            perform(machine.takeActions())
        } else if case .dropped = deliveries.yield(batch) {
            machine.counters.droppedOverLimit += batch.count
            logger.warning("inbound consumer too slow: dropped a delivery batch", metadata: ["mesh.messages": "\(batch.count)"])
        }
    }

    private func releaseBacklogWaiters() {
        if !parked.isEmpty {
            var queuedAny = false
            for address in Array(parked.keys) {
                var taken = 0
                while hasRoom(address), let p = parked[address]?.popFirst() {
                    enqueue(p.payload, commandID: p.commandID, to: address, reliability: p.reliability, promise: p.outcome)
                    p.room?.succeed(())
                    taken += 1
                    queuedAny = true
                }
                gate.unparked(taken)
                if parked[address]?.isEmpty == true { parked[address] = nil }
            }
            if queuedAny {
                perform(machine.takeActions())
                scheduleFlush()
            }
        }
        guard !backlogWaiters.isEmpty else { return }
        for (address, waiters) in backlogWaiters where hasRoom(address) {
            backlogWaiters[address] = nil
            for w in waiters { w.succeed(()) }
        }
    }

    private func exportCounters() {
        let c = machine.counters
        metrics.datagramsIn.increment(by: c.datagramsIn - lastCounters.datagramsIn)
        metrics.datagramsOut.increment(by: c.datagramsOut - lastCounters.datagramsOut)
        metrics.retransmits.increment(by: c.retransmits - lastCounters.retransmits)
        metrics.fastRetransmits.increment(by: c.fastRetransmits - lastCounters.fastRetransmits)
        metrics.duplicates.increment(by: c.duplicates - lastCounters.duplicates)
        metrics.replays.increment(by: c.replays - lastCounters.replays)
        metrics.peersRefused.increment(by: c.peersRefused - lastCounters.peersRefused)
        metrics.peersForgotten.increment(by: c.peersForgotten - lastCounters.peersForgotten)
        lastCounters = c
        // Gauges at most ten times a second: they describe state, not events. A skipped export is made up 100 ms
        // after the last one, so an idle transport's gauges end at its final state (no peers, nothing in flight).
        let now = NIODeadline.now()
        if let last = lastGaugeExport, now - last < .milliseconds(100) {
            if gaugeCatchUp == nil, !closed {
                gaugeCatchUp = eventLoop.assumeIsolated().scheduleTask(deadline: last + .milliseconds(100)) { [self] in
                    gaugeCatchUp = nil
                    exportCounters()
                }
            }
            return
        }
        lastGaugeExport = now
        var inFlight = 0
        for (address, session) in machine.sessions {
            inFlight += session.bytesInFlight
            if let srtt = session.rtt.smoothedNanos {
                let recorder = rttRecorders[address] ?? metrics.rtt(peer: "\(address)")
                rttRecorders[address] = recorder
                recorder.record(Double(srtt) / 1e9)
            }
        }
        // A forgotten peer's series goes with it: peer labels must not grow with churn.
        if rttRecorders.count > machine.sessions.count {
            for address in rttRecorders.keys where machine.sessions[address] == nil {
                if let recorder = rttRecorders.removeValue(forKey: address) { recorder.destroy() }
            }
        }
        metrics.inFlightBytes.record(inFlight)
        metrics.reassemblyBytes.record(machine.reassemblyByteCount)
        metrics.peers.record(machine.sessions.count)
    }

    /// Moves the timer to `deadline`, the machine's next one (`nil`: none).
    private func moveTimer(to deadline: NIODeadline?) {
        guard !closed else { return }
        guard let deadline else {
            timer?.cancel()
            timer = nil
            timerDeadline = nil
            return
        }
        if let current = timerDeadline, current <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        timer = eventLoop.assumeIsolated().scheduleTask(deadline: deadline) { [self] in
            timerDeadline = nil
            timer = nil
            machine.tick(now: .now())
            perform(machine.takeActions())
            flushNow()
        }
    }
}

@available(*, unavailable)
extension TransportHandler: Sendable {}
