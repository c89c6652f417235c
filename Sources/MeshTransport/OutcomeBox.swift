import NIOConcurrencyHelpers

/// Where a message's outcome is left by the event loop and picked up by the sender. Reading an outcome that is
/// already known takes a lock, not a hop to the event loop (an `EventLoopFuture` would schedule its callback
/// there even when already completed).
final class OutcomeBox: Sendable {
    private enum Waiter {
        case task(CheckedContinuation<MessageOutcome, Never>)
        case callback(@Sendable (MessageOutcome) -> Void)

        func resume(_ outcome: MessageOutcome) {
            switch self {
            case .task(let continuation): continuation.resume(returning: outcome)
            case .callback(let body): body(outcome)
            }
        }
    }

    private enum State {
        case pending([Waiter])
        case done(MessageOutcome)
    }

    private let state = NIOLockedValueBox(State.pending([]))

    init() {}

    func complete(_ outcome: MessageOutcome) {
        let waiters: [Waiter] = state.withLockedValue { state in
            guard case .pending(let waiters) = state else { return [] }
            state = .done(outcome)
            return waiters
        }
        for waiter in waiters { waiter.resume(outcome) }
    }

    /// Runs `body` with the outcome once it is known: on the thread that completes the box (the event loop), or
    /// at once on the caller's thread if it is already known. `body` must not block.
    func whenComplete(_ body: @escaping @Sendable (MessageOutcome) -> Void) {
        let ready: MessageOutcome? = state.withLockedValue { state in
            switch state {
            case .done(let outcome): return outcome
            case .pending(var waiters):
                waiters.append(.callback(body))
                state = .pending(waiters)
                return nil
            }
        }
        if let ready { body(ready) }
    }

    var value: MessageOutcome? {
        state.withLockedValue { if case .done(let o) = $0 { o } else { nil } }
    }

    func wait() async -> MessageOutcome {
        if let done = value { return done }
        return await withCheckedContinuation { continuation in
            let ready: MessageOutcome? = state.withLockedValue { state in
                switch state {
                case .done(let outcome): return outcome
                case .pending(var waiters):
                    waiters.append(.task(continuation))
                    state = .pending(waiters)
                    return nil
                }
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }
}
