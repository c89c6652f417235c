import ServiceLifecycle

/// A node is a swift-service-lifecycle `Service`: put it in a `ServiceGroup` next to the game server's other
/// services, and the group's graceful shutdown (SIGTERM) stops it in order.
extension MeshNode: Service {
    /// Runs until graceful shutdown or cancellation, then ``shutdown()``: announces the node offline, drains
    /// running handlers within ``MeshConfiguration/shutdownTimeout``, persists the membership and closes the
    /// journal. Returns at once if the node was already shut down.
    public func run() async throws {
        if !isStopped {
            do {
                try await withStopSignal { try await gracefulShutdown() }
            } catch is CancellationError {
                // Cancelled: shut down all the same.
            }
        }
        await shutdown()
    }

    /// Runs `body` until it returns or the node is stopped by a direct ``shutdown()`` call.
    private func withStopSignal(_ body: @escaping @Sendable () async throws -> Void) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await body() }
            group.addTask { [stopSignal] in await stopSignal.wait() }
            _ = try await group.next()
            group.cancelAll()
        }
    }
}
