import Logging
import MeshCore
import MeshJournal

func readmeBlock5() async throws { // readme-wrapper
let journal = try await Journal.open(path: "node.sqlite", configuration: .init(durability: .normal),
                                     logger: Logger(label: "mesh"))
let seq = try await journal.appendOutbound(
    try OutboundMessage(commandID: 1024, kind: .send, peer: "127.0.0.1:8001", data: ["myName": "Jon"]))
// ... transmit; when the receiver's ack arrives:
try await journal.markOutboundAcked([seq])
let resend = try await journal.pendingOutbound()          // after a crash: what was never acknowledged
print("\(resend.count) messages to send again")
await journal.close()
} // readme-wrapper
