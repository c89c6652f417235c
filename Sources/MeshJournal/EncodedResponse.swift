import MeshCore

/// A handler's response encoded once, for the two places a request's answer is journaled: its invocation's record
/// (`response`, `response_json`) and the response message (`payload`, `payload_json`).
package struct EncodedResponse: Sendable {
    /// The MeshCodec encoding.
    package let bytes: [UInt8]
    /// The JSON rendering (``MeshJSON``).
    package let json: String

    /// Encodes and renders `data`; throws what ``MeshCodec/encode(_:)`` throws.
    package init(_ data: MeshData) throws {
        bytes = try MeshCodec.encode(data)
        json = MeshJSON.string(from: data)
    }

    /// An invocation's `response` and `response_json` columns: `encoded` if the caller encoded the response already,
    /// else `response` encoded and rendered here (no bytes if it does not encode; both nil without a response).
    static func columns(_ encoded: EncodedResponse?, of response: MeshData?) -> (bytes: [UInt8]?, json: String?) {
        if let encoded { return (encoded.bytes, encoded.json) }
        return (response.flatMap { try? MeshCodec.encode($0) }, response.map { MeshJSON.string(from: $0) })
    }
}
