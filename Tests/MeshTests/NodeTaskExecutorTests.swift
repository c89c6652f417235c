import Foundation
import Mesh
import MeshCore
import MeshJournal
import MeshTransport
import Synchronization
import Testing

/// ``MeshNode/taskExecutor``: a task that prefers the node's thread sends, requests and resumes on it, and a node
/// shut down from such a task, or preferred after its shutdown, leaves no task hanging.
@Suite struct NodeTaskExecutorTests {
    @Test func aCallerOnTheNodesThreadSendsRequestsAndResumesThere() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        try b.handleCommand(2200) { data, _ in
            await Task.yield()
            return data
        }
        try b.handleCommandInline(2201) { data, _ in data }
        try b.handleCommand(2202) { _, _ in nil }
        // The test's own task is not on a's thread; the preferring task is, before and after each call.
        #expect(!a.isOnNodeThread)
        let (onThread, outcome, responses) = try await Task(executorPreference: a.taskExecutor) {
            var onThread = [a.isOnNodeThread]
            let delivery = try await a.sendConfirmed(2202, to: b.address, ["n": 0])
            onThread.append(a.isOnNodeThread)
            let outcome = await delivery.outcome()
            onThread.append(a.isOnNodeThread)
            var responses: [MeshData] = []
            for n in 1...3 {
                responses.append(try await a.sendRequest(2200, to: b.address, ["n": .int64(Int64(n))], timeout: .seconds(30)))
                onThread.append(a.isOnNodeThread)
                responses.append(try await a.sendRequest(2201, to: b.address, ["n": .int64(Int64(-n))], timeout: .seconds(30)))
                onThread.append(a.isOnNodeThread)
            }
            return (onThread, outcome, responses)
        }.value
        #expect(onThread == Array(repeating: true, count: 9))
        #expect(outcome == .confirmed)
        #expect(responses == [["n": 1], ["n": -1], ["n": 2], ["n": -2], ["n": 3], ["n": -3]])
        // Journaled as any other caller's: the send and the six requests acknowledged, the six responses received.
        #expect(try await a.journal.rows("""
            SELECT kind, status, count(*) FROM mesh_messages GROUP BY direction, kind, status ORDER BY direction, kind
            """) == [["response", "handled", "6"], ["request", "acked", "6"], ["send", "acked", "1"]])
        await a.shutdown()
        await b.shutdown()
    }

    @Test func aNodeShutDownFromItsOwnThreadStopsAndItsPreferringTasksGoOn() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        try b.handleCommand(2203) { _, _ in nil }
        let executor = a.taskExecutor
        let stopped = await MeshNode.race(timeout: .seconds(60)) {
            await Task(executorPreference: executor) {
                _ = try? await a.sendConfirmed(2203, to: b.address, ["n": 1])
                await a.shutdown()
            }.value
        }
        #expect(stopped)
        // The node's thread is gone: a task preferring it runs elsewhere, and a send from it fails clearly.
        let after = await MeshNode.race(timeout: .seconds(60)) {
            let (onThread, error) = await Task(executorPreference: executor) { () -> (Bool, (any Error)?) in
                do {
                    _ = try await a.send(2203, to: b.address, ["n": 2])
                    return (a.isOnNodeThread, nil)
                } catch {
                    return (a.isOnNodeThread, error)
                }
            }.value
            #expect(!onThread)
            #expect(error != nil)
        }
        #expect(after)
        await b.shutdown()
    }

    /// Tasks on the node's thread are mid-call when the node shuts down: every one of them ends (returns or throws),
    /// none hangs on the stopped loop, and what was confirmed is journaled as acknowledged.
    @Test func aShutdownWhileCallersOnItsThreadAreSendingLeavesNoneHanging() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let b = try await fixture.start("b")
        try b.handleCommand(2204) { _, _ in nil }
        let confirmed = Counter()
        let callers = (0..<16).map { _ in
            Task(executorPreference: a.taskExecutor) { () -> Int in
                var sent = 0
                while true {
                    do {
                        guard await (try await a.sendConfirmed(2204, to: b.address, ["n": 1])).outcome() == .confirmed else { return sent }
                        sent += 1
                        confirmed.add()
                    } catch {
                        return sent
                    }
                }
            }
        }
        // Some traffic first, then the shutdown lands in the middle of it.
        try await eventually { confirmed.value >= 50 }
        await a.shutdown()
        let ended = await MeshNode.race(timeout: .seconds(60)) {
            for caller in callers { _ = await caller.value }
        }
        #expect(ended)
        let total = await withTaskGroup(of: Int.self) { group in
            for caller in callers { group.addTask { await caller.value } }
            return await group.reduce(0, +)
        }
        #expect(total == confirmed.value && total >= 50)
        // Every confirmed message is in b's journal, and marked acknowledged in a's (closed now: read directly).
        let received = try await b.journal.rows("SELECT count(*) FROM mesh_messages WHERE direction = 'in' AND command_id = 2204")
        #expect((received.first?.first ?? nil).flatMap { Int($0) } ?? 0 >= total, "\(received)")
        let acked = try SQLiteConnection(path: a.journal.path, mode: .readOnly)
            .scalarInt("SELECT count(*) FROM mesh_messages WHERE direction = 'out' AND command_id = 2204 AND status = 'acked'")
        #expect(acked == Int64(total))
        await b.shutdown()
    }

    #if os(Linux)
    /// The node's thread asks the scheduler for a short slice (Linux 6.12+), so that it runs soon after it wakes
    /// even while another thread holds its core; the test reads the slice the kernel keeps for that thread.
    @Test func theNodesThreadRunsWithAShortSchedulerSlice() async throws {
        var name = utsname()
        uname(&name)
        let release = withUnsafeBytes(of: name.release) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
        let version = release.split(separator: ".").prefix(2).compactMap { Int($0) }
        try #require(version.count == 2)
        guard (version[0], version[1]) >= (6, 12) else { return }  // older kernels have no slice to ask for
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let a = try await fixture.start("a")
        let sched = await Task(executorPreference: a.taskExecutor) {
            (try? String(contentsOfFile: "/proc/thread-self/sched", encoding: .utf8)) ?? ""
        }.value
        let slice = sched.split(separator: "\n").first { $0.hasPrefix("se.slice") }
            .flatMap { $0.split(separator: ":").last }.flatMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        await a.shutdown()
        #expect(slice == 100_000, "\(sched.prefix(200))")
    }
    #endif
}

/// A count shared by the callers of a test.
private final class Counter: Sendable {
    private let count = Mutex(0)
    func add() { count.withLock { $0 += 1 } }
    var value: Int { count.withLock { $0 } }
}
