import Dispatch
import Logging
import NIOConcurrencyHelpers
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Turns the configured seeds into addresses for the membership rounds: numeric ones as they are, host names
/// through `getaddrinfo`, every address a name yields being a seed.
///
/// `getaddrinfo` blocks (a DNS timeout takes seconds), so it runs on a serial dispatch queue of its own — never
/// on the node's thread nor on Swift's cooperative pool; a round waits for a resolution at most a bound and
/// otherwise uses the last addresses known. A name that does not resolve is logged once per change (not every
/// round) and is never fatal: the node keeps its other seeds and the members it knows. Called from the
/// membership loop (one round at a time); its state is under one lock.
final class SeedResolver: Sendable {
    private let numeric: [String]
    private let names: [(host: String, port: Int)]
    private let family: Int32
    private let logger: Logger
    private let queue = DispatchQueue(label: "mesh.seed-resolver")

    private struct State {
        /// Addresses each name yielded last time (empty: did not resolve), by `host:port`.
        var resolved: [String: [String]] = [:]
        /// What was logged last for each name (its addresses, or its error), so a change is logged once.
        var logged: [String: String] = [:]
        /// The resolution running now, if any (its waiters).
        var inFlight: [CheckedContinuation<Void, Never>]?
        /// Resolutions finished since start.
        var resolutions = 0
    }

    private let state = NIOLockedValueBox(State())

    /// - Parameter ipv6: the node's own socket is IPv6 (it can reach addresses of its own family only).
    init(seeds: [Seed], ipv6: Bool, logger: Logger) {
        var numeric: [String] = []
        var names: [(host: String, port: Int)] = []
        for seed in seeds {
            switch seed {
            case .address(let address): numeric.append(address)
            case .name(let host, let port): names.append((host, port))
            }
        }
        self.numeric = numeric
        self.names = names
        self.family = ipv6 ? AF_INET6 : AF_INET
        self.logger = logger
    }

    /// Whether any seed is a name (otherwise ``addresses(waitingAtMost:)`` returns at once).
    var hasNames: Bool { !names.isEmpty }

    /// Starts a resolution of the names unless one runs, waits for it at most `bound`, and returns every seed
    /// address known now (numeric seeds first, then what the names yielded, without duplicates).
    func addresses(waitingAtMost bound: Duration) async -> [String] {
        guard hasNames else { return numeric }
        // Not a task group: it would wait for a resolution stuck in a DNS timeout past the bound.
        _ = await MeshNode.race(timeout: bound) { await self.resolveOnce() }
        return current
    }

    /// Resolutions of the names finished since start (tests await rounds with it).
    var resolutions: Int { state.withLockedValue { $0.resolutions } }

    /// The seed addresses known now.
    var current: [String] {
        let resolved = state.withLockedValue { state in names.flatMap { state.resolved["\($0.host):\($0.port)"] ?? [] } }
        var seen = Set<String>()
        return (numeric + resolved).filter { seen.insert($0).inserted }
    }

    /// Joins the running resolution, or starts one; returns when it finished.
    private func resolveOnce() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let start = state.withLockedValue { state -> Bool in
                if state.inFlight != nil {
                    state.inFlight!.append(continuation)
                    return false
                }
                state.inFlight = [continuation]
                return true
            }
            guard start else { return }
            queue.async { [self] in
                var results: [String: Result<[String], ResolveFailure>] = [:]
                for (host, port) in names { results["\(host):\(port)"] = Self.resolve(host: host, port: port, family: family) }
                let (waiters, changes) = state.withLockedValue { state -> ([CheckedContinuation<Void, Never>], [(String, Result<[String], ResolveFailure>)]) in
                    var changes: [(String, Result<[String], ResolveFailure>)] = []
                    for (name, result) in results {
                        let summary: String
                        switch result {
                        case .success(let addresses):
                            state.resolved[name] = addresses
                            summary = addresses.joined(separator: ",")
                        case .failure(let failure):
                            state.resolved[name] = []
                            summary = "error: \(failure.message)"
                        }
                        if state.logged[name] != summary {
                            state.logged[name] = summary
                            changes.append((name, result))
                        }
                    }
                    state.resolutions += 1
                    defer { state.inFlight = nil }
                    return (state.inFlight ?? [], changes)
                }
                for (name, result) in changes {
                    switch result {
                    case .success(let addresses):
                        logger.info("seed name resolved", metadata: ["mesh.seed": "\(name)", "mesh.addresses": "\(addresses.joined(separator: " "))"])
                    case .failure(let failure):
                        logger.warning("seed name does not resolve; retrying every membership round", metadata: [
                            "mesh.seed": "\(name)", "mesh.error": "\(failure.message)",
                        ])
                    }
                }
                for waiter in waiters { waiter.resume() }
            }
        }
    }

    struct ResolveFailure: Error {
        let message: String
    }

    /// `getaddrinfo(host)` for datagram sockets of `family`: the addresses as `ip:port` (sorted, unique).
    static func resolve(host: String, port: Int, family: Int32) -> Result<[String], ResolveFailure> {
        var hints = addrinfo()
        hints.ai_family = family
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0 else { return .failure(ResolveFailure(message: String(cString: gai_strerror(status)))) }
        defer { freeaddrinfo(list) }
        var addresses = Set<String>()
        var next = list
        while let entry = next {
            if let sockaddr = entry.pointee.ai_addr {
                let address: SocketAddress?
                switch Int32(entry.pointee.ai_family) {
                case AF_INET:
                    address = sockaddr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { SocketAddress($0.pointee, host: host) }
                case AF_INET6:
                    address = sockaddr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { SocketAddress($0.pointee, host: host) }
                default:
                    address = nil
                }
                if let address { addresses.insert(MeshAddress.text(address)) }
            }
            next = entry.pointee.ai_next
        }
        guard !addresses.isEmpty else { return .failure(ResolveFailure(message: "no address of the node's family")) }
        return .success(addresses.sorted())
    }
}
