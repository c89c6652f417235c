// libFuzzer target: TransportFuzzing.fragments (its properties are documented there). Tools/fuzz.sh builds it.
@_spi(Fuzzing) import MeshTransport

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    TransportFuzzing.fragments(Array(UnsafeRawBufferPointer(start: start, count: count)))
    return 0
}
