import MeshCore
import Testing
@testable import MeshJournal

/// `Journal.firstKey(createdAtOrAfter:in:_:)`: the bisection that stands in for an index on `created_at` (schema v8)
/// in retention, replay history and `mesh replay`, checked against a linear search of the same rows.
@Suite struct FirstKeyTests {
    /// Rows written with chosen keys and times, straight into the table (the key order is the journal order).
    private func insert(_ rows: [(key: Int64, createdAt: Int64)], into journal: Journal) async throws {
        try await journal.write { context in
            let outbound = try context.db.cached(
                "INSERT INTO mesh_outbound(seq, command_id, kind, peer, created_at, payload) VALUES (?, 1, 0, 'p', ?, x'00')")
            for row in rows {
                outbound.reset()
                try outbound.bind(1, row.key)
                try outbound.bind(2, row.createdAt)
                try outbound.step()
            }
        }
    }

    private func firstKey(_ ms: Int64, _ journal: Journal) async throws -> Int64 {
        try await journal.read { db in try Journal.firstKey(createdAtOrAfter: ms, in: .outbound, db) }
    }

    @Test func anEmptyTableAnswersOne() async throws {
        try await withJournal { journal, _ in
            let atZero = try await firstKey(0, journal), atMax = try await firstKey(.max, journal)
            #expect(atZero == 1)
            #expect(atMax == 1)
        }
    }

    @Test func matchesALinearSearchWithGapsAndEqualTimes() async throws {
        var random = SplitMix64(seed: 0x5EED_0008)
        for _ in 0..<12 {
            // Keys with gaps (pruned rows), times non-decreasing with runs of equal milliseconds.
            var rows: [(key: Int64, createdAt: Int64)] = []
            var key = Int64(random.next() % 5) + 1
            var time = Int64(1_700_000_000_000)
            for _ in 0..<Int(random.next() % 300) + 1 {
                rows.append((key, time))
                key += Int64(random.next() % 4) + 1
                time += Int64(random.next() % 3)
            }
            try await withJournal { journal, _ in
                try await insert(rows, into: journal)
                let first = rows.first!.createdAt, last = rows.last!.createdAt
                for ms in (first - 2)...(last + 2) {
                    let expected = rows.first(where: { $0.createdAt >= ms })?.key ?? rows.last!.key + 1
                    let found = try await firstKey(ms, journal)
                    #expect(found == expected, "ms \(ms - first) over \(rows.count) rows")
                }
            }
        }
    }

    @Test func aClockStepBackOnlyBlursTheAnswerNearTheStep() async throws {
        // 1...50 at t = 1000 + key, then the clock steps back 20 ms for 51...100. Rows far from the step are still
        // placed exactly; callers filter on created_at for exactness near it.
        let rows: [(key: Int64, createdAt: Int64)] = (1...100).map { (key: Int) -> (key: Int64, createdAt: Int64) in
            let stepBack = key > 50 ? 20 : 0
            return (Int64(key), Int64(1000 + key - stepBack))
        }
        try await withJournal { journal, _ in
            try await insert(rows, into: journal)
            let early = try await firstKey(1010, journal), late = try await firstKey(1075, journal)
            let none = try await firstKey(2000, journal)
            #expect(early == 10)
            #expect(late == 95)
            #expect(none == 101)
            let nearStep = try await firstKey(1040, journal)
            #expect((40...71).contains(nearStep), "\(nearStep)")
        }
    }
}
