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
             "durability": "full", "nodeType": "ROOM", "seeds": ["10.0.0.1:8000", "room.game.svc.cluster.local:8000"],
             "endpoint": "game.example.com:7000", "retention": null, "memberTimeout": 5000, "startsAsyncHandlersInline": false,
             "idleSpinMicroseconds": 0, "segmentationOffload": false}
            """)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let c = try MeshConfiguration.load(jsonFile: file)
        #expect(c.address == "127.0.0.1:8100")
        #expect(c.retryInterval == .milliseconds(500) && c.retryTimeout == .milliseconds(4000))
        #expect(c.journalPath == dir + "/node.sqlite")
        #expect(c.durability == .full && c.nodeType == "ROOM" && c.seeds == ["10.0.0.1:8000", "room.game.svc.cluster.local:8000"])
        #expect(c.endpoint == "game.example.com:7000")
        #expect(c.retention == nil && c.memberTimeout == .seconds(5))
        #expect(!c.startsAsyncHandlersInline)
        #expect(c.idleSpinMicroseconds == 0)
        #expect(!c.segmentationOffload)
    }

    /// The idle spin follows the durability until it is set: none under `full`, whatever the order of the settings.
    @Test func idleSpinDefaultsByDurabilityUntilSet() throws {
        var c = MeshConfiguration(address: "127.0.0.1:0", journalPath: "j", clusterKey: .generate())
        #expect(c.idleSpinMicroseconds == MeshConfiguration.defaultIdleSpinMicroseconds && c.idleSpinMicroseconds == 300)
        c.durability = .full
        #expect(c.idleSpinMicroseconds == 0 && MeshConfiguration.defaultIdleSpinMicroseconds(for: .full) == 0)
        c.idleSpinMicroseconds = 300
        #expect(c.idleSpinMicroseconds == 300)
        c.durability = .normal
        c.idleSpinMicroseconds = 0
        c.durability = .full
        c.durability = .normal
        #expect(c.idleSpinMicroseconds == 0)
        for (json, expected) in [(#""durability": "full""#, 0), (#""durability": "normal""#, 300), (#""durability": "full", "idleSpinMicroseconds": 50"#, 50),
                                 (#""idleSpinMicroseconds": 50, "durability": "full""#, 50)] {
            let (dir, file) = try write(#"{"journal": "j", "clusterKeyFile": "cluster.key", "# + json + "}")
            defer { try? FileManager.default.removeItem(atPath: dir) }
            #expect(try MeshConfiguration.load(jsonFile: file).idleSpinMicroseconds == expected, "\(json)")
        }
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
        // Every key's JSON type is checked: Foundation's parser read true as 1 (a 1 ms give-up time, port 1).
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "retryTimeout": true}"#, "\"retryTimeout\" must be a whole number (got true)"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "port": true}"#, "\"port\" must be a whole number (got true)"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "encrypt": 1}"#, "\"encrypt\" must be true or false (got a number (1))"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "startsAsyncHandlersInline": "yes"}"#,
         "\"startsAsyncHandlersInline\" must be true or false (got a string"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "idleSpinMicroseconds": 20000}"#, "idleSpinMicroseconds must be 0...10000"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "idleSpinMicroseconds": "fast"}"#, "\"idleSpinMicroseconds\" must be a whole number"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "segmentationOffload": 1}"#, "\"segmentationOffload\" must be true or false (got a number (1))"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "retryTimeout": 1.5}"#, "\"retryTimeout\" must be a whole number"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "retryTimeout": "3000"}"#, "\"retryTimeout\" must be a whole number (got a string"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "nodeType": 5}"#, "\"nodeType\" must be a string"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "seeds": ["10.0.0.1:1", 2]}"#, "\"seeds\" must be a list of strings"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "retention": false}"#, "\"retention\" must be a whole number"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "endpoint": 7000}"#, "\"endpoint\" must be a string"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "endpoint": "no port"}"#, "endpoint \"no port\""),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key", "seeds": ["bad_name:1"]}"#, "seed \"bad_name:1\""),
        (#"{"journal": "a", "journal": "b", "clusterKeyFile": "cluster.key"}"#, "\"journal\" appears twice"),
        (#"{"journal": "j", "clusterKeyFile": "cluster.key"} {}"#, "unexpected content after"),
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

    /// A journal and a key given to `load` (what `mesh node --config` does with `--journal`, `--key-file`,
    /// `--insecure`) stand in for the file's: the file may leave them out; if it has them, they are still
    /// type-checked but not used — a key file it names is not even read.
    @Test func aJournalAndAKeyGivenToLoadStandInForTheFiles() throws {
        let key = ClusterKey.generate()
        let (dir, bare) = try write(#"{"nodeType": "ROOM"}"#, key: false)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let c = try MeshConfiguration.load(jsonFile: bare, journalPath: "given.sqlite", clusterKey: key)
        #expect(c.journalPath == "given.sqlite" && c.nodeType == "ROOM")
        #expect(c.keyring == Keyring(key))
        let noKey = #expect(throws: MeshError.self) { try MeshConfiguration.load(jsonFile: bare, journalPath: "given.sqlite") }
        #expect(noKey?.message.contains("\"clusterKeyFile\" is required") == true, "\(noKey?.message ?? "")")
        let noJournal = #expect(throws: MeshError.self) { try MeshConfiguration.load(jsonFile: bare, clusterKey: key) }
        #expect(noJournal?.message.contains("\"journal\" is required") == true, "\(noJournal?.message ?? "")")
        // The file's own values are overridden; its key file does not exist and is not read.
        try #"{"journal": "file.sqlite", "clusterKeyFile": "missing.key"}"#.write(toFile: bare, atomically: true, encoding: .utf8)
        let overridden = try MeshConfiguration.load(jsonFile: bare, journalPath: "given.sqlite", clusterKey: key)
        #expect(overridden.journalPath == "given.sqlite" && overridden.keyring == Keyring(key))
        #expect(throws: MeshError.self) { try MeshConfiguration.load(jsonFile: bare) }
        // Still checked for their type.
        try #"{"journal": 5}"#.write(toFile: bare, atomically: true, encoding: .utf8)
        let wrongType = #expect(throws: MeshError.self) {
            try MeshConfiguration.load(jsonFile: bare, journalPath: "given.sqlite", clusterKey: key)
        }
        #expect(wrongType?.message.contains("\"journal\" must be a string") == true, "\(wrongType?.message ?? "")")
    }

    /// A key file must be a real key only its owner can change: the public insecure key (all zeros) and a file
    /// others may write are refused, with the reason.
    @Test func keyFilesThatAuthenticateNothingOrThatOthersMayWriteAreRefused() throws {
        let (dir, file) = try write(#"{"journal": "j", "clusterKeyFile": "cluster.key"}"#)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let key = dir + "/cluster.key"
        #expect(throws: Never.self) { try MeshConfiguration.load(jsonFile: file) }
        try String(repeating: "0", count: 64).write(toFile: key, atomically: true, encoding: .utf8)
        let insecure = #expect(throws: MeshError.self) { try MeshConfiguration.load(jsonFile: file) }
        #expect(insecure?.message.contains("insecure key") == true, "\(insecure?.message ?? "")")
        try ClusterKey.generate().hex.write(toFile: key, atomically: true, encoding: .utf8)
        for mode in [0o666, 0o620, 0o602] {
            #expect(chmod(key, mode_t(mode)) == 0)
            let writable = #expect(throws: MeshError.self) { try MeshConfiguration.load(jsonFile: file) }
            #expect(writable?.message.contains("may be written by other users") == true, "\(writable?.message ?? "")")
        }
        for mode in [0o600, 0o400, 0o644] {
            #expect(chmod(key, mode_t(mode)) == 0)
            #expect(throws: Never.self) { try MeshConfiguration.load(jsonFile: file) }
        }
    }

    /// The strict reader takes every JSON form a configuration uses, escapes included.
    @Test func theStrictReaderReadsWhatJSONAllows() throws {
        let value = try ConfigurationJSON.parse(Array(#" {"a": [1, -2.5e3, true, false, null, "x\u00e9\ud83d\ude00\n"], "b": {}} "#.utf8))
        #expect(value == .object([("a", .array([.number("1"), .number("-2.5e3"), .bool(true), .bool(false), .null, .string("xé😀\n")])),
                                  ("b", .object([]))]))
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "01", "\"\\x\"", "\"\u{01}\"", "tru", "{\"a\": 1,}"] {
            #expect(throws: MeshError.self, "\(bad)") { try ConfigurationJSON.parse(Array(bad.utf8)) }
        }
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
