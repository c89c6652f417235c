import MeshCore

/// Measures ``MeshCodec`` encode and decode throughput, and the journal's JSON rendering of a received message,
/// on a typical ~1 KiB game-server message.
package enum CodecBenchmark {
    /// A representative message: names, numbers, a position, tags, a packed schedule capsule and a body.
    package static func typicalMessage() throws -> MeshData {
        var schedule = DataCapsule()
        schedule.setAsArray("appointments", [
            DataCapsule(["date": "01/01/2022", "title": "New Year Party"]),
            DataCapsule(["date": "25/12/2022", "title": "Christmas Party"]),
        ])
        return [
            "myName": "Jon", "userID": .uint64(9_007_199_254_740_993), "level": .int32(42), "hp": .uint16(870),
            "pos": [.float64(12.5), .float64(-3.25), .float64(100)], "online": true,
            "tags": ["pvp", "guild:alpha", "season-7", "premium"],
            "mySchedule": .bytes(try schedule.pack()),
            "stats": ["str": .int16(18), "dex": .int16(14), "int": .int16(9), "wis": .int16(11)],
            "body": .bytes([UInt8](repeating: 0x5A, count: 700)),
        ]
    }

    /// Encode and decode rates in payload MB/s (10^6 bytes of encoded message per second), medians over `runs`.
    package struct Result: Sendable {
        package let messageBytes: Int
        package let encodeMBps: Double
        package let decodeMBps: Double
        package let encodeNanosPerMessage: Double
        package let decodeNanosPerMessage: Double
        /// The journal's `payload_json` of a received message, rendered by decoding then rendering the values...
        package let decodeRenderNanosPerMessage: Double
        /// ...and straight from the bytes (``MeshJSON/string(encoded:limits:)``, what the journal does), same run.
        package let renderFromBytesNanosPerMessage: Double
    }

    package static func run(iterations: Int = 200_000, runs: Int = 5) throws -> Result {
        let message = try typicalMessage()
        let bytes = try MeshCodec.encode(message)
        var encodeRates: [Double] = []
        var decodeRates: [Double] = []
        var decodeRenderNanos: [Double] = []
        var fromBytesNanos: [Double] = []
        var sink = 0
        for _ in 0..<runs {
            let e = try BenchStatistics.time {
                for _ in 0..<iterations { sink &+= try MeshCodec.encode(message).count }
            }
            let d = try BenchStatistics.time {
                for _ in 0..<iterations { sink &+= try MeshCodec.decode(bytes).count }
            }
            // The two JSON renderings alternate within each run, so drift hits both alike.
            let r = try BenchStatistics.time {
                for _ in 0..<iterations { sink &+= MeshJSON.string(from: try MeshCodec.decode(bytes)).utf8.count }
            }
            let f = try BenchStatistics.time {
                for _ in 0..<iterations { sink &+= try MeshJSON.string(encoded: bytes).utf8.count }
            }
            decodeRenderNanos.append(r / Double(iterations) * 1e9)
            fromBytesNanos.append(f / Double(iterations) * 1e9)
            encodeRates.append(Double(iterations * bytes.count) / e / 1e6)
            decodeRates.append(Double(iterations * bytes.count) / d / 1e6)
        }
        precondition(sink != 42, "keeps the loops from being optimized away")
        let enc = BenchStatistics.median(encodeRates)
        let dec = BenchStatistics.median(decodeRates)
        return Result(messageBytes: bytes.count, encodeMBps: enc, decodeMBps: dec,
                      encodeNanosPerMessage: Double(bytes.count) / enc * 1e3, decodeNanosPerMessage: Double(bytes.count) / dec * 1e3,
                      decodeRenderNanosPerMessage: BenchStatistics.median(decodeRenderNanos),
                      renderFromBytesNanosPerMessage: BenchStatistics.median(fromBytesNanos))
    }
}
