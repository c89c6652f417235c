import Synchronization
import Testing
@testable import MeshTransport

/// A message's outcome box: every waiter, however many and whether it came before or after the outcome, gets the
/// one outcome the box was first completed with, exactly once.
@Suite struct OutcomeBoxTests {
    @Test(arguments: [0, 1, 2, 5])
    func everyWaiterGetsTheFirstOutcomeOnce(callbacksBefore: Int) async {
        let box = OutcomeBox()
        let calls = Mutex<[MessageOutcome]>([])
        for _ in 0..<callbacksBefore {
            box.whenComplete { outcome in calls.withLock { $0.append(outcome) } }
        }
        #expect(box.value == nil)
        #expect(calls.withLock { $0.isEmpty })
        let waiting = Task { await box.wait() }
        box.complete(.confirmed)
        box.complete(.sent)  // a second completion changes nothing
        #expect(await waiting.value == .confirmed)
        box.whenComplete { outcome in calls.withLock { $0.append(outcome) } }
        #expect(await box.wait() == .confirmed)
        #expect(box.value == .confirmed)
        #expect(calls.withLock { $0 } == Array(repeating: .confirmed, count: callbacksBefore + 1))
    }
}
