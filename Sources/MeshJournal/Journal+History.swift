import MeshCore
import MeshFailpoints

/// What a message's live handler chain produced, as recorded: the basis of a replay comparison.
public enum RecordedResult: Sendable, Hashable {
    /// Every handler of the last attempt returned; `response` is the first non-nil return (nil: none did).
    case ok(response: MeshData?)
    /// A handler of the last attempt threw this error.
    case failed(error: String)
}

/// How many rows a pruning pass deleted.
public struct PruneResult: Sendable, Hashable {
    /// Acked or failed outbound messages.
    public var outbound: Int
    /// Handled inbound messages (their invocations went with them).
    public var inbound: Int

    /// Creates a result.
    public init(outbound: Int, inbound: Int) {
        self.outbound = outbound
        self.inbound = inbound
    }
}

extension Journal {
    /// Recorded inbound messages of `commandID` (every status), in arrival order, journaled between `fromMs`
    /// and `toMs` (Unix ms, inclusive), after row `afterID`: the input of a replay.
    public func inboundHistory(commandID: UInt16, fromMs: Int64 = 0, toMs: Int64 = .max, afterID: Int64 = 0,
                               limit: Int = 1000) async throws -> [StoredInbound] {
        try await read { db in
            // The time range as a range of ids (rows are in journal order), then exact on created_at.
            let first = fromMs <= 0 ? 0 : try Self.firstKey(createdAtOrAfter: fromMs, in: .inbound, db)
            let end = toMs == .max ? Int64.max : try Self.firstKey(createdAtOrAfter: toMs + 1, in: .inbound, db)
            let statement = try db.cached("""
                SELECT \(Self.inboundColumns) FROM \(Self.inboundSource)
                WHERE s.command_id = ? AND i.id > ? AND i.id < ? AND i.created_at BETWEEN ? AND ? AND i.kind <> 3
                ORDER BY i.id LIMIT ?
                """)
            try statement.bind(1, Int64(commandID))
            try statement.bind(2, max(afterID, first - 1))
            try statement.bind(3, end)
            try statement.bind(4, fromMs)
            try statement.bind(5, toMs)
            try statement.bind(6, limit)
            var rows: [StoredInbound] = []
            while try statement.step() { rows.append(Self.readInbound(statement)) }
            return rows
        }
    }

    /// The recorded result of the live (non-replay) handler chain of inbound message `inboundID`, from its
    /// last attempt; `nil` if no handler ever finished.
    public func recordedResult(inboundID: Int64) async throws -> RecordedResult? {
        try await read { db in
            // The last chain: the invocations from the most recent finished first handler on (attempt numbers
            // restart after a re-queue, so order by id rather than attempt).
            let statement = try db.cached("""
                SELECT v.outcome, v.error, v.response FROM mesh_invocation_rows v
                WHERE v.inbound_id = ?1 AND v.replay_run IS NULL AND v.finished_at IS NOT NULL
                  AND v.id >= (SELECT max(id) FROM mesh_invocation_rows
                               WHERE inbound_id = ?1 AND replay_run IS NULL AND handler_index = 0 AND finished_at IS NOT NULL)
                ORDER BY v.handler_index, v.id
                """)
            try statement.bind(1, inboundID)
            var any = false
            var response: MeshData?
            while try statement.step() {
                any = true
                if statement.int(0) == 1 { return .failed(error: statement.optionalText(1) ?? "") }
                if response == nil, let bytes = statement.optionalBlob(2) { response = try? MeshCodec.decode(bytes) }
            }
            return any ? .ok(response: response) : nil
        }
    }

    /// Records the end of a replay run.
    public func finishReplayRun(_ id: Int64, description: String? = nil) async throws {
        let now = WallClock.nowMs()
        try await writer.submit { context in
            let statement = try context.db.cached(
                "UPDATE mesh_replay_run SET finished_at = ?, description = coalesce(?, description) WHERE id = ?")
            try statement.bind(1, now)
            try statement.bind(2, description)
            try statement.bind(3, id)
            try statement.step()
        }
    }

    /// Moves an `unhandled` message to `received` if it still is `unhandled`; returns whether it did. The
    /// dispatcher claims each message this way before running it, so two catch-up passes cannot both run it.
    public func claimUnhandled(id: Int64) async throws -> Bool {
        try await writer.submit { context in
            let statement = try context.db.cached("UPDATE mesh_inbound_state SET status = 0 WHERE id = ? AND status = 4")
            try statement.bind(1, id)
            try statement.step()
            return context.db.changes == 1
        }
    }

    /// Dead-lettered inbound messages, oldest first (optionally of one command ID).
    public func deadInbound(commandID: UInt16? = nil, limit: Int = 1000) async throws -> [StoredInbound] {
        try await read { db in
            let statement = try db.cached("""
                SELECT \(Self.inboundColumns) FROM \(Self.inboundSource)
                WHERE s.status = 3 AND (?1 IS NULL OR s.command_id = ?1) ORDER BY s.id LIMIT ?2
                """)
            try statement.bind(1, commandID.map { Int64($0) })
            try statement.bind(2, limit)
            var rows: [StoredInbound] = []
            while try statement.step() { rows.append(Self.readInbound(statement)) }
            return rows
        }
    }

    /// Moves dead-lettered messages back to `received` with their attempt count reset, so the dispatcher
    /// runs them again (the earlier invocations stay recorded). Returns the ids that changed.
    @discardableResult
    public func requeueDead(ids: [Int64]) async throws -> [Int64] {
        guard !ids.isEmpty else { return [] }
        return try await writer.submit { context in try Self.requeueDead(context.db, ids: ids) }
    }

    /// ``requeueDead(ids:)`` on a connection the caller holds (the CLI's maintenance connection).
    package static func requeueDead(_ db: SQLiteConnection, ids: [Int64]) throws -> [Int64] {
        let statement = try db.cached(
            "UPDATE mesh_inbound_state SET status = 0, attempts = 0, completed_at = NULL, error = NULL WHERE id = ? AND status = 3")
        var changed: [Int64] = []
        for id in ids {
            try statement.bind(1, id)
            try statement.step()
            if db.changes == 1 { changed.append(id) }
            statement.reset()
        }
        return changed
    }

    /// Deletes up to `batchSize` finished messages per direction that completed before `cutoffMs`: acked or
    /// failed outbound rows, handled inbound rows with their invocations; and up to `batchSize` shared-data
    /// versions written before it that a later version of their key superseded. Pending, open and dead messages,
    /// and the current version of every shared key, are never pruned. One short transaction per call, so sends interleave; call until it returns zeros.
    public func pruneFinished(completedBeforeMs cutoffMs: Int64, batchSize: Int = 1000) async throws -> PruneResult {
        try await writer.submit { context in try Self.pruneFinished(context.db, completedBeforeMs: cutoffMs, batchSize: batchSize) }
    }

    /// ``pruneFinished(completedBeforeMs:batchSize:)`` on a connection the caller holds, inside its transaction
    /// (`foreign_keys` must be on so state rows and invocations go with their messages).
    package static func pruneFinished(_ db: SQLiteConnection, completedBeforeMs cutoffMs: Int64, batchSize: Int) throws -> PruneResult {
        // A message completes after it is created, so every row that completed before the cutoff was created
        // before it: the candidates are the rows before the first one created at the cutoff (?3, found by
        // bisecting the key), read through the narrow state rows in key order.
        let outboundRows = """
            SELECT s.seq FROM mesh_outbound_state s JOIN mesh_outbound o ON o.seq = s.seq
            WHERE s.seq < ?3 AND s.status <> 0 AND s.completed_at < ?1 AND o.created_at < ?1 ORDER BY s.seq LIMIT ?2
            """
        let inboundRows = """
            SELECT s.id FROM mesh_inbound_state s JOIN mesh_inbound i ON i.id = s.id
            WHERE s.id < ?3 AND s.status = 1 AND s.completed_at < ?1 AND i.created_at < ?1 ORDER BY s.id LIMIT ?2
            """
        let outboundEnd = try firstKey(createdAtOrAfter: cutoffMs, in: .outbound, db)
        let inboundEnd = try firstKey(createdAtOrAfter: cutoffMs, in: .inbound, db)
        func bind(_ statement: SQLiteStatement, end: Int64) throws {
            try statement.bind(1, cutoffMs)
            try statement.bind(2, batchSize)
            try statement.bind(3, end)
        }
        // Only for a crash test: which rows this transaction deletes, reported when the failpoint kills it.
        var doomed: (outbound: [Int64], inbound: [Int64]) = ([], [])
        if Failpoint.isArmed("prune.during") {
            for (sql, isOutbound) in [(outboundRows, true), (inboundRows, false)] {
                let select = try db.prepare(sql)
                try bind(select, end: isOutbound ? outboundEnd : inboundEnd)
                var ids: [Int64] = []
                while try select.step() { ids.append(select.int64(0)) }
                if isOutbound { doomed.outbound = ids } else { doomed.inbound = ids }
            }
        }
        let outbound = try db.cached("DELETE FROM mesh_outbound WHERE seq IN (\(outboundRows))")
        try bind(outbound, end: outboundEnd)
        try outbound.step()
        let outCount = db.changes
        let inbound = try db.cached("DELETE FROM mesh_inbound WHERE id IN (\(inboundRows))")
        try bind(inbound, end: inboundEnd)
        try inbound.step()
        let inCount = db.changes
        // Shared-data history: versions superseded by a later one of their key, written before the cutoff (the
        // current version of every key stays, however old).
        let shared = try db.cached("""
            DELETE FROM mesh_shared WHERE id IN (SELECT s.id FROM mesh_shared s WHERE s.updated_at < ?1 AND EXISTS (
                SELECT 1 FROM mesh_shared t WHERE \(Self.sharedSupersedes)) LIMIT ?2)
            """)
        try shared.bind(1, cutoffMs)
        try shared.bind(2, batchSize)
        try shared.step()
        if outCount > 0 && inCount > 0 {
            Failpoint.pass("prune.during", note: """
                outbound \(doomed.outbound.map(String.init).joined(separator: ",")) \
                inbound \(doomed.inbound.map(String.init).joined(separator: ","))
                """)
        }
        return PruneResult(outbound: outCount, inbound: inCount)
    }

    /// A table of journaled messages, for ``firstKey(createdAtOrAfter:in:_:)``.
    package enum MessageTable: Sendable {
        /// `mesh_outbound`, keyed by `seq`.
        case outbound
        /// `mesh_inbound`, keyed by `id`.
        case inbound
    }

    /// The key (`seq` of `mesh_outbound`, `id` of `mesh_inbound`) of the first row journaled at or after `ms`
    /// (Unix ms), or one past the last key if none was (1 for an empty table).
    ///
    /// Rows are inserted in the order they are journaled, so their key orders them by `created_at`: this bisects
    /// the key with point reads (about 2 × log2 of the key range) instead of keeping an index on `created_at`, which
    /// cost a page per commit (schema v8). If the wall clock stepped back, rows near the answer can be out of time
    /// order by that step; callers that must be exact also filter on `created_at`.
    package static func firstKey(createdAtOrAfter ms: Int64, in table: MessageTable, _ db: SQLiteConnection) throws -> Int64 {
        let (name, key) = switch table {
        case .outbound: ("mesh_outbound", "seq")
        case .inbound: ("mesh_inbound", "id")
        }
        let bounds = try db.cached("SELECT (SELECT min(\(key)) FROM \(name)), (SELECT max(\(key)) FROM \(name))")
        defer { bounds.reset() }
        guard try bounds.step(), let lowest = bounds.optionalInt64(0), let highest = bounds.optionalInt64(1) else { return 1 }
        // The first row with a key in [from, to]: its key and created_at.
        let probe = try db.cached("SELECT \(key), created_at FROM \(name) WHERE \(key) BETWEEN ? AND ? ORDER BY \(key) LIMIT 1")
        defer { probe.reset() }
        var low = lowest, high = highest, answer = highest + 1
        while low <= high {
            let middle = low + (high - low) / 2
            probe.reset()
            try probe.bind(1, middle)
            try probe.bind(2, high)
            guard try probe.step() else {
                high = middle - 1
                continue
            }
            let found = probe.int64(0)
            if probe.int64(1) >= ms {
                answer = found
                high = middle - 1
            } else {
                low = found + 1
            }
        }
        return answer
    }
}
