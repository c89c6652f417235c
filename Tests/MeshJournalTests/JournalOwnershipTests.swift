import Foundation
import Testing
@testable import MeshJournal

/// A journal has one owner, is never written into when damaged, and leaves nothing open or half-made behind.
@Suite struct JournalOwnershipTests {
    /// File descriptors of this process open on `path` or its `-wal`/`-shm` files.
    static func openDescriptors(_ path: String) -> [String] {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        let targets = Set(["", "-wal", "-shm"].map { (path + $0) })
        return fds.compactMap { fd in
            guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + fd) else { return nil }
            return targets.contains(target) ? target : nil
        }
    }

    @Test func aSecondOpenIsRefusedNamingTheJournalAndTheHolderUntilTheFirstCloses() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("node.sqlite")
        let first = try await Journal.open(path: path, logger: .test)
        let error = await #expect(throws: JournalError.self) { try await Journal.open(path: path, logger: .test) }
        #expect(error?.code == .inUse)
        #expect(error?.message.contains(path) == true, "\(String(describing: error))")
        #expect(error?.message.contains("pid \(getpid())") == true, "\(String(describing: error))")
        // The refused open changed nothing: the owner goes on writing with its own sequence numbers.
        #expect(try await first.appendOutbound(OutboundMessage(commandID: 1, kind: .send, peer: "p", payload: [1])) == 1)
        // Readers are not owners: a read-only connection works on the live journal.
        #expect(try externalConnection(path).scalarInt("SELECT count(*) FROM mesh_outbound") == 1)
        await first.close()
        let second = try await Journal.open(path: path, logger: .test)
        #expect(second.identity.bootEpoch == first.identity.bootEpoch + 1)
        #expect(try await second.appendOutbound(OutboundMessage(commandID: 1, kind: .send, peer: "p", payload: [2])) == 2)
        await second.close()
    }

    /// Two closes at once (a node's `run()` and a direct `shutdown()`) both return, once the journal is closed; one
    /// of them used to overwrite the other's wait and leave it suspended for ever.
    @Test func concurrentClosesBothReturnOnceClosed() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("node.sqlite")
        for _ in 0..<20 {
            let journal = try await Journal.open(path: path, logger: .test)
            _ = try await journal.appendOutbound(OutboundMessage(commandID: 1, kind: .send, peer: "p", payload: [1]))
            // Bounded: a close that never returns fails the test after 60 s instead of hanging the suite.
            let closed = await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    async let first: Void = journal.close()
                    async let second: Void = journal.close()
                    _ = await (first, second)
                    return true
                }
                group.addTask {
                    try? await Task.sleep(for: .seconds(60))
                    return false
                }
                let result = await group.next() ?? false
                group.cancelAll()
                return result
            }
            try #require(closed, "a concurrent close() never returned")
            #expect(Self.openDescriptors(path).isEmpty)
        }
    }

    @Test func closeReturnsWithNoDescriptorOpenAndTheWALRemoved() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("node.sqlite")
        for round in 0..<5 {
            let journal = try await Journal.open(path: path, logger: .test)
            _ = try await journal.appendOutbound(OutboundMessage(commandID: 1, kind: .send, peer: "p", payload: [UInt8(round)]))
            _ = try await journal.read { db in try db.scalarInt("SELECT count(*) FROM mesh_outbound") }
            #expect(!Self.openDescriptors(path).isEmpty)
            await journal.close()
            #expect(Self.openDescriptors(path).isEmpty, "round \(round): \(Self.openDescriptors(path))")
            #expect(!fileExists(path + "-wal"), "round \(round)")
        }
    }

    @Test func aJournalThatFailsTheQuickCheckIsRefusedAndLeftUnchanged() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("node.sqlite")
        let journal = try await Journal.open(path: path, logger: .test)
        for i in 0..<200 {
            _ = try await journal.appendOutbound(OutboundMessage(commandID: 1, kind: .send, peer: "p", payload: [UInt8(i % 256)]))
        }
        await journal.close()
        // Damage the root page of an index that opening never reads, but that the next received message's write would.
        let root = try #require(try externalConnection(path).scalarInt("SELECT rootpage FROM sqlite_schema WHERE name = 'mesh_inbound_open'"))
        let pageSize = 8192
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: UInt64((Int(root) - 1) * pageSize))
        try handle.write(contentsOf: Data((0..<pageSize).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 7) }))
        try handle.close()
        let damaged = fileBytes(path)
        let error = await #expect(throws: JournalError.self) { try await Journal.open(path: path, logger: .test) }
        #expect(error?.code == .corrupt)
        #expect(error?.message.contains("quick check") == true, "\(String(describing: error))")
        #expect(error?.message.contains("\n") == false)
        #expect(fileBytes(path) == damaged)
        // With the check switched off the same journal opens (and would be written into): the check is what refuses.
        let unchecked = try await Journal.open(path: path, configuration: .init(openCheckMilliseconds: 0), logger: .test)
        await unchecked.close()
    }

    @Test func aJournalThisOpenCreatedIsRemovedWhenTheOpenFails() async throws {
        let dir = try TemporaryDirectory()
        defer { dir.remove() }
        let path = dir.file("node.sqlite")
        // The WAL cannot be created (a directory stands in its place), as on a full disk: the open fails after
        // SQLite made the main file.
        try FileManager.default.createDirectory(atPath: path + "-wal", withIntermediateDirectories: false)
        await #expect(throws: JournalError.self) { try await Journal.open(path: path, logger: .test) }
        #expect(!fileExists(path))
        #expect(!fileExists(path + "-shm"))
        #expect(!fileExists(JournalLock.lockPath(forJournal: path)))
        // An existing journal is never removed by a failed open.
        try FileManager.default.removeItem(atPath: path + "-wal")
        let journal = try await Journal.open(path: path, logger: .test)
        await journal.close()
        try FileManager.default.createDirectory(atPath: path + "-wal", withIntermediateDirectories: false)
        await #expect(throws: JournalError.self) { try await Journal.open(path: path, logger: .test) }
        #expect(fileExists(path))
    }
}
