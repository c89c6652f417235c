import Foundation

/// The traffic generators' loop (`mesh node --send-to`): messages `start..<count` from eight workers, message `i`
/// due `(i - start) / rate` seconds after the start when a rate is given. It ends quietly when cancelled (the
/// node stops) and reports any other error on stderr.
enum TrafficPacing {
    static func run(from start: Int, to count: Int, rate: Double?, _ send: @escaping @Sendable (Int) async throws -> Void) async {
        guard start < count else { return }
        let began = ContinuousClock.now
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        for i in stride(from: start + worker, to: count, by: 8) {
                            try Task.checkCancellation()
                            if let rate {
                                let due = began + .seconds(Double(i - start) / rate)
                                if due > .now { try await Task.sleep(until: due) }
                            }
                            try await send(i)
                        }
                    }
                }
                try await group.waitForAll()
            }
        } catch is CancellationError {
        } catch {
            FileHandle.standardError.write(Data("traffic generator stopped: \(error)\n".utf8))
        }
    }
}
