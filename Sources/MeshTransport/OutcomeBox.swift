import Synchronization

/// Where a message's outcome is left by the event loop and picked up by the sender. Reading an outcome that is
/// already known takes a lock, not a hop to the event loop (an `EventLoopFuture` would schedule its callback
/// there even when already completed).
///
/// Completed once, on the transport's event loop; read and waited on from any thread. One box per message sent,
/// so its state sits inline (a `Mutex` in the object, one waiter without an array): nearly every message has
/// exactly one waiter.
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
        case pending
        case waiting(Waiter)
        case waitingMany([Waiter])
        case done(MessageOutcome)

        /// Adds `waiter`, or returns the outcome if it is already known (the waiter is then not kept).
        mutating func add(_ waiter: Waiter) -> MessageOutcome? {
            switch self {
            case .pending: self = .waiting(waiter)
            case .waiting(let first): self = .waitingMany([first, waiter])
            case .waitingMany(var waiters):
                self = .pending  // lets go of the array before appending, so it is not copied
                waiters.append(waiter)
                self = .waitingMany(waiters)
            case .done(let outcome): return outcome
            }
            return nil
        }
    }

    private let state = Mutex(State.pending)

    init() {}

    func complete(_ outcome: MessageOutcome) {
        let taken: State = state.withLock { state in
            if case .done = state { return .pending }
            defer { state = .done(outcome) }
            return state
        }
        switch taken {
        case .waiting(let waiter): waiter.resume(outcome)
        case .waitingMany(let waiters): for waiter in waiters { waiter.resume(outcome) }
        case .pending, .done: break
        }
    }

    /// Runs `body` with the outcome once it is known: on the thread that completes the box (the event loop), or
    /// at once on the caller's thread if it is already known. `body` must not block.
    func whenComplete(_ body: @escaping @Sendable (MessageOutcome) -> Void) {
        if let ready = state.withLock({ $0.add(.callback(body)) }) { body(ready) }
    }

    var value: MessageOutcome? {
        state.withLock { if case .done(let o) = $0 { o } else { nil } }
    }

    func wait() async -> MessageOutcome {
        if let done = value { return done }
        return await withCheckedContinuation { continuation in
            if let ready = state.withLock({ $0.add(.task(continuation)) }) { continuation.resume(returning: ready) }
        }
    }
}
