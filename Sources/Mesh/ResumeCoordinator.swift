import NIOConcurrencyHelpers
import Synchronization

/// After a restart, the peers whose pending messages are still being resent, each with the gate that holds new
/// messages to that peer until the resend handed over every older one (order per command ID).
///
/// Called from any thread: the resend tasks begin and end a peer's resume; every send asks whether its peer is
/// resuming. Once no resend runs — always, soon after start — that question is one atomic load, no lock.
final class ResumeCoordinator: Sendable {
    private let gates = NIOLockedValueBox<[String: ResumeGate]>([:])
    /// The number of gates in ``gates``.
    private let running = Atomic<Int>(0)

    /// Closes a gate for `peer`: new messages to it wait until ``end(_:)``.
    func begin(_ peer: String) -> ResumeGate {
        let gate = ResumeGate()
        gates.withLockedValue { $0[peer] = gate }
        running.add(1, ordering: .releasing)
        return gate
    }

    /// `peer`'s resend handed over what it could: opens its gate.
    func end(_ peer: String) {
        let gate = gates.withLockedValue { $0.removeValue(forKey: peer) }
        running.subtract(1, ordering: .releasing)
        gate?.open()
    }

    /// Whether any resend still runs.
    var isResuming: Bool { running.load(ordering: .acquiring) > 0 }

    /// The gate of `peer`'s running resend, if any.
    func gate(of peer: String) -> ResumeGate? {
        guard isResuming else { return nil }
        return gates.withLockedValue { $0[peer] }
    }
}
