import NIOConcurrencyHelpers

/// Closed while a restarted node resends the messages that were pending to one peer; new messages to that peer
/// wait at it, so they cannot overtake older ones of the same command ID.
final class ResumeGate: Sendable {
    private let state = NIOLockedValueBox<[CheckedContinuation<Void, Never>]?>([])

    /// Lets everyone through, now and later.
    func open() {
        let waiters = state.withLockedValue { waiters -> [CheckedContinuation<Void, Never>] in
            defer { waiters = nil }
            return waiters ?? []
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the gate is open.
    func wait() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let isOpen = state.withLockedValue { waiters -> Bool in
                guard waiters != nil else { return true }
                waiters!.append(continuation)
                return false
            }
            if isOpen { continuation.resume() }
        }
    }
}
