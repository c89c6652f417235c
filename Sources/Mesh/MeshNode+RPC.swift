import MeshCore

/// Raw-bytes RPC (Diarkis `HandleRPC` / `SendRPC`): bytes in, bytes out, for callers that bring their own
/// encoding (JSON, protobuf). Journaled like every message: the bytes travel as the `rpc` field of a request
/// and of its response (`mesh_messages.payload_json` shows them base64).
extension MeshNode {
    /// The field of the request and response maps that carries an RPC's bytes.
    public static let rpcField = "rpc"

    /// Registers a raw-bytes RPC handler for `commandID` (Diarkis `HandleRPC(cmd, func(payload, sender) ([]byte,
    /// error))`): it gets the request's bytes and the sender's address and returns the response's bytes; a throw
    /// is the error the caller of ``sendRPC(_:to:_:timeout:)`` gets (`handlerError`, after the usual retries).
    /// A message of `commandID` that carries no `rpc` bytes fails with `decode` (retried, then dead-lettered).
    /// - Throws: ``MeshError`` (`reservedCommand`) for an ID in ``reservedCommandIDs``.
    public func handleRPC(_ commandID: UInt16,
                          _ handler: @escaping @Sendable (_ payload: [UInt8], _ sender: String) async throws -> [UInt8]) throws(MeshError) {
        try handleCommand(commandID) { data, info in
            let payload: [UInt8]
            do {
                payload = try data.getBytes(Self.rpcField)
            } catch {
                throw MeshError(.decode, "command \(commandID) takes raw-bytes RPC requests (an \"\(Self.rpcField)\" bytes field): \(error)")
            }
            return [Self.rpcField: .bytes(try await handler(payload, info.sender))]
        }
    }

    /// Sends `payload` to the RPC handler of `commandID` at `address` and returns its response's bytes (Diarkis
    /// `SendRPC(cmd, addr, payload) ([]byte, error)`).
    /// - Throws: what ``sendRequest(_:to:_:timeout:)`` throws; ``MeshError`` (`decode`) if the response carries
    ///   no `rpc` bytes (the command ID's handler is not an RPC handler).
    public func sendRPC(_ commandID: UInt16, to address: String, _ payload: [UInt8], timeout: Duration = .seconds(3)) async throws -> [UInt8] {
        let response = try await sendRequest(commandID, to: address, [Self.rpcField: .bytes(payload)], timeout: timeout)
        do {
            return try response.getBytes(Self.rpcField)
        } catch {
            throw MeshError(.decode, "the response to RPC command \(commandID) carries no \"\(Self.rpcField)\" bytes: \(error)")
        }
    }
}
