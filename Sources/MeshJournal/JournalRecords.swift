import MeshCore

/// What a message is, as recorded in the journal's `kind` column.
public enum MessageKind: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// A reliable one-way message (Diarkis `Send`).
    case send = 0
    /// An unreliable one-way message (Diarkis `USend`), journaled all the same.
    case usend = 1
    /// A request that expects a response (Diarkis `SendRequest`).
    case request = 2
    /// The response to a request.
    case response = 3

    /// The word used in the audit views: `send`, `usend`, `request`, `response`.
    public var description: String {
        switch self {
        case .send: "send"
        case .usend: "usend"
        case .request: "request"
        case .response: "response"
        }
    }
}

/// The state of an outbound message (`mesh_messages.status` for direction `out`).
public enum OutboundStatus: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Journaled, not yet acknowledged by the receiver's journal.
    case pending = 0
    /// The receiver acknowledged it: it is in the receiver's journal.
    case acked = 1
    /// Given up on; `error` says why.
    case failed = 2

    /// `pending`, `acked` or `failed`.
    public var description: String {
        switch self {
        case .pending: "pending"
        case .acked: "acked"
        case .failed: "failed"
        }
    }
}

/// The state of an inbound message (`mesh_messages.status` for direction `in`).
public enum InboundStatus: Int, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// Journaled; its handlers have not all finished.
    case received = 0
    /// Every handler finished.
    case handled = 1
    /// A handler threw; it will be retried until the attempt limit.
    case failed = 2
    /// Failed too often; skipped until re-queued.
    case dead = 3
    /// No handler was registered for its command ID; dispatched when one is.
    case unhandled = 4

    /// Whether the message is done with (`handled`, `dead`): such a row carries its `completed_at`, and is outside
    /// the open set that resume walks.
    package var isComplete: Bool { self == .handled || self == .dead }

    /// `received`, `handled`, `failed`, `dead` or `unhandled`.
    public var description: String {
        switch self {
        case .received: "received"
        case .handled: "handled"
        case .failed: "failed"
        case .dead: "dead"
        case .unhandled: "unhandled"
        }
    }
}

/// A journal's identity: a random node id created with the journal, and the boot epoch, incremented at every
/// open, so peers can tell a restarted node from a late packet.
public struct JournalIdentity: Sendable, Hashable {
    /// 32 lowercase hex digits (128 random bits).
    public let nodeID: String
    /// 1 for the first open, then +1 per open.
    public let bootEpoch: UInt64
}

/// A message to append to the outbound journal.
public struct OutboundMessage: Sendable, Hashable {
    /// The command ID the receiver dispatches on.
    public var commandID: UInt16
    /// What kind of message this is.
    public var kind: MessageKind
    /// The receiver's address (`host:port`).
    public var peer: String
    /// The ``MeshCodec`` encoding of the message data.
    public var payload: [UInt8]
    /// The JSON rendering for the audit column; computed by the journal when `nil` and enabled.
    public var payloadJSON: String?
    /// Links a request and its response (the request's message id).
    public var correlationID: String?
    /// The original message id when this message re-drives recorded traffic.
    public var replayOf: String?
    /// For a SendMany relay hop: the branch the receiver forwards the message to, `"limit;addr,addr"`.
    public var relay: String?
    /// A response reporting that the request's handlers failed: the payload is the error text (UTF-8).
    public var isErrorResponse = false
    /// For a response: the inbound row of the request it answers, marked answered in the same transaction, so
    /// a request is answered at most once (``StoredInbound/isAnswered``).
    public var answersInboundID: Int64? = nil

    /// A message whose payload is already encoded.
    public init(commandID: UInt16, kind: MessageKind, peer: String, payload: [UInt8], payloadJSON: String? = nil,
                correlationID: String? = nil, replayOf: String? = nil, relay: String? = nil) {
        self.relay = relay
        self.commandID = commandID
        self.kind = kind
        self.peer = peer
        self.payload = payload
        self.payloadJSON = payloadJSON
        self.correlationID = correlationID
        self.replayOf = replayOf
    }

    /// A message carrying `data`, encoded with ``MeshCodec`` and rendered with ``MeshJSON``.
    public init(commandID: UInt16, kind: MessageKind, peer: String, data: MeshData,
                correlationID: String? = nil, replayOf: String? = nil) throws(MeshCodecError) {
        self.init(commandID: commandID, kind: kind, peer: peer, payload: try MeshCodec.encode(data),
                  payloadJSON: MeshJSON.string(from: data), correlationID: correlationID, replayOf: replayOf)
    }
}

/// A received message to append to the inbound journal.
public struct InboundMessage: Sendable, Hashable {
    /// The sender's node id (32 hex digits).
    public var originNode: String
    /// The sender's outbound sequence: with ``originNode``, the message id, unique in the journal.
    public var originSeq: UInt64
    /// The command ID to dispatch on.
    public var commandID: UInt16
    /// What kind of message this is.
    public var kind: MessageKind
    /// The address it came from.
    public var peer: String
    /// The ``MeshCodec`` encoding of the message data.
    public var payload: [UInt8]
    /// The JSON rendering for the audit column; computed by the journal when `nil` and enabled.
    public var payloadJSON: String?
    /// Links a request and its response.
    public var correlationID: String?
    /// The original message id when this message re-drives recorded traffic.
    public var replayOf: String?
    /// `received` (a handler exists), `unhandled` (none registered yet), or `handled` for a row journaled
    /// already complete (a response, which its waiting request consumes and no handler runs for): then one
    /// attempt and `completed_at` = now are recorded with it.
    public var status: InboundStatus
    /// For a SendMany relay hop: the branch this node forwards the message to, `"limit;addr,addr"`.
    public var relay: String?
    /// Messages to journal as outbound in the same transaction, only if this message is new: the relay
    /// forwards, so a crash can never keep the message but lose its forwarding.
    public var forwards: [OutboundMessage] = []
    /// Set by the node for a message whose synchronous handlers run inside the job that journals it
    /// (``Journal/appendInboundRelaying(_:then:completion:)``'s `then`): its state row is written by `then` with
    /// the message's final status (``Journal/writeInboundStatus(id:commandID:_:attempts:error:context:)``), or with
    /// `status` after `then` if it wrote none. A message handled inline thus writes its state row once and never
    /// enters the open-set index: one page fewer per commit.
    package var stateWrittenInJob = false

    /// Creates an inbound message.
    public init(originNode: String, originSeq: UInt64, commandID: UInt16, kind: MessageKind, peer: String,
                payload: [UInt8], payloadJSON: String? = nil, correlationID: String? = nil, replayOf: String? = nil,
                status: InboundStatus = .received) {
        self.originNode = originNode
        self.originSeq = originSeq
        self.commandID = commandID
        self.kind = kind
        self.peer = peer
        self.payload = payload
        self.payloadJSON = payloadJSON
        self.correlationID = correlationID
        self.replayOf = replayOf
        self.status = status
    }
}

/// The outcome of appending one inbound message.
public enum InboundAppendResult: Sendable, Hashable {
    /// Journaled for the first time, as row `id`.
    case inserted(id: Int64)
    /// Already journaled (same origin node and sequence) as row `id`, now in `status`: acknowledge again,
    /// do not dispatch again.
    case duplicate(id: Int64, status: InboundStatus)

    /// The row id either way.
    public var id: Int64 {
        switch self {
        case .inserted(let id), .duplicate(let id, _): id
        }
    }
}

/// An outbound row read back from the journal.
public struct StoredOutbound: Sendable, Hashable {
    /// The origin sequence (this node's message number).
    public let seq: UInt64
    /// The command ID.
    public let commandID: UInt16
    /// What kind of message it is.
    public let kind: MessageKind
    /// The other node's address (`host:port`).
    public let peer: String
    /// Where it is in its life.
    public let status: OutboundStatus
    /// Transmissions (outbound) or dispatch attempts (inbound) so far.
    public let attempts: Int
    /// When it was journaled, Unix ms.
    public let createdAtMs: Int64
    /// When it reached its final state (acked/failed, handled/dead), Unix ms.
    public let completedAtMs: Int64?
    /// Links a request and its response.
    public let correlationID: String?
    /// The original message id, for re-driven traffic.
    public let replayOf: String?
    /// Why it failed, if it did.
    public let error: String?
    /// The MeshCodec-encoded message data.
    public let payload: [UInt8]
    /// The SendMany branch carried by the message (`"limit;addr,addr"`), if any.
    public var relay: String? = nil
    /// A response reporting a handler failure (its payload is the error text).
    public var isErrorResponse = false
}

/// An inbound row read back from the journal.
public struct StoredInbound: Sendable, Hashable {
    /// The row id: the order in which this node received its messages.
    public let id: Int64
    /// The sender's node id.
    public let originNode: String
    /// The sender's sequence number.
    public let originSeq: UInt64
    /// The command ID.
    public let commandID: UInt16
    /// What kind of message it is.
    public let kind: MessageKind
    /// The other node's address (`host:port`).
    public let peer: String
    /// Where it is in its life.
    public let status: InboundStatus
    /// Transmissions (outbound) or dispatch attempts (inbound) so far.
    public let attempts: Int
    /// When it was journaled, Unix ms.
    public let createdAtMs: Int64
    /// When it reached its final state (acked/failed, handled/dead), Unix ms.
    public let completedAtMs: Int64?
    /// Links a request and its response.
    public let correlationID: String?
    /// The original message id, for re-driven traffic.
    public let replayOf: String?
    /// Why it failed, if it did.
    public let error: String?
    /// The MeshCodec-encoded message data.
    public let payload: [UInt8]
    /// The SendMany branch carried by the message (`"limit;addr,addr"`), if any.
    public var relay: String? = nil
    /// For a request: a response to it was journaled (it is never answered twice).
    public var isAnswered = false
}
