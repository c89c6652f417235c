import Foundation
import Logging
import Mesh
import MeshCore
import MeshJournal
import MeshTransport

let testLogger: Logger = {
    var logger = Logger(label: "mesh.node.test")
    logger.logLevel = ProcessInfo.processInfo.environment["MESH_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
    return logger
}()

/// An `eventually` condition that never held; names where it was awaited.
struct NodeTestTimeout: Error, CustomStringConvertible {
    var file: String = ""
    var line: Int = 0
    var description: String { "condition at \(file):\(line) did not hold in time" }
}

/// A folder of journals for one test, removed at the end.
struct NodeFixture {
    let dir: String
    let key = ClusterKey.generate()

    init() throws {
        dir = FileManager.default.temporaryDirectory.path + "/mesh-node-test-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    /// Generous give-up times (tests check outcomes, not speed); tests about timeouts set short ones.
    func configuration(_ name: String, port: Int = 0) -> MeshConfiguration {
        var c = MeshConfiguration(address: "127.0.0.1:\(port)", journalPath: "\(dir)/\(name).sqlite", clusterKey: key)
        c.retryTimeout = .seconds(30)
        c.peerTimeout = .seconds(30)
        return c
    }

    func start(_ name: String, port: Int = 0, configure: (inout MeshConfiguration) -> Void = { _ in }) async throws -> MeshNode {
        var c = configuration(name, port: port)
        configure(&c)
        return try await MeshNode.start(configuration: c, logger: testLogger)
    }

    func remove() { try? FileManager.default.removeItem(atPath: dir) }
}

/// Polls `condition` until it holds or `seconds` pass: bounded, so a hang fails, and generous (60 s by default),
/// so a loaded machine only makes it slower.
func eventually(_ seconds: Double = 60, file: String = #fileID, line: Int = #line,
                _ condition: @Sendable () async throws -> Bool) async throws {
    let deadline = ContinuousClock.now + .seconds(seconds)
    while ContinuousClock.now < deadline {
        if try await condition() { return }
        try await Task.sleep(for: .milliseconds(10))
    }
    throw NodeTestTimeout(file: file, line: line)
}

/// Holds handlers back until the test opens it.
actor Gate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func open() {
        isOpen = true
        for waiter in waiters { waiter.resume() }
        waiters.removeAll()
    }
}

/// Collects what handlers saw.
actor Recorder<T: Sendable> {
    private(set) var items: [T] = []
    func add(_ item: T) { items.append(item) }
    var count: Int { items.count }
}

extension Journal {
    func rows(_ sql: String) async throws -> [[String?]] {
        try await read { db in try db.rows(sql) }
    }
}

/// The first element of `sequence` matching `predicate`, or `nil` after `seconds` (bounded, so a missing event
/// fails the test instead of hanging it).
func first<S: AsyncSequence & Sendable>(_ sequence: S, within seconds: Double = 60,
                                       where predicate: @escaping @Sendable (S.Element) -> Bool) async -> S.Element?
    where S.Element: Sendable {
    await withTaskGroup(of: S.Element?.self) { group in
        group.addTask {
            do {
                for try await element in sequence where predicate(element) { return element }
            } catch {}
            return nil
        }
        group.addTask {
            try? await Task.sleep(for: .seconds(seconds))
            return nil
        }
        let result = await group.next() ?? nil
        group.cancelAll()
        return result
    }
}
