import MeshCore
import MeshJournal
import Testing
@testable import Mesh

/// The shared-data state machine alone: versions, compare-and-set, limits, convergence in any order, gossip choice.
@Suite struct SharedDataTableTests {
    static let a = String(repeating: "a", count: 32), b = String(repeating: "b", count: 32), c = String(repeating: "c", count: 32)

    @Test func writesCountVersionsAndCompareAndSetChecksTheCurrentOne() throws {
        var table = SharedDataTable(limits: SharedDataLimits())
        let first = try table.prepareWrite("k", 1, writer: Self.a, nowMs: 1, ifVersion: 0).get()
        #expect(first.version == 1)
        table.merge(first)
        #expect(table.prepareWrite("k", 2, writer: Self.a, nowMs: 2, ifVersion: 0) == .failure(.versionConflict(current: 1)))
        let second = try table.prepareWrite("k", 2, writer: Self.a, nowMs: 2, ifVersion: 1).get()
        table.merge(second)
        let removed = try table.prepareWrite("k", nil, writer: Self.b, nowMs: 3, ifVersion: nil).get()
        table.merge(removed)
        #expect(removed.version == 3 && removed.isRemoved && table.liveCount == 0 && table.totalBytes == 0)
        // A removed key keeps its version: writing it again continues from there.
        #expect(try table.prepareWrite("k", 4, writer: Self.a, nowMs: 4, ifVersion: 3).get().version == 4)
    }

    @Test func limitsAreRefusedWithTheirNumbers() throws {
        var table = SharedDataTable(limits: SharedDataLimits(maxKeys: 2, maxValueBytes: 80, maxTotalBytes: 100, maxKeyBytes: 8))
        table.merge(try table.prepareWrite("a", .bytes([UInt8](repeating: 1, count: 40)), writer: Self.a, nowMs: 1, ifVersion: nil).get())
        #expect(table.prepareWrite("b", .bytes([UInt8](repeating: 1, count: 100)), writer: Self.a, nowMs: 1, ifVersion: nil)
            == .failure(.valueTooLarge(bytes: SharedDataTable.size(of: .bytes([UInt8](repeating: 1, count: 100))), limit: 80)))
        table.merge(try table.prepareWrite("b", .bytes([UInt8](repeating: 1, count: 40)), writer: Self.a, nowMs: 1, ifVersion: nil).get())
        guard case .failure(.tooManyKeys(limit: 2)) = table.prepareWrite("c", 1, writer: Self.a, nowMs: 1, ifVersion: nil) else {
            Issue.record("a third key was not refused"); return
        }
        guard case .failure(.totalTooLarge(_, limit: 100)) = table.prepareWrite("a", .bytes([UInt8](repeating: 1, count: 60)), writer: Self.a,
                                                                                 nowMs: 1, ifVersion: nil) else {
            Issue.record("the total was not refused"); return
        }
        // Replacing a value within the total, and removing, stay allowed.
        #expect((try? table.prepareWrite("a", 2, writer: Self.a, nowMs: 1, ifVersion: nil).get()) != nil)
        #expect((try? table.prepareWrite("a", nil, writer: Self.a, nowMs: 1, ifVersion: nil).get()) != nil)
        guard case .failure(.badKey) = table.prepareWrite("", 1, writer: Self.a, nowMs: 1, ifVersion: nil),
              case .failure(.badKey) = table.prepareWrite("much-too-long", 1, writer: Self.a, nowMs: 1, ifVersion: nil) else {
            Issue.record("bad keys were not refused"); return
        }
    }

    /// Concurrent writes on three nodes, delivered in every order: every table ends with the same entry.
    @Test func everyArrivalOrderConvergesToTheSameWinner() {
        let entries = [
            SharedEntry(key: "k", value: 1, version: 1, writer: Self.a, updatedAtMs: 10),
            SharedEntry(key: "k", value: 2, version: 2, writer: Self.a, updatedAtMs: 20),
            SharedEntry(key: "k", value: 3, version: 2, writer: Self.c, updatedAtMs: 5),
            SharedEntry(key: "k", value: 4, version: 2, writer: Self.b, updatedAtMs: 30),
            SharedEntry(key: "k", value: nil, version: 1, writer: Self.c, updatedAtMs: 40),
        ]
        func permutations(_ items: [SharedEntry]) -> [[SharedEntry]] {
            guard items.count > 1 else { return [items] }
            return items.indices.flatMap { i -> [[SharedEntry]] in
                var rest = items
                let head = rest.remove(at: i)
                return permutations(rest).map { [head] + $0 }
            }
        }
        var winners = Set<SharedEntry>()
        for order in permutations(entries) {
            var table = SharedDataTable(limits: SharedDataLimits())
            for entry in order { table.merge(entry) }
            winners.insert(table.entries["k"]!)
        }
        #expect(winners == [entries[2]])  // version 2, greatest writer (c), whatever its clock said
    }

    @Test func gossipSendsRecentWritesFirstAndRotatesThroughEveryKey() throws {
        var table = SharedDataTable(limits: SharedDataLimits())
        for i in 0..<50 { table.merge(SharedEntry(key: "key\(i)", value: .bytes([UInt8](repeating: 0, count: 100)), version: 1, writer: Self.a, updatedAtMs: 0)) }
        table.merge(SharedEntry(key: "key7", value: 7, version: 2, writer: Self.b, updatedAtMs: 0))
        var seen = Set<String>()
        let first = table.nextGossip(maxBytes: 1000)
        #expect(first.first?.key == "key7" && first.count < 50)
        seen.formUnion(first.map(\.key))
        for _ in 0..<20 { seen.formUnion(table.nextGossip(maxBytes: 1000).map(\.key)) }
        #expect(seen.count == 50)
        // A local write's round takes the recent ones, newest first, once.
        table.merge(SharedEntry(key: "key1", value: 1, version: 2, writer: Self.b, updatedAtMs: 0))
        table.merge(SharedEntry(key: "key2", value: 2, version: 2, writer: Self.b, updatedAtMs: 0))
        #expect(table.takeRecent(maxBytes: 10_000).map(\.key) == ["key2", "key1"])
        #expect(table.takeRecent(maxBytes: 10_000).isEmpty)
        // An entry larger than the budget still goes (alone).
        var big = SharedDataTable(limits: SharedDataLimits())
        big.merge(SharedEntry(key: "big", value: .bytes([UInt8](repeating: 0, count: 5000)), version: 1, writer: Self.a, updatedAtMs: 0))
        #expect(big.nextGossip(maxBytes: 100).map(\.key) == ["big"])
    }
}
