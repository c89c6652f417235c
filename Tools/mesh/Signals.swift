import Dispatch

#if canImport(Glibc)
import Glibc
#endif

/// SIGINT and SIGTERM (the long-running commands' graceful stop), caught from the moment this is created: a
/// command creates it before it announces itself ready, so a supervisor's SIGTERM right after the "listening
/// on" line is a graceful stop, not the default action's abrupt death.
final class TerminationSignals {
    private let signals: AsyncStream<Int32>
    private var sources: [any DispatchSourceSignal] = []

    init() {
        let (signals, continuation) = AsyncStream.makeStream(of: Int32.self)
        self.signals = signals
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig)
            source.setEventHandler { continuation.yield(sig) }
            source.resume()
            sources.append(source)
        }
    }

    /// Waits for the first of them and returns which arrived.
    func wait() async -> Int32 {
        var iterator = signals.makeAsyncIterator()
        let received = await iterator.next() ?? SIGTERM
        for source in sources { source.cancel() }
        return received
    }
}

/// Waits for SIGINT or SIGTERM and returns which arrived (handlers installed at the call).
func waitForTerminationSignal() async -> Int32 { await TerminationSignals().wait() }
