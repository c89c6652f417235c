import CSQLite

/// The ceiling a journal append is compared to: the loop of `shared/bench/sqlite_bench.c`, written against
/// the SQLite C API with no wrapper — a WAL database, a 5-column table, 1 KiB blob rows, one prepared INSERT,
/// `batch` rows per transaction — run in the same process and the same run as the journal benchmark.
package enum RawSQLiteCeiling {
    /// Inserts `rows` rows into a fresh database at `path` and returns rows per second (insert loop only,
    /// as sqlite_bench.c times it).
    package static func run(path: String, synchronous: String, rows: Int, batch: Int, payloadSize: Int = 1024) throws -> Double {
        for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        var db: OpaquePointer?
        guard sqlite3_open(path, &db) == SQLITE_OK, let db else { throw CeilingError("open \(path)") }
        defer {
            sqlite3_close(db)
            for suffix in ["", "-wal", "-shm"] { unlink(path + suffix) }
        }
        func exec(_ sql: String) throws {
            guard sqlite3_exec(db, sql, nil, nil, nil) == SQLITE_OK else {
                throw CeilingError("\(sql): \(String(cString: sqlite3_errmsg(db)))")
            }
        }
        try exec("PRAGMA journal_mode=WAL")
        try exec("PRAGMA synchronous=\(synchronous)")
        try exec("CREATE TABLE journal(id INTEGER PRIMARY KEY, cmd INT, peer TEXT, payload BLOB, ts INT)")
        var insert: OpaquePointer?
        var begin: OpaquePointer?
        var commit: OpaquePointer?
        sqlite3_prepare_v2(db, "INSERT INTO journal(id,cmd,peer,payload,ts) VALUES(?,?,?,?,?)", -1, &insert, nil)
        sqlite3_prepare_v2(db, "BEGIN", -1, &begin, nil)
        sqlite3_prepare_v2(db, "COMMIT", -1, &commit, nil)
        defer {
            sqlite3_finalize(insert)
            sqlite3_finalize(begin)
            sqlite3_finalize(commit)
        }
        var payload = [UInt8]((0..<payloadSize).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) })
        let peers = (0..<16).map { "peer-\($0)" }
        let t0 = Int64(WallClockMicros.now())
        var done = 0
        let seconds = try BenchStatistics.time {
            while done < rows {
                sqlite3_step(begin)
                sqlite3_reset(begin)
                let n = min(batch, rows - done)
                for k in 0..<n {
                    let id = Int64(done + k + 1)
                    withUnsafeBytes(of: id) { idBytes in
                        for i in 0..<8 { payload[i] = idBytes[i] }
                    }
                    var peer = peers[Int(id % 16)]
                    sqlite3_bind_int64(insert, 1, id)
                    sqlite3_bind_int(insert, 2, Int32(id % 7))
                    peer.withUTF8 { utf8 in
                        utf8.withMemoryRebound(to: CChar.self) { chars in
                            _ = sqlite3_bind_text(insert, 3, chars.baseAddress, Int32(chars.count), csqlite_transient())
                        }
                    }
                    payload.withUnsafeBytes { raw in
                        _ = sqlite3_bind_blob(insert, 4, raw.baseAddress, Int32(raw.count), csqlite_static())
                    }
                    sqlite3_bind_int64(insert, 5, t0 + id)
                    guard sqlite3_step(insert) == SQLITE_DONE else {
                        throw CeilingError("insert: \(String(cString: sqlite3_errmsg(db)))")
                    }
                    sqlite3_reset(insert)
                }
                guard sqlite3_step(commit) == SQLITE_DONE else { throw CeilingError("commit: \(String(cString: sqlite3_errmsg(db)))") }
                sqlite3_reset(commit)
                done += n
            }
        }
        return Double(done) / seconds
    }

    struct CeilingError: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }
}

#if canImport(Glibc)
import Glibc
#endif

enum WallClockMicros {
    static func now() -> Int {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return ts.tv_sec * 1_000_000 + ts.tv_nsec / 1000
    }
}
