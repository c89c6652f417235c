import MeshBench
import Testing

/// The host-steal figure of `mesh bench` (`host_steal_pct`): how `/proc/stat` is read and how two samples become
/// shares of the machine's CPU time.
struct MachineCPUTimeTests {
    static let before = """
        cpu  100 5 50 800 20 3 2 20 0 0
        cpu0 50 2 25 400 10 1 1 10 0 0
        intr 12345
        """
    static let after = """
        cpu  160 5 80 880 30 3 2 40 0 0
        cpu0 80 2 40 440 15 1 1 20 0 0
        """

    @Test func readsTheMachineLineNotAPerCPUOne() throws {
        let sample = try #require(MachineCPUTime.parse(Self.before))
        #expect(sample == MachineCPUTime(total: 1000, idle: 820, steal: 20))
    }

    @Test func sharesAreOfTheTicksBetweenTwoSamples() throws {
        let (before, after) = (try #require(MachineCPUTime.parse(Self.before)), try #require(MachineCPUTime.parse(Self.after)))
        // 200 ticks passed: 20 stolen, 90 idle (80 idle + 10 iowait).
        let shares = try #require(after.percentages(since: before))
        #expect(shares.steal == 10 && shares.idle == 45)
    }

    @Test(arguments: ["", "intr 1 2 3", "cpu  1 2 3", "cpu  a b c d e f g h"])
    func anUnreadableStatGivesNoSample(_ text: String) {
        #expect(MachineCPUTime.parse(text) == nil)
    }

    @Test func noTickOrCountersGoingBackGiveNoShares() throws {
        let sample = try #require(MachineCPUTime.parse(Self.before))
        #expect(sample.percentages(since: sample) == nil)
        #expect(sample.percentages(since: MachineCPUTime(total: 900, idle: 900, steal: 0)) == nil)
    }

    @Test func thisMachineHasAReadableStat() throws {
        #if os(Linux)
        let sample = try #require(MachineCPUTime.now())
        #expect(sample.total > 0 && sample.idle <= sample.total && sample.steal <= sample.total)
        #endif
    }
}
