import MeshTransport
import NIOConcurrencyHelpers

/// Receipts of sent messages waiting to have their outcome journaled. ``drain()`` hands over everything queued
/// at once, which is what lets the outcome pump journal acknowledgements in batches.
final class OutcomeQueue: Sendable {
    private struct State {
        var items: [(UInt64, MeshTransport.Receipt)] = []
        var waiter: CheckedContinuation<Void, Never>?
        var finished = false
    }

    private let state = NIOLockedValueBox(State())

    func push(_ item: (UInt64, MeshTransport.Receipt)) {
        let waiter: CheckedContinuation<Void, Never>? = state.withLockedValue { state in
            state.items.append(item)
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    func finish() {
        let waiter = state.withLockedValue { state -> CheckedContinuation<Void, Never>? in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Everything queued, waiting if nothing is; `nil` once finished and empty.
    func drain() async -> [(UInt64, MeshTransport.Receipt)]? {
        while true {
            let taken: [(UInt64, MeshTransport.Receipt)]? = state.withLockedValue { state in
                if !state.items.isEmpty {
                    defer { state.items.removeAll(keepingCapacity: true) }
                    return state.items
                }
                return state.finished ? [] : nil
            }
            if let taken { return taken.isEmpty ? nil : taken }
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLockedValue { state -> Bool in
                    if !state.items.isEmpty || state.finished { return true }
                    state.waiter = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        }
    }
}
