import ArgumentParser
import Foundation
import Mesh
import MeshFaultProxy
import NIOCore

/// `mesh chaos-proxy`: the fault-injecting UDP proxy, between a client node and a server node.
struct ChaosProxyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chaos-proxy",
        abstract: "Forward UDP from --listen to --forward, injecting seeded loss, duplication, reordering, delay and corruption.")

    @Option(help: "Address clients send to, HOST:PORT.") var listen: String
    @Option(help: "Address datagrams are forwarded to, HOST:PORT.") var forward: String
    @Option(help: "Probability of dropping a datagram (0...1).") var loss = 0.0
    @Option(help: "Probability of sending a datagram twice.") var duplicate = 0.0
    @Option(help: "Probability of holding a datagram back behind the next one.") var reorder = 0.0
    @Option(help: "Delay range in milliseconds, MIN..MAX (e.g. 1..5).") var delay: String?
    @Option(help: "Probability of flipping one byte.") var corrupt = 0.0
    @Option(help: "Seed of the fault decisions (same seed, same faults).") var seed: UInt64 = 1

    func validate() throws {
        for (name, p) in [("loss", loss), ("duplicate", duplicate), ("reorder", reorder), ("corrupt", corrupt)] where !(0...1).contains(p) {
            throw ValidationError("--\(name) must be a probability in 0...1 (got \(p))")
        }
        _ = try parseDelay()
        _ = try Self.address(listen, "--listen")
        _ = try Self.address(forward, "--forward")
    }

    func parseDelay() throws -> ClosedRange<Duration>? {
        guard let delay else { return nil }
        let parts = delay.split(separator: ".", omittingEmptySubsequences: true)
        guard delay.contains(".."), parts.count == 2, let low = Int(parts[0]), let high = Int(parts[1]), low >= 0, low <= high else {
            throw ValidationError("--delay must be MIN..MAX milliseconds, e.g. 1..5 (got \(delay))")
        }
        return .milliseconds(low) ... .milliseconds(high)
    }

    static func address(_ text: String, _ option: String) throws -> SocketAddress {
        do {
            return try MeshAddress.parse(text)
        } catch {
            throw ValidationError("\(option): \(error.message)")
        }
    }

    func run() async throws {
        let faults = FaultProxy.Faults(loss: loss, duplicate: duplicate, reorder: reorder, delay: try parseDelay(), corrupt: corrupt)
        let proxy: FaultProxy
        do {
            proxy = try await FaultProxy.start(listen: try Self.address(listen, "--listen"), forward: try Self.address(forward, "--forward"),
                                               faults: faults, seed: seed)
        } catch let error as ValidationError {
            throw error
        } catch {
            throw CLIError("cannot listen on \(listen): \(error)")
        }
        // host:port, as `--to` and `--forward` take them (the first line is what scripts read for a port 0 listener).
        FileHandle.standardOutput.write(Data("proxying \(MeshAddress.text(proxy.listenAddress)) -> \(MeshAddress.text(proxy.forwardAddress))\n".utf8))
        _ = await waitForTerminationSignal()
        let s = proxy.statistics
        FileHandle.standardError.write(Data(
            "forwarded \(s.forwarded), dropped \(s.dropped), duplicated \(s.duplicated), reordered \(s.reordered), corrupted \(s.corrupted)\n".utf8))
        await proxy.close()
    }
}
