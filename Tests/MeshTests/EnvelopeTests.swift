import MeshJournal
import NIOCore
import Testing
@testable import Mesh

/// The node-level header inside every transport message: each combination of its optional fields survives a round
/// trip, and a header that is truncated, too long in a field or of an unknown version decodes to nil (the message is
/// rejected, never journaled half-read).
@Suite struct EnvelopeTests {
    @Test(arguments: 0..<16)
    func everyCombinationOfOptionalFieldsRoundTrips(flags: Int) {
        let envelope = Envelope(kind: .request, originSeq: 300 + UInt64(flags) << 40,
                                correlationID: flags & 1 != 0 ? "corr-\(flags)" : nil,
                                replayOf: flags & 2 != 0 ? "node:42" : nil,
                                isError: flags & 4 != 0,
                                relay: flags & 8 != 0 ? "2;127.0.0.1:7000,127.0.0.1:7001" : nil,
                                payload: [1, 2, 3, UInt8(flags)])
        #expect(Envelope.decode(envelope.encode()) == envelope)
    }

    @Test func malformedHeadersDecodeToNil() {
        let good = Envelope(kind: .response, originSeq: 7, correlationID: "abc", replayOf: nil, relay: nil, payload: [9])
        let bytes = Array(good.encode().readableBytesView)
        // Every truncation inside the header (the payload, the rest, may be empty).
        for length in 0..<(bytes.count - 1) {
            #expect(Envelope.decode(ByteBuffer(bytes: bytes.prefix(length))) == nil, "truncated to \(length)")
        }
        var wrongVersion = bytes
        wrongVersion[0] = 2
        #expect(Envelope.decode(ByteBuffer(bytes: wrongVersion)) == nil)
        let tooLong = Envelope(kind: .request, originSeq: 1, correlationID: String(repeating: "x", count: 257), replayOf: nil,
                               relay: nil, payload: [])
        #expect(Envelope.decode(tooLong.encode()) == nil)
        let longestRelay = String(repeating: "r", count: Envelope.maxRelayBytes)
        let relayed = Envelope(kind: .send, originSeq: 1, correlationID: nil, replayOf: nil, relay: longestRelay, payload: [])
        #expect(Envelope.decode(relayed.encode()) == relayed)
        let tooLongRelay = Envelope(kind: .send, originSeq: 1, correlationID: nil, replayOf: nil, relay: longestRelay + "r", payload: [])
        #expect(Envelope.decode(tooLongRelay.encode()) == nil)
    }
}
