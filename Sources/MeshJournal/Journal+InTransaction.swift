import MeshCore

/// Writes for a job already running on the writer (inside ``Journal/appendInboundRelaying(_:then:completion:)``'s
/// `then`): what a synchronous handler did is written in the transaction that journals its message, so one commit
/// holds the message, its invocations, its status and its response. Node-only (`package`): each must be called on
/// the writer thread with the job's context.
extension Journal {
    /// A finished invocation, written as one row (its start and its end).
    package struct FinishedInvocation: Sendable {
        package var inboundID: Int64
        package var handlerIndex: Int
        package var attempt: Int
        package var startedAt: Int64
        package var outcome: InvocationOutcome
        package var error: String?
        package var response: MeshData?
        /// `response` encoded already (the same response sent as a message): written as it is, not encoded again.
        package var encodedResponse: EncodedResponse?

        package init(inboundID: Int64, handlerIndex: Int, attempt: Int, startedAt: Int64, outcome: InvocationOutcome,
                     error: String? = nil, response: MeshData? = nil, encodedResponse: EncodedResponse? = nil) {
            self.inboundID = inboundID
            self.handlerIndex = handlerIndex
            self.attempt = attempt
            self.startedAt = startedAt
            self.outcome = outcome
            self.error = error
            self.response = response
            self.encodedResponse = encodedResponse
        }
    }

    /// Writes `invocation` in the job's transaction, as a row of its own.
    package static func write(_ invocation: FinishedInvocation, context: WorkerContext) throws {
        try insertFinishedInvocation(context, compactable(invocation, finishedAt: WallClock.nowMs()))
    }

    private static func compactable(_ invocation: FinishedInvocation, finishedAt: Int64) -> CompactableInvocation {
        let response = EncodedResponse.columns(invocation.encodedResponse, of: invocation.response)
        return CompactableInvocation(inboundID: invocation.inboundID, handlerIndex: invocation.handlerIndex, attempt: invocation.attempt,
                                     startedAt: invocation.startedAt, finishedAt: finishedAt, outcome: invocation.outcome,
                                     error: invocation.error, responseBytes: response.bytes, responseJSON: response.json)
    }

    /// Sets an inbound message's status in the job's transaction (see ``setInboundStatus(id:_:attempts:error:)``),
    /// writing its state row if the job has not yet (a row journaled with ``InboundMessage/stateWrittenInJob``).
    ///
    /// `invocation`, the one that ended the message, is written with it: into the state row if it is the common kind
    /// (see migration 0009), else as a row of its own.
    package static func writeInboundStatus(id: Int64, commandID: UInt16, _ status: InboundStatus, attempts: Int, error: String?,
                                           invocation: FinishedInvocation? = nil, context: WorkerContext) throws {
        let now = WallClock.nowMs()
        let completedAt = status.isComplete ? Optional(now) : nil
        if let invocation {
            let finished = compactable(invocation, finishedAt: now)
            if finished.inboundID == id, finished.fitsStateRow(status: status, attempts: attempts, statusError: error) {
                let statement = try context.db.cached("""
                    INSERT INTO mesh_inbound_state(id, command_id, status, attempts, completed_at, error, invocation_id, invocation_attempt,
                                                   invocation_started_at, invocation_finished_at, invocation_response, invocation_response_json)
                    VALUES (?1, ?2, ?3, ?4, ?5, NULL, ?6, ?4, ?7, ?5, ?8, ?9)
                    ON CONFLICT(id) DO UPDATE SET status = ?3, attempts = ?4, completed_at = ?5, error = NULL, invocation_id = ?6,
                        invocation_attempt = ?4, invocation_started_at = ?7, invocation_finished_at = ?5, invocation_response = ?8,
                        invocation_response_json = ?9
                    WHERE invocation_id IS NULL
                    """)
                try statement.bind(1, id)
                try statement.bind(2, Int64(commandID))
                try statement.bind(3, Int64(status.rawValue))
                try statement.bind(4, attempts)
                try statement.bind(5, completedAt)
                try statement.bind(6, try context.nextInvocationID())
                try statement.bind(7, finished.startedAt)
                try statement.bind(8, blob: finished.responseBytes)
                try statement.bind(9, finished.responseJSON)
                try statement.step()
                if context.db.changes == 1 { return }
            }
            try insertFinishedInvocation(context, finished)
        }
        let statement = try context.db.cached("""
            INSERT INTO mesh_inbound_state(id, command_id, status, attempts, completed_at, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            ON CONFLICT(id) DO UPDATE SET status = ?3, attempts = ?4, completed_at = ?5, error = ?6
            """)
        try statement.bind(1, id)
        try statement.bind(2, Int64(commandID))
        try statement.bind(3, Int64(status.rawValue))
        try statement.bind(4, attempts)
        try statement.bind(5, completedAt)
        try statement.bind(6, error)
        try statement.step()
    }

    /// Journals outbound messages (`pending`) in the job's transaction and returns their sequence numbers; the
    /// caller transmits them once the job committed. A response's `answersInboundID` marks its request answered.
    package static func writeOutbound(_ messages: [OutboundMessage], context: WorkerContext) throws -> [UInt64] {
        var rows = messages
        for i in rows.indices {
            rows[i].payloadJSON = context.storesPayloadJSON ? renderJSON(rows[i].payload, rows[i].payloadJSON) : nil
        }
        return try insertOutbound(rows, context: context, now: WallClock.nowMs())
    }
}
