// libFuzzer target for MeshCodec (Tools/fuzz.sh codec SECONDS). The properties live in MeshCore's
// CodecFuzzing.codec, which `swift test` also runs on the committed seeds (Fuzz/codec-seeds).
@_spi(Fuzzing) import MeshCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzCodec(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    CodecFuzzing.codec(Array(UnsafeRawBufferPointer(start: start, count: count)))
    return 0
}
