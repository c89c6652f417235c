import Synchronization

/// A posted invocation on its way to the journal (see ``Journal/postInvocationStart(inboundID:handlerIndex:attempt:)``).
package final class InvocationTicket: Sendable {
    let inboundID: Int64
    let handlerIndex: Int
    let attempt: Int
    let startedAt: Int64
    /// Set by the dispatcher when the handler ended, before it queues the finish.
    let finished = Atomic<Bool>(false)
    /// The row the start wrote (0: none); written and read on the writer thread only.
    let rowID = Atomic<Int64>(0)

    init(inboundID: Int64, handlerIndex: Int, attempt: Int, startedAt: Int64) {
        self.inboundID = inboundID
        self.handlerIndex = handlerIndex
        self.attempt = attempt
        self.startedAt = startedAt
    }
}
