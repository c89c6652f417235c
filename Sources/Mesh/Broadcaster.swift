import NIOConcurrencyHelpers

/// Hands events to every current subscriber's `AsyncStream` (membership events, shared-data changes), from any
/// thread under one lock. A slow subscriber keeps the newest 1,024 events; after ``finish()`` new subscribers get
/// a finished stream.
final class Broadcaster<Element: Sendable>: Sendable {
    private struct State {
        var continuations: [Int: AsyncStream<Element>.Continuation] = [:]
        var next = 0
        var closed = false
    }

    private let state = NIOLockedValueBox(State())

    /// A new subscription.
    func stream() -> AsyncStream<Element> {
        let (stream, continuation) = AsyncStream.makeStream(of: Element.self, bufferingPolicy: .bufferingNewest(1024))
        let id = state.withLockedValue { state -> Int? in
            guard !state.closed else { return nil }
            state.next += 1
            state.continuations[state.next] = continuation
            return state.next
        }
        if let id {
            continuation.onTermination = { [weak self] _ in self?.state.withLockedValue { _ = $0.continuations.removeValue(forKey: id) } }
        } else {
            continuation.finish()
        }
        return stream
    }

    /// Delivers `events`, in order, to every subscriber.
    func yield(_ events: [Element]) {
        guard !events.isEmpty else { return }
        let continuations = state.withLockedValue { Array($0.continuations.values) }
        for continuation in continuations {
            for event in events { continuation.yield(event) }
        }
    }

    /// Ends every subscription, and every later one at once.
    func finish() {
        let continuations = state.withLockedValue { state in
            state.closed = true
            defer { state.continuations.removeAll() }
            return Array(state.continuations.values)
        }
        for continuation in continuations { continuation.finish() }
    }
}
