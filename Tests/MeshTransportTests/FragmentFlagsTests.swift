import Testing
@testable import MeshTransport

/// The per-fragment flags of an outbound message, inline for 64 fragments and in words beyond: each flag is set and
/// cleared on its own, at the edges of the inline word and of each further word.
@Suite struct FragmentFlagsTests {
    @Test(arguments: [1, 63, 64, 65, 128, 129, 900])
    func eachFlagIsSetAndClearedAloneAndTheRestStayClear(count: Int) {
        var flags = FragmentFlags(count: count)
        #expect((0..<count).allSatisfy { !flags[$0] })
        let probes = Set([0, 1, 62, 63, 64, 65, 127, 128, 129, count - 1].filter { $0 < count })
        for index in probes {
            flags[index] = true
            #expect((0..<count).filter { flags[$0] } == [index], "setting \(index) of \(count)")
            flags[index] = true
            #expect(flags[index])
            flags[index] = false
            #expect((0..<count).allSatisfy { !flags[$0] }, "clearing \(index) of \(count)")
        }
        for index in probes { flags[index] = true }
        #expect(Set((0..<count).filter { flags[$0] }) == probes)
    }
}
