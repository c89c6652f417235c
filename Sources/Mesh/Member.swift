import MeshCore

/// The status a node declares for itself (Diarkis `SetStatus`: online 1, offline 2, taken 3).
public enum MemberStatus: Int, Sendable, Hashable, CustomStringConvertible {
    /// Accepting work.
    case online = 1
    /// Shutting down (Diarkis sets this on SIGTERM); still answers, takes no new work.
    case offline = 2
    /// Full: existing work continues, no new work should be routed to it (Diarkis `Taken`).
    case taken = 3

    /// `online`, `offline` or `taken`.
    public var description: String {
        switch self {
        case .online: "online"
        case .offline: "offline"
        case .taken: "taken"
        }
    }
}

/// One node of the cluster as this node knows it: what the node declared about itself (address, type, role,
/// status, values) and what this node observed (reachable or not).
public struct Member: Sendable, Hashable {
    /// The node's id (its journal's), 32 hex digits.
    public let nodeID: String
    /// Its mesh address, `host:port` — what ``MeshNode/send(_:to:_:)`` takes.
    public var address: String
    /// Its type (Diarkis `SetNodeType`), e.g. `"UDP"` or `"CONNECTOR"`.
    public var nodeType: String
    /// Its role (Diarkis: the protocol it serves clients with).
    public var nodeRole: String
    /// What it declared: online, offline or taken.
    public var status: MemberStatus
    /// Free-form metadata it published (Diarkis `SetNodeValue`), e.g. its player count.
    public var values: MeshData
    /// The public address its clients use (Diarkis `SetEndPoint`), `host:port`, or `nil` if it published none.
    /// Not a mesh address: nodes never send to it.
    public var endpoint: String?
    /// Orders the node's own announcements: a record with a higher incarnation replaces a lower one. The high
    /// 32 bits are the node's boot epoch, so a restarted node always supersedes its previous life.
    public var incarnation: UInt64
    /// This node's observation: heartbeats from it arrive (false once it was silent for the member timeout, or
    /// announced that it left).
    public var isReachable: Bool
    /// Whether this record is the local node itself.
    public var isSelf: Bool

    /// Creates a record.
    public init(nodeID: String, address: String, nodeType: String, nodeRole: String, status: MemberStatus,
                values: MeshData = [:], endpoint: String? = nil, incarnation: UInt64, isReachable: Bool = true, isSelf: Bool = false) {
        self.nodeID = nodeID
        self.address = address
        self.nodeType = nodeType
        self.nodeRole = nodeRole
        self.status = status
        self.values = values
        self.endpoint = endpoint
        self.incarnation = incarnation
        self.isReachable = isReachable
        self.isSelf = isSelf
    }

    /// Reachable and declared online: where new work may go.
    public var isOnline: Bool { isReachable && status == .online }
}

/// A change in the membership, delivered by ``MeshNode/membershipEvents()``.
public enum MembershipEvent: Sendable, Hashable {
    /// A node was heard from for the first time, or again after being down.
    case joined(Member)
    /// A node's declared status, values, address, type, role or endpoint changed.
    case updated(Member)
    /// A node stopped answering heartbeats for the member timeout.
    case down(Member)
    /// A node announced that it is shutting down.
    case left(Member)

    /// The member the event is about.
    public var member: Member {
        switch self {
        case .joined(let m), .updated(let m), .down(let m), .left(let m): m
        }
    }
}
