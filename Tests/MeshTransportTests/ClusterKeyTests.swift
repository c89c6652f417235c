import Foundation
import MeshTransport
import Testing

/// Cluster keys as operators write them: `mesh keygen > FILE` (64 hex digits and a newline), by hand, or not at all.
@Suite struct ClusterKeyTests {
    @Test func hexWithSurroundingWhitespaceIsAKeyAndAnythingElseSaysWhy() throws {
        let key = ClusterKey.generate()
        for text in [key.hex, key.hex + "\n", " \t" + key.hex + "\r\n", key.hex.uppercased() + "\n\n"] {
            #expect(try ClusterKey(hex: text) == key, "\(text.debugDescription)")
        }
        for (text, reason) in [(String(key.hex.dropLast()), "64 hex digits"), (String(key.hex.dropLast()) + "g", "only hex digits"),
                               ("", "64 hex digits")] {
            let error = #expect(throws: TransportError.self) { try ClusterKey(hex: text) }
            #expect(error?.code == .invalidKey && error?.message.contains(reason) == true, "\(String(describing: error))")
        }
    }

    @Test func theInsecureKeyIsAllZerosAndKnowsIt() {
        #expect(ClusterKey.insecure.bytes == [UInt8](repeating: 0, count: 32))
        #expect(ClusterKey.insecure.isInsecure && !ClusterKey.generate().isInsecure)
    }

    @Test func aKeyFileIsReadAsKeygenWritesIt() throws {
        let path = FileManager.default.temporaryDirectory.path + "/mesh-key-" + UUID().uuidString.prefix(8).lowercased()
        defer { try? FileManager.default.removeItem(atPath: path) }
        let key = ClusterKey.generate()
        try (key.hex + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        #expect(try ClusterKey(contentsOfFile: path) == key)
        let missing = #expect(throws: TransportError.self) { try ClusterKey(contentsOfFile: path + ".absent") }
        #expect(missing?.message.contains("cannot read the key file") == true)
    }
}
