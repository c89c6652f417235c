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
            let (_, normalized) = try addressTexts.parse(text)
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
        return try await journalAndTransmit(messages, to: try messages.map { try addressTexts.parse($0.peer).0 })
    }

    /// The outbound rows a relay journals with a received SendMany message: its branch, split again.
    func relayForwards(_ relay: String, commandID: UInt16, kind: MessageKind, payload: [UInt8]) -> [OutboundMessage] {
        guard kind == .send || kind == .usend, let (limit, branch) = RelayTree.decode(relay) else {
            logger.notice("ignored a malformed relay branch", metadata: ["mesh.command": "\(commandID)"])
            return []
        }
        let targets = branch.compactMap { try? addressTexts.parse($0).1 }.filter { $0 != address }
        return RelayTree.split(targets, limit: limit).map {
            OutboundMessage(commandID: commandID, kind: kind, peer: $0.direct, payload: payload,
                            relay: RelayTree.encode(limit: limit, branch: $0.branch))
        }
    }

    /// Transmits outbound messages journaled inside a receive transaction (a relay's forwards, a synchronous
    /// handler's responses), from the commit that journaled them, in order: now while the transport takes them and
    /// no resend to their peer runs after a restart; the rest from a task that waits for window space and for the
    /// resend (``awaitResume(of:)``), so none overtakes an older message of its command ID.
    func transmitCommitted(_ messages: [(message: OutboundMessage, seq: UInt64)]) {
        var rest = messages[...]
        while let (message, seq) = rest.first, !isResuming(message.peer) {
            guard let (target, _) = try? addressTexts.parse(message.peer) else {
                logger.error("could not transmit a journaled message", metadata: ["mesh.peer": "\(message.peer)", "mesh.error": "unparseable address"])
                rest.removeFirst()
                continue
            }
            guard transmitNow(seq: seq, Self.envelope(message, seq: seq), commandID: message.commandID, to: target) != nil else { break }
            rest.removeFirst()
        }
        guard !rest.isEmpty else { return }
        let waiting = Array(rest)
        Task {
            for (message, seq) in waiting {
                await awaitResume(of: message.peer)
                do {
                    _ = try await transmit(seq: seq, Self.envelope(message, seq: seq), commandID: message.commandID,
                                           to: try addressTexts.parse(message.peer).0)
                } catch {
                    // Shut down, or unparseable: the row stays pending (resent at the next start, or failed by it).
                    logger.error("could not transmit a journaled message", metadata: ["mesh.peer": "\(message.peer)", "mesh.error": "\(error)"])
                }
            }
        }
    }
}
