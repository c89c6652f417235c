import MeshJournal
import MeshTransport

/// How a ``MeshNode`` runs. Diarkis `mesh.json` keys map as: `address`/`port` → ``address``, `retryInterval` →
/// ``retryInterval``, `retryTimeout` (alias `reliableRetryTimeout`) → ``retryTimeout``.
public struct MeshConfiguration: Sendable {
    /// Where the node listens, `host:port` with a numeric host (`127.0.0.1:8000`, `[::1]:8000`). Port 0 picks one.
    public var address: String
    /// The node's type (Diarkis `SetNodeType`), e.g. `"UDP"`.
    public var nodeType: String
    /// The journal file (created if missing).
    public var journalPath: String
    /// The cluster key every node shares.
    public var keyring: Keyring
    /// What a journal commit survives. Default `.normal`.
    public var durability: JournalConfiguration.Durability
    /// Retransmission timeout before any RTT sample (Diarkis `retryInterval`). Default 1000 ms.
    public var retryInterval: Duration
    /// Give-up time of a reliable message (Diarkis `retryTimeout`). Default 3000 ms.
    public var retryTimeout: Duration
    /// Silence after which a peer is reported down and its unconfirmed messages fail. Default 3000 ms.
    public var peerTimeout: Duration
    /// How long ``MeshNode/shutdown()`` waits for running handlers before cancelling them (what did not finish
    /// stays open in the journal and is dispatched again at the next start). Default 10 s.
    public var shutdownTimeout: Duration
    /// Attempts at a message whose handler throws before it is dead-lettered. Default 3.
    public var maxHandlerAttempts: Int
    /// Encrypt message bodies on the wire. Default `false` (authenticated only).
    public var encrypt: Bool
    /// Store each message's JSON rendering in the journal's `payload_json` (for `json_extract` in audits).
    /// Default `true`; turning it off roughly halves the bytes journaled for payload-heavy messages.
    public var storesPayloadJSON: Bool

    /// A configuration with the defaults above.
    public init(address: String, nodeType: String = "UDP", journalPath: String, clusterKey: ClusterKey) {
        self.address = address
        self.nodeType = nodeType
        self.journalPath = journalPath
        self.keyring = Keyring(clusterKey)
        self.durability = .normal
        self.retryInterval = .milliseconds(1000)
        self.retryTimeout = .milliseconds(3000)
        self.peerTimeout = .milliseconds(3000)
        self.shutdownTimeout = .seconds(10)
        self.maxHandlerAttempts = 3
        self.encrypt = false
        self.storesPayloadJSON = true
    }

    /// Checks every setting.
    public func validate() throws(MeshError) {
        _ = try MeshAddress.parse(address)
        guard !journalPath.isEmpty else { throw MeshError(.invalidConfiguration, "journalPath is empty") }
        guard (1...100).contains(maxHandlerAttempts) else {
            throw MeshError(.invalidConfiguration, "maxHandlerAttempts must be 1...100 (got \(maxHandlerAttempts))")
        }
    }
}
