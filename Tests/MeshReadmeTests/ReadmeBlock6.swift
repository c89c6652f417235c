import MeshTransport

import Logging // readme-wrapper
import NIOCore // readme-wrapper
func readmeBlock6(keyFileContents: String, nodeID: NodeID, bootEpoch: UInt32, logger: Logger, bytes: ByteBuffer, peer: SocketAddress) async throws { // readme-wrapper
let key = try ClusterKey(hex: keyFileContents)            // 64 hex digits; ClusterKey.generate() makes one
let transport = try await MeshTransport.bind(
    configuration: .init(bindAddress: try .init(ipAddress: "127.0.0.1", port: 8000), nodeID: nodeID, epoch: bootEpoch,
                         keyring: Keyring(key)),
    logger: logger)
let receipt = try await transport.send(bytes, commandID: 1024, to: peer)   // suspends while the window is full
switch await receipt.outcome() {                                           // .confirmed, .sent (unreliable), .failed
case .confirmed: break                                                     // durable at the receiver
case .failed(let error): print(error)                                      // timeout, peerDown, unreachable, rejected, tooLarge, …
case .sent: break
}
for await batch in transport.inbound {                                     // one array per read batch
    // journal the batch, then:
    transport.confirm(batch.map(\.token))
}
} // readme-wrapper
