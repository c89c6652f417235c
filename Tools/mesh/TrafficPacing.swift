import Foundation

/// The traffic generators' loop (`mesh node --send-to`): messages `start..<count` (or exactly `numbers`) from eight
/// workers, the k-th due `k / rate` seconds after the start when a rate is given. It ends quietly when cancelled
/// (the node stops) and reports any other error on stderr. Returns whether every send returned.
enum TrafficPacing {
    static func run(from start: Int, to count: Int, rate: Double?, _ send: @escaping @Sendable (Int) async throws -> Void) async -> Bool {
        guard start < count else { return true }
        return await run(Array(start..<count), rate: rate, send)
    }

    static func run(_ numbers: [Int], rate: Double?, _ send: @escaping @Sendable (Int) async throws -> Void) async -> Bool {
        guard !numbers.isEmpty else { return true }
        let began = ContinuousClock.now
        do {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<8 {
                    group.addTask {
                        for k in stride(from: worker, to: numbers.count, by: 8) {
                            try Task.checkCancellation()
                            if let rate {
                                let due = began + .seconds(Double(k) / rate)
                                if due > .now { try await Task.sleep(until: due) }
                            }
                            try await send(numbers[k])
                        }
                    }
                }
                try await group.waitForAll()
            }
            return true
        } catch is CancellationError {
            return false
        } catch {
            FileHandle.standardError.write(Data("traffic generator stopped: \(error)\n".utf8))
            return false
        }
    }
}
