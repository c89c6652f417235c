import Foundation
import Mesh
import MeshCore
import MeshJournal

/// `mesh node --send-mode mixed`: the soak test's traffic. Message `i` of this node is, by `i % 20`: a `send`
/// (0–11, command 1024), a `usend` (12–13, command 1025), a `sendMany` relay tree over the `--relay-to`
/// addresses with limit 1 (14–15, command 1026), or a request (16–19, command 2000, answered by `--echo 2000`),
/// to `targets[i % targets.count]`. Its body is 1 B to 1 KiB, 64 KiB for every 101st message and 1 MiB for every
/// 997th. Every message carries `{"i": i, "from": this node's address}`, so a restarted generator continues
/// after the highest `i` its journal holds.
enum MixedTraffic {
    static let sendCommand: UInt16 = 1024
    static let usendCommand: UInt16 = 1025
    static let sendManyCommand: UInt16 = 1026
    static let requestCommand: UInt16 = 2000

    static func bodySize(_ i: Int) -> Int {
        if i % 997 == 996 { return 1 << 20 }
        if i % 101 == 100 { return 64 << 10 }
        return 1 + (i &* 37) % 1024
    }

    /// Returns whether every message was handed to the node (false when stopped or failed).
    static func generate(node: MeshNode, targets: [String], relays: [String], count: Int, rate: Double?) async -> Bool {
        let me = node.address
        let last: Int64?
        do {
            last = try await node.journal.read { db in
                try db.scalarInt("""
                    SELECT max(json_extract(payload_json, '$.i')) FROM mesh_outbound
                    WHERE kind <> 3 AND json_extract(payload_json, '$.from') = '\(me)'
                    """)
            }
        } catch {
            FileHandle.standardError.write(Data("traffic generator stopped: \(error)\n".utf8))
            return false
        }
        return await TrafficPacing.run(from: last.map { Int($0) + 1 } ?? 0, to: count, rate: rate) { i in
            let data: MeshData = ["i": .int64(Int64(i)), "from": .string(me),
                                  "body": .bytes([UInt8](repeating: UInt8(truncatingIfNeeded: i), count: bodySize(i)))]
            let target = targets[i % targets.count]
            switch i % 20 {
            case 0..<12: _ = try await node.send(sendCommand, to: target, data)
            case 12, 13: _ = try await node.usend(usendCommand, to: target, data)
            case 14, 15:
                if relays.isEmpty {
                    _ = try await node.send(sendCommand, to: target, data)
                } else {
                    _ = try await node.sendMany(sendManyCommand, to: relays, data, limit: 1)
                }
            default:
                // A request whose response does not come back in time is still journaled and resent as needed; the
                // generator moves on.
                _ = try? await node.sendRequest(requestCommand, to: target, data, timeout: .seconds(60))
            }
        }
    }
}
