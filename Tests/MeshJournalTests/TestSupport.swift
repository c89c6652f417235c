import Foundation
import Logging
@testable import MeshJournal

/// A fresh directory under the system temporary directory, removed by `remove()`.
struct TemporaryDirectory {
    let path: String

    init() throws {
        let base = FileManager.default.temporaryDirectory.path
        path = base + "/mesh-test-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

extension Logger {
    static let test: Logger = {
        var logger = Logger(label: "mesh.test")
        logger.logLevel = .critical
        return logger
    }()
}

/// Runs `body` with a journal in a temporary directory, closing and removing both afterwards.
func withJournal<T>(
    configuration: JournalConfiguration = .init(),
    _ body: (Journal, TemporaryDirectory) async throws -> T
) async throws -> T {
    let dir = try TemporaryDirectory()
    defer { dir.remove() }
    let journal = try await Journal.open(path: dir.file("node.sqlite"), configuration: configuration, logger: .test)
    do {
        let result = try await body(journal, dir)
        await journal.close()
        return result
    } catch {
        await journal.close()
        throw error
    }
}

/// An independent connection, as an operator's `sqlite3` shell would have.
func externalConnection(_ path: String, readOnly: Bool = true) throws -> SQLiteConnection {
    let db = try SQLiteConnection(path: path, mode: readOnly ? .readOnly : .readWrite)
    try db.execute("PRAGMA busy_timeout = 2000")
    return db
}

extension SQLiteConnection {
    func columnNames(_ table: String) throws -> [String] {
        try rows("SELECT name FROM pragma_table_info('\(table)')").compactMap { $0[0] }
    }
}

func fileBytes(_ path: String) -> [UInt8]? {
    FileManager.default.contents(atPath: path).map { [UInt8]($0) }
}

func fileExists(_ path: String) -> Bool { FileManager.default.fileExists(atPath: path) }
