// libFuzzer target for MeshCodec (Tools/fuzz.sh codec SECONDS). Properties checked on every input: decoding never
// crashes or hangs; whatever decodes re-encodes canonically and decodes to the same value; DataCapsule.unpack
// never crashes.
import MeshCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCodec(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    if let data = try? MeshCodec.decode(bytes) {
        guard let encoded = try? MeshCodec.encode(data) else { fatalError("a decoded value did not encode") }
        guard let again = try? MeshCodec.decode(encoded), again == data else { fatalError("round trip changed the value") }
        guard (try? MeshCodec.encode(again)) == encoded else { fatalError("encoding is not canonical") }
        _ = MeshJSON.string(from: data)
    }
    _ = try? DataCapsule.unpack(bytes)
    return 0
}
