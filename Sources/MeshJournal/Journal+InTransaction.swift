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

        package init(inboundID: Int64, handlerIndex: Int, attempt: Int, startedAt: Int64, outcome: InvocationOutcome,
                     error: String? = nil, response: MeshData? = nil) {
            self.inboundID = inboundID
            self.handlerIndex = handlerIndex
            self.attempt = attempt
            self.startedAt = startedAt
            self.outcome = outcome
            self.error = error
            self.response = response
        }
    }

    /// Writes `invocation` in the job's transaction.
    package static func write(_ invocation: FinishedInvocation, context: WorkerContext) throws {
        try insertFinishedInvocation(context.db, inboundID: invocation.inboundID, handlerIndex: invocation.handlerIndex,
                                     attempt: invocation.attempt, startedAt: invocation.startedAt, finishedAt: WallClock.nowMs(),
                                     outcome: invocation.outcome, error: invocation.error,
                                     responseBytes: invocation.response.flatMap { try? MeshCodec.encode($0) },
                                     responseJSON: invocation.response.map { MeshJSON.string(from: $0) })
    }

    /// Sets an inbound message's status in the job's transaction (see ``setInboundStatus(id:_:attempts:error:)``),
    /// writing its state row if the job has not yet (a row journaled with ``InboundMessage/stateWrittenInJob``).
    package static func writeInboundStatus(id: Int64, commandID: UInt16, _ status: InboundStatus, attempts: Int, error: String?,
                                           context: WorkerContext) throws {
        let statement = try context.db.cached("""
            INSERT INTO mesh_inbound_state(id, command_id, status, attempts, completed_at, error) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
            ON CONFLICT(id) DO UPDATE SET status = ?3, attempts = ?4, completed_at = ?5, error = ?6
            """)
        try statement.bind(1, id)
        try statement.bind(2, Int64(commandID))
        try statement.bind(3, Int64(status.rawValue))
        try statement.bind(4, attempts)
        try statement.bind(5, status.isComplete ? Optional(WallClock.nowMs()) : nil)
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
