import NIOConcurrencyHelpers

/// An event that happens once and can be awaited, before or after it happened, from any task: a node's shutdown
/// beginning (``MeshNode/run()`` waits on it instead of polling), its shutdown finished, its first gossip from the
/// cluster (``MeshNode/initialSync(timeout:)``). A waiting task that is cancelled stops waiting.
final class OnceSignal: Sendable {
    private let state = NIOLockedValueBox<(fired: Bool, waiters: [Int: CheckedContinuation<Void, Never>], next: Int)>((false, [:], 0))

    /// Wakes every waiter, now and later.
    func fire() {
        let waiters = state.withLockedValue { state -> [CheckedContinuation<Void, Never>] in
            state.fired = true
            defer { state.waiters.removeAll() }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once fired, or at once when the calling task is cancelled.
    func wait() async {
        let id = state.withLockedValue { state -> Int in
            state.next += 1
            return state.next
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLockedValue { state -> Bool in
                    if state.fired || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}
