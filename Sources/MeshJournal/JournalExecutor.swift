/// A serial executor the journal's writer can run on instead of a thread of its own: the thread of a node that
/// also owns the node's UDP socket (its own event loop). A received batch is then journaled, committed and
/// acknowledged on one thread, and a message is journaled and transmitted on it, without handing work from the
/// writer's thread to the socket's and back.
///
/// The executor must be owned exclusively by the journal's owner: the writer blocks it for every commit (and for
/// an inline checkpoint when the WAL reaches its limit), which is fine for a thread that does nothing else but
/// never for an event loop an application shares (`MultiThreadedEventLoopGroup.singleton`).
public protocol JournalExecutor: Sendable {
    /// Runs `work` on the executor, after the work already queued there.
    func execute(_ work: @escaping @Sendable () -> Void)
    /// Runs `work` on the executor once `delay` has passed.
    func execute(after delay: Duration, _ work: @escaping @Sendable () -> Void)
    /// Runs `work` on the executor once `delay` has passed unless the returned closure is called first (on the
    /// executor): the writer cancels a timer it no longer needs, so that it does not wake the thread for nothing.
    /// The default cannot cancel: it runs ``execute(after:_:)`` and returns a closure that does nothing.
    func schedule(after delay: Duration, _ work: @escaping @Sendable () -> Void) -> @Sendable () -> Void
    /// Whether the caller runs on the executor now.
    var isCurrent: Bool { get }
}

extension JournalExecutor {
    /// ``execute(after:_:)``, not cancellable.
    public func schedule(after delay: Duration, _ work: @escaping @Sendable () -> Void) -> @Sendable () -> Void {
        execute(after: delay, work)
        return {}
    }
}
