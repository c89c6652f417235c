import MeshCore

/// `Codable` conveniences: values are encoded with ``MeshDataEncoder`` and decoded with ``MeshDataDecoder``.
extension MeshNode {
    /// Registers a handler that receives the message decoded as `T`. A message that does not decode fails the
    /// handler (and is retried, then dead-lettered, like any handler failure) with a `decode` error.
    public func handleCommand<T: Decodable & SendableMetatype>(_ commandID: UInt16, as type: T.Type,
                                            _ handler: @escaping @Sendable (T, MessageInfo) async throws -> MeshData?) throws(MeshError) {
        try handleCommand(commandID) { data, info in
            let value: T
            do {
                value = try MeshDataDecoder().decode(T.self, from: data)
            } catch {
                throw MeshError(.decode, "command \(commandID): the data is not a \(T.self): \(error)")
            }
            return try await handler(value, info)
        }
    }

    /// Sends a request built from an `Encodable` value and decodes the response as `Response`.
    /// - Throws: like ``sendRequest(_:to:_:timeout:)``, plus `encoding` and `decode`.
    public func sendRequest<Request: Encodable, Response: Decodable>(_ commandID: UInt16, to address: String, _ value: Request,
                                                                      as responseType: Response.Type,
                                                                      timeout: Duration = .seconds(3)) async throws -> Response {
        let data: MeshData
        do {
            data = try MeshDataEncoder().encode(value)
        } catch {
            throw MeshError(.encoding, "\(error)")
        }
        let response = try await sendRequest(commandID, to: address, data, timeout: timeout)
        do {
            return try MeshDataDecoder().decode(Response.self, from: response)
        } catch {
            throw MeshError(.decode, "the response to command \(commandID) is not a \(Response.self): \(error)")
        }
    }

    /// Sends `data` to a random reachable member of `nodeType` that is online (never this node).
    /// - Throws: ``MeshError`` `notMember` when there is none.
    @discardableResult
    public func sendToAnyOnline(_ commandID: UInt16, ofType nodeType: String, _ data: MeshData) async throws -> Delivery {
        guard let target = randomOnlineNodeAddress(ofType: nodeType) else {
            throw MeshError(.notMember, "no online node of type \(nodeType) is reachable")
        }
        return try await send(commandID, to: target, data)
    }
}
