import MeshCore
import NIOConcurrencyHelpers
import NIOCore

/// The requests of a node waiting for their responses, by request message id, and their timeouts.
///
/// Called from any thread: a request registers its slot on the node's thread right after its commit (before it
/// can leave, so a fast response finds it); the response resolves it from the node's thread, a send failure from
/// the transport's receipt, the timeout from a timer on the node's event loop, and shutdown fails the rest. The
/// first result wins; the others find the slot gone. One lock, held only to add or take a slot.
final class RequestTable: Sendable {
    private struct Waiting {
        let slot: ResponseSlot
        let timer: Scheduled<Void>
    }

    private struct State {
        var waiting: [String: Waiting] = [:]
        /// Set by ``close(failing:)``: a request registered afterwards fails at once.
        var closed: MeshError?
    }

    private let state = NIOLockedValueBox(State())
    /// Runs the timeouts (the node's own loop: a timer there costs no task and no thread wake-up).
    private let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Registers `slot` for request `id` and fails it with `timeout` once `after` passed without a result (at
    /// once if the table is closed).
    func register(_ id: String, _ slot: ResponseSlot, timeout after: Duration) {
        let closed = state.withLockedValue { state -> MeshError? in
            if let error = state.closed { return error }
            // Scheduled under the lock so that it cannot fire before the slot is in the table.
            let timer = eventLoop.scheduleTask(in: TimeAmount(after)) {
                self.resolve(id, .failure(MeshError(.timeout, "no response to \(id) within \(after)")))
            }
            state.waiting[id] = Waiting(slot: slot, timer: timer)
            return nil
        }
        if let closed { slot.resolve(.failure(closed)) }
    }

    /// Completes request `id` once; later results (a late response, a timeout after it) are ignored.
    func resolve(_ id: String, _ result: Result<MeshData, any Error>) {
        guard let waiting = state.withLockedValue({ $0.waiting.removeValue(forKey: id) }) else { return }
        waiting.timer.cancel()
        waiting.slot.resolve(result)
    }

    /// Fails every waiting request with `error`, and every request registered from now on.
    func close(failing error: MeshError) {
        let waiting = state.withLockedValue { state -> [Waiting] in
            state.closed = error
            defer { state.waiting.removeAll() }
            return Array(state.waiting.values)
        }
        for request in waiting {
            request.timer.cancel()
            request.slot.resolve(.failure(error))
        }
    }
}
