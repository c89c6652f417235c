import Foundation
import Logging
import MeshCore
import MeshJournal

/// The result of ``MeshNode/replay(commandID:from:to:limit:sendResponses:)``: each recorded message with its
/// recorded and replayed result, and whether they agree.
public struct ReplayReport: Sendable {
    /// How a replayed result compares with the recorded one.
    public enum Verdict: String, Sendable, Hashable, CaseIterable {
        /// Same response (or the same error).
        case same
        /// Both succeeded with different responses, or both failed with different errors.
        case different
        /// It succeeded when recorded and fails now.
        case nowFailing
        /// It failed when recorded and succeeds now.
        case nowSucceeding
        /// No handler had finished when it was recorded (nothing to compare with).
        case notRecorded
    }

    /// One replayed message.
    public struct Entry: Sendable, Hashable {
        /// The message id, `origin_node:origin_seq`.
        public let messageID: String
        /// Its row in this node's journal (`mesh_messages.id` where direction is `in`).
        public let inboundID: Int64
        /// What the live handlers produced.
        public let recorded: RecordedResult?
        /// What the current handlers produced.
        public let replayed: RecordedResult
        /// The comparison.
        public let verdict: Verdict
    }

    /// The replay run's id (`mesh_invocations.replay_run`).
    public let runID: Int64
    /// Every replayed message, in arrival order.
    public let entries: [Entry]

    /// How many entries got each verdict.
    public var counts: [Verdict: Int] { entries.reduce(into: [:]) { $0[$1.verdict, default: 0] += 1 } }
    /// The entries whose result changed (different, now failing, now succeeding).
    public var regressions: [Entry] { entries.filter { $0.verdict == .different || $0.verdict == .nowFailing || $0.verdict == .nowSucceeding } }

    static func verdict(recorded: RecordedResult?, replayed: RecordedResult) -> Verdict {
        switch (recorded, replayed) {
        case (nil, _): .notRecorded
        case (.ok(let a)?, .ok(let b)): a == b ? .same : .different
        case (.failed(let a)?, .failed(let b)): a == b ? .same : .different
        case (.ok?, .failed): .nowFailing
        case (.failed?, .ok): .nowSucceeding
        }
    }
}

extension MeshNode {
    /// Re-invokes the currently registered handlers of `commandID` on the recorded inbound messages journaled
    /// between `from` and `to`, in their original order, recording the invocations as one replay run
    /// (`mesh_invocations.replay_run`), and compares each new result with the recorded one: regression-testing
    /// new handler code against real traffic. Handlers see ``MessageInfo/replayRun`` set. Each message runs
    /// once (no retries); nothing is sent unless `sendResponses` is true (then requests are answered again).
    /// - Throws: ``MeshError`` (`notStarted` if no handler is registered for `commandID`), journal errors.
    public func replay(commandID: UInt16, from: Date? = nil, to: Date? = nil, limit: Int = .max,
                       sendResponses: Bool = false) async throws -> ReplayReport {
        let handlers = handlers(for: commandID)
        guard !handlers.isEmpty else { throw MeshError(.notStarted, "no handler is registered for command \(commandID)") }
        let fromMs = from.map { Int64(($0.timeIntervalSince1970 * 1000).rounded(.down)) } ?? 0
        let toMs = to.map { Int64(($0.timeIntervalSince1970 * 1000).rounded(.up)) } ?? .max
        let runID = try await journal.startReplayRun(commandID: commandID, description: "replay of command \(commandID)")
        var entries: [ReplayReport.Entry] = []
        var afterID: Int64 = 0
        pages: while entries.count < limit {
            let page = try await journal.inboundHistory(commandID: commandID, fromMs: fromMs, toMs: toMs, afterID: afterID,
                                                        limit: min(500, limit - entries.count))
            guard !page.isEmpty else { break }
            for row in page {
                afterID = row.id
                let replayed = await replayOne(row, handlers: handlers, runID: runID, sendResponses: sendResponses)
                let recorded = try await journal.recordedResult(inboundID: row.id)
                entries.append(.init(messageID: "\(row.originNode):\(row.originSeq)", inboundID: row.id, recorded: recorded,
                                     replayed: replayed, verdict: ReplayReport.verdict(recorded: recorded, replayed: replayed)))
                if entries.count >= limit { break pages }
            }
        }
        let report = ReplayReport(runID: runID, entries: entries)
        let summary = ReplayReport.Verdict.allCases.map { "\($0.rawValue) \(report.counts[$0] ?? 0)" }.joined(separator: ", ")
        try await journal.finishReplayRun(runID, description: "replay of command \(commandID): \(entries.count) messages; \(summary)")
        logger.info("replay finished", metadata: ["mesh.run": "\(runID)", "mesh.command": "\(commandID)", "mesh.summary": "\(summary)"])
        return report
    }

    private func replayOne(_ row: StoredInbound, handlers: [RegisteredHandler], runID: Int64, sendResponses: Bool) async -> RecordedResult {
        guard let data = try? MeshCodec.decode(row.payload) else { return .failed(error: "undecodable payload") }
        let info = MessageInfo(originNode: row.originNode, originSeq: row.originSeq, sender: row.peer, commandID: row.commandID,
                               kind: row.kind, attempt: 1, replayRun: runID)
        var firstResponse: MeshData?
        for (index, handler) in handlers.enumerated() {
            let invocation = try? await journal.startInvocation(inboundID: row.id, handlerIndex: index, attempt: 1, replayRun: runID)
            do {
                let response = try await handler.call(data, info)
                if firstResponse == nil { firstResponse = response }
                if let invocation { try? await journal.finishInvocation(invocation, outcome: .ok, response: response) }
            } catch {
                let text = "\(error)"
                if let invocation { try? await journal.finishInvocation(invocation, outcome: .error, error: text) }
                if sendResponses && row.kind == .request { await respond(to: DispatchItem(row), with: .error(text)) }
                return .failed(error: text)
            }
        }
        if sendResponses && row.kind == .request { await respond(to: DispatchItem(row), with: .data(firstResponse ?? MeshData())) }
        return .ok(response: firstResponse)
    }

    // MARK: - Dead letters

    /// Messages whose handlers failed ``MeshConfiguration/maxHandlerAttempts`` times, oldest first.
    public func deadLetters(commandID: UInt16? = nil, limit: Int = 1000) async throws -> [StoredInbound] {
        try await journal.deadInbound(commandID: commandID, limit: limit)
    }

    /// Puts dead-lettered messages back in their command ID's queue (attempts reset; earlier invocations stay
    /// recorded) and dispatches them. Returns how many were re-queued (ids that are not dead are skipped).
    @discardableResult
    public func requeueDead(_ ids: [Int64]) async throws -> Int {
        let changed = try await journal.requeueDead(ids: ids)
        for id in changed {
            guard let row = try await journal.inbound(id: id) else { continue }
            if handlers(for: row.commandID).isEmpty {
                try await journal.setInboundStatus(id: id, .unhandled, attempts: 0)
            } else {
                lane(row.commandID).enqueue(.message(DispatchItem(row)))
            }
        }
        return changed.count
    }
}
