import Logging
import MeshCore
import MeshJournal

extension MeshNode {
    /// Sends `data` reliably to every address through a relay tree (Diarkis `SendMany`): this node sends to at
    /// most `limit` of them, each forwards to its share of the rest, and so on. Every hop is journal-first: a
    /// relay commits the message and its forwards in one transaction, so a crash cannot lose a branch. This
    /// node's own address and duplicates are skipped. Returns the deliveries of the first hops.
    /// - Throws: ``MeshError`` (`invalidAddress`, `invalidConfiguration` for `limit` < 1, `encoding`).
    @discardableResult
    public func sendMany(_ commandID: UInt16, to addresses: [String], _ data: MeshData, limit: Int = 2) async throws -> [Delivery] {
        try await sendTree(commandID, to: addresses, data, limit: limit, kind: .send)
    }

    /// ``sendMany(_:to:_:limit:)`` sent once per hop, unreliably (Diarkis `USendMany`), journaled all the same.
    @discardableResult
    public func usendMany(_ commandID: UInt16, to addresses: [String], _ data: MeshData, limit: Int = 2) async throws -> [Delivery] {
        try await sendTree(commandID, to: addresses, data, limit: limit, kind: .usend)
    }

    private func sendTree(_ commandID: UInt16, to addresses: [String], _ data: MeshData, limit: Int,
                          kind: MessageKind) async throws -> [Delivery] {
        try checkRunning()
        guard (1...1024).contains(limit) else { throw MeshError(.invalidConfiguration, "limit must be 1...1024 (got \(limit))") }
        var seen: Set<String> = [address]
        var targets: [String] = []
        for text in addresses {
            let normalized = MeshAddress.text(try MeshAddress.parse(text))
            if seen.insert(normalized).inserted { targets.append(normalized) }
        }
        guard !targets.isEmpty else { return [] }
        let payload = try Self.encodePayload(data)
        let json = configuration.storesPayloadJSON ? MeshJSON.string(from: data) : nil
        let hops = RelayTree.split(targets, limit: limit)
        let messages = hops.map {
            OutboundMessage(commandID: commandID, kind: kind, peer: $0.direct, payload: payload, payloadJSON: json,
                            relay: RelayTree.encode(limit: limit, branch: $0.branch))
        }
        try checkDiskSpace()
        return try await journalAndTransmit(messages, to: try messages.map { try MeshAddress.parse($0.peer) })
    }

    /// The outbound rows a relay journals with a received SendMany message: its branch, split again.
    func relayForwards(_ relay: String, commandID: UInt16, kind: MessageKind, payload: [UInt8]) -> [OutboundMessage] {
        guard kind == .send || kind == .usend, let (limit, branch) = RelayTree.decode(relay) else {
            logger.notice("ignored a malformed relay branch", metadata: ["mesh.command": "\(commandID)"])
            return []
        }
        let targets = branch.compactMap { try? MeshAddress.text(MeshAddress.parse($0)) }.filter { $0 != address }
        return RelayTree.split(targets, limit: limit).map {
            OutboundMessage(commandID: commandID, kind: kind, peer: $0.direct, payload: payload,
                            relay: RelayTree.encode(limit: limit, branch: $0.branch))
        }
    }

    /// Transmits the forwards journaled with `row` (sequence numbers `seqs`), from the commit that journaled them;
    /// under backpressure the rest wait for window space in a task, in order.
    func transmitForwards(_ row: InboundMessage, seqs: [UInt64]) {
        var rest = Array(zip(row.forwards, seqs))
        while let (forward, seq) = rest.first, !isResuming(forward.peer) {
            guard let target = try? MeshAddress.parse(forward.peer) else {
                logger.error("could not forward a relayed message", metadata: ["mesh.peer": "\(forward.peer)", "mesh.error": "unparseable address"])
                rest.removeFirst()
                continue
            }
            guard transmitNow(seq: seq, Self.envelope(forward, seq: seq), commandID: forward.commandID, to: target) != nil else { break }
            rest.removeFirst()
        }
        guard !rest.isEmpty else { return }
        let waiting = rest
        Task {
            for (forward, seq) in waiting {
                await awaitResume(of: forward.peer)
                do {
                    _ = try await transmit(seq: seq, Self.envelope(forward, seq: seq), commandID: forward.commandID,
                                           to: try MeshAddress.parse(forward.peer))
                } catch {
                    logger.error("could not forward a relayed message", metadata: ["mesh.peer": "\(forward.peer)", "mesh.error": "\(error)"])
                }
            }
        }
    }
}
