import NIOConcurrencyHelpers
import MeshCore

/// Where a request's result is left, by whichever comes first: the response, a send failure, the timeout, or
/// shutdown. The result may arrive before the requester starts waiting; only the first result counts.
final class ResponseSlot: Sendable {
    private enum State {
        case waiting(CheckedContinuation<MeshData, any Error>?)
        case done(Result<MeshData, any Error>)
    }

    private let state = NIOLockedValueBox(State.waiting(nil))

    /// Records the result (the first one only) and wakes the requester if it waits.
    func resolve(_ result: Result<MeshData, any Error>) {
        let waiter: CheckedContinuation<MeshData, any Error>? = state.withLockedValue { state in
            guard case .waiting(let continuation) = state else { return nil }
            state = .done(result)
            return continuation
        }
        waiter?.resume(with: result)
    }

    /// The result, once there is one. `start` runs once the caller is waiting (so whatever it starts may resolve
    /// the slot from any thread at once): the request's journal job, so that the caller suspends once for the
    /// whole exchange.
    func value(starting start: () -> Void = {}) async throws -> MeshData {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<MeshData, any Error>) in
            let ready: Result<MeshData, any Error>? = state.withLockedValue { state in
                switch state {
                case .done(let result): return result
                case .waiting:
                    state = .waiting(continuation)
                    return nil
                }
            }
            if let ready { continuation.resume(with: ready) } else { start() }
        }
    }
}
