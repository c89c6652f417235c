import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress counter on stderr, shown only when stderr is a terminal (scripts and pipes see nothing).
struct Progress {
    let label: String
    let total: Int
    private let enabled: Bool
    private var lastDraw = ContinuousClock.now - .seconds(1)

    init(_ label: String, total: Int, quiet: Bool = false) {
        self.label = label
        self.total = total
        self.enabled = !quiet && isatty(STDERR_FILENO) == 1 && total > 0
    }

    /// Redraws at most ten times a second.
    mutating func update(_ done: Int) {
        guard enabled, ContinuousClock.now - lastDraw >= .milliseconds(100) || done == total else { return }
        lastDraw = .now
        let percent = total > 0 ? done * 100 / total : 100
        FileHandle.standardError.write(Data("\r\(label) \(done)/\(total) (\(percent)%)".utf8))
    }

    /// Clears the line.
    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
