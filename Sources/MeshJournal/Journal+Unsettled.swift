import Synchronization

/// Messages whose state rows say they are not settled — pending outbound messages, received inbound ones — found
/// without reading the wide message tables row by row.
///
/// Since schema v11 (outbound) and v12 (inbound) such a message often has no state row at all, so the open set is
/// not in any index. The walk reads the narrow state rows in key order from a floor and seeks the message table only
/// inside the gaps between them: a key in a gap that has a message row is a message without a state row (keys are
/// never reused, and pruning deletes a message with its state row, so any other gap is pruned). The cost is that of
/// the state rows from the floor on, as the index-free reads of schema v10 had.
extension Journal {
    /// The two tables of one direction, as a walk reads them.
    struct UnsettledTables {
        /// Each state row's key and whether it is unsettled, from key ?1 on, in key order.
        let statesSQL: String
        /// The message keys in [?1, ?2), in order.
        let gapSQL: String

        /// Outbound: pending = no state row, or status 0.
        static let outbound = UnsettledTables(
            statesSQL: "SELECT seq, status = 0 FROM mesh_outbound_state WHERE seq >= ?1 ORDER BY seq",
            gapSQL: "SELECT seq FROM mesh_outbound WHERE seq >= ?1 AND seq < ?2 ORDER BY seq")
        /// Inbound: received and not yet ended = no state row (the open state rows are in `mesh_inbound_open`).
        static let inbound = UnsettledTables(
            statesSQL: "SELECT id, 0 FROM mesh_inbound_state WHERE id >= ?1 ORDER BY id",
            gapSQL: "SELECT id FROM mesh_inbound WHERE id >= ?1 AND id < ?2 ORDER BY id")
    }

    /// Calls `body` with each unsettled key from `from` on, in ascending order, until it returns false. Returns the
    /// key the walk stopped at (the one `body` declined), or one past the highest key it passed: every key below
    /// that was reported or is settled (or absent).
    @discardableResult
    static func walkUnsettled(_ tables: UnsettledTables, from: Int64, _ db: SQLiteConnection,
                              _ body: (Int64) throws -> Bool) throws -> Int64 {
        let states = try db.cached(tables.statesSQL)
        defer { states.reset() }
        let gap = try db.cached(tables.gapSQL)
        var next = from
        /// Reports the message keys in [low, high); false once `body` declined one (then `stop` holds it).
        var stop: Int64?
        func walkGap(_ low: Int64, _ high: Int64) throws -> Bool {
            try gap.bind(1, low)
            try gap.bind(2, high)
            defer { gap.reset() }
            while try gap.step() {
                let key = gap.int64(0)
                if try !body(key) {
                    stop = key
                    return false
                }
                next = key + 1
            }
            return true
        }
        try states.bind(1, from)
        while try states.step() {
            let key = states.int64(0)
            if key > next, try !walkGap(next, key) { return stop! }
            if states.int(1) != 0, try !body(key) { return key }
            next = key + 1
        }
        if try !walkGap(next, Int64.max) { return stop! }
        return next
    }

    /// ``walkUnsettled(_:from:_:_:)`` that reads each unsettled message with `rowSQL` (its key bound as ?1; `bind`
    /// binds its other parameters, e.g. a filter, so a message the filter rules out is not read) and calls `body` with
    /// the statement on each row it returns, until `body` returns false.
    static func walkUnsettledRows(_ tables: UnsettledTables, from: Int64, rowSQL: String, _ db: SQLiteConnection,
                                  bind: (SQLiteStatement) throws -> Void = { _ in },
                                  _ body: (SQLiteStatement) throws -> Bool) throws {
        let row = try db.cached(rowSQL)
        try walkUnsettled(tables, from: from, db) { key in
            try row.bind(1, key)
            try bind(row)
            defer { row.reset() }
            guard try row.step() else { return true }
            return try body(row)
        }
    }

    /// The key a floor moves to in `db`'s snapshot: the first unsettled key from the current floor on, or one past
    /// the highest key; never below the current floor, which it moves up.
    static func moveFloor(_ floor: borrowing Atomic<Int64>, _ tables: UnsettledTables, _ db: SQLiteConnection) throws -> Int64 {
        let current = floor.load(ordering: .acquiring)
        let found = max(try walkUnsettled(tables, from: current, db) { _ in false }, current)
        floor.max(found, ordering: .acquiringAndReleasing)
        return found
    }
}
