import Foundation
import MeshJournal
import MeshTransport
import ServiceLifecycle
import ServiceLifecycleTestKit
import Testing
@testable import Mesh

@Suite struct ConfigurationTests {
    func write(_ json: String, key: Bool = true) throws -> (dir: String, file: String) {
        let dir = FileManager.default.temporaryDirectory.path + "/mesh-config-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        if key { try ClusterKey.generate().hex.write(toFile: dir + "/cluster.key", atomically: true, encoding: .utf8) }
        try json.write(toFile: dir + "/mesh.json", atomically: true, encoding: .utf8)
        return (dir, dir + "/mesh.json")
    }

    @Test func diarkisKeysAndOursAreReadWithRelativePaths() throws {
        let (dir, file) = try write("""
            {"address": "127.0.0.1", "port": "8100", "retryInterval": 500, "reliableRetryTimeout": 4000, "sendInterval": 0,
             "strictCheckForExternal": true, "journal": "node.sqlite", "clusterKeyFile": "cluster.key",
             "durability": "full", "nodeType": "ROOM", "seeds": ["10.0.0.1:8000"], "retention": null, "memberTimeout": 5000}
            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let c = try MeshConfiguration.load(jsonFile: file)
        #expect(c.address == "127.0.0.1:8100")
        #expect(c.retryInterval == .milliseconds(500) && c.retryTimeout == .milliseconds(4000))
        #expect(c.journalPath == dir + "/node.sqlite")
        #expect(c.durability == .full && c.nodeType == "ROOM" && c.seeds == ["10.0.0.1:8000"])
        #expect(c.retention == nil && c.memberTimeout == .seconds(5))
    }

    @Test(arguments: [
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "retryTimout": 1}"#, "unknown key \"retryTimout\""),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "port": "eighty"}"#, "\"port\" must be a number"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "port": 70000}"#, "\"port\" must be 0...65535"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "sendInterval": 5}"#, "\"sendInterval\" must be 0 or at least 17"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "marsAddress": "1.2.3.4"}"#, "needs no MARS"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "strictCheckForExternal": false}"#, "not supported"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "durability": "sometimes"}"#, "\"durability\" must be"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "seeds": "10.0.0.1:1"}"#, "\"seeds\" must be a list"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "retryInterval": -1}"#, "must not be negative"),
        (#"{"journal": "j", "clusterKeyFile": "missing.key"}"#, "cannot read"),
        (#"{"clusterKeyFile": "cluster.key"}"#, "\"journal\" is required"),
        (#"[1, 2]"#, "top level must be an object"),
        (#"{"journal": "#, "not valid JSON"),
    ])
    func badFilesAreRefusedNamingTheKey(json: String, expected: String) throws {
        let (dir, file) = try write(json)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let error = #expect(throws: MeshError.self) { try MeshConfiguration.load(jsonFile: file) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains(expected) == true, "\(error?.message ?? "")")
    }

    @Test func aNodeIsAServiceThatStopsOnGracefulShutdown() async throws {
        let fixture = try NodeFixture()
        defer { fixture.remove() }
        let node = try await fixture.start("svc")
        try await testGracefulShutdown { trigger in
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await node.run() }
                trigger.triggerGracefulShutdown()
                try await group.waitForAll()
            }
        }
        #expect(node.isStopped)
        // The journal is closed: a send fails instead of hanging.
        await #expect(throws: (any Error).self) { try await node.send(1, to: "127.0.0.1:9", ["x": 1]) }
    }
}
