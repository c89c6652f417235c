import Mesh // readme-wrapper
import MeshCore // readme-wrapper
func readmeBlock3(node: MeshNode) async throws { // readme-wrapper
let outcome = try await Task(executorPreference: node.taskExecutor) {   // or withTaskExecutorPreference
    try await node.sendConfirmed(1024, to: "127.0.0.1:8001", ["myName": "Jon"]).outcome()
}.value
_ = outcome // readme-wrapper
} // readme-wrapper
