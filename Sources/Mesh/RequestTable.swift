import MeshCore
import NIOConcurrencyHelpers

/// The requests of a node waiting for their responses, by request message id, and their timeouts.
///
/// Called from any thread: a request registers its slot on the node's thread right after its commit (before it
/// can leave, so a fast response finds it); the response resolves it from the node's thread, a send failure from
/// the transport's receipt, the timeout from a timer task, and shutdown fails the rest. The first result wins;
/// the others find the slot gone. One lock, held only to add or take a slot.
final class RequestTable: Sendable {
    private struct State {
        var waiting: [String: ResponseSlot] = [:]
        /// Set by ``close(failing:)``: a request registered afterwards fails at once.
        var closed: MeshError?
    }

    private let state = NIOLockedValueBox(State())

    /// Registers `slot` for request `id` (failing it at once if the table is closed).
    func register(_ id: String, _ slot: ResponseSlot) {
        let closed = state.withLockedValue { state -> MeshError? in
            if let error = state.closed { return error }
            state.waiting[id] = slot
            return nil
        }
        if let closed { slot.resolve(.failure(closed)) }
    }

    /// Completes request `id` once; later results (a late response, a timeout after it) are ignored.
    func resolve(_ id: String, _ result: Result<MeshData, any Error>) {
        state.withLockedValue { $0.waiting.removeValue(forKey: id) }?.resolve(result)
    }

    /// Waits for request `id`'s result, failing it with `timeout` once `after` passed without one.
    func result(of id: String, slot: ResponseSlot, timeout after: Duration) async throws -> MeshData {
        let timer = Task {
            guard (try? await Task.sleep(for: after)) != nil else { return }  // cancelled: the request finished
            resolve(id, .failure(MeshError(.timeout, "no response to \(id) within \(after)")))
        }
        defer { timer.cancel() }
        return try await slot.value()
    }

    /// Fails every waiting request with `error`, and every request registered from now on.
    func close(failing error: MeshError) {
        let waiting = state.withLockedValue { state -> [ResponseSlot] in
            state.closed = error
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for slot in waiting { slot.resolve(.failure(error)) }
    }
}
