import MeshCore

/// A handler as registered for a command ID: awaited on the command ID's lane, or synchronous, which the node
/// may run inline on its own thread (see ``MeshNode/handleCommandInline(_:_:)``).
enum RegisteredHandler: Sendable {
    case async(MeshNode.Handler)
    case sync(MeshNode.SyncHandler)

    /// Runs the handler (on the caller's task, for a lane or a replay).
    func call(_ data: MeshData, _ info: MessageInfo) async throws -> MeshData? {
        switch self {
        case .async(let handler): try await handler(data, info)
        case .sync(let handler): try handler(data, info)
        }
    }

    /// The synchronous handler, or `nil` for an async one.
    var synchronous: MeshNode.SyncHandler? {
        if case .sync(let handler) = self { handler } else { nil }
    }
}
