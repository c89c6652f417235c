/// SendMany's relay tree (Diarkis `SendMany(cmd, addrs, data, limit)`): the sender sends to at most `limit`
/// nodes, each carrying the branch of the remaining addresses it must forward to, split the same way. With
/// `limit` 2, six addresses are reached in two hops; n addresses in about log_limit(n) hops.
enum RelayTree {
    /// Splits `targets` into at most `limit` groups of near-equal size, in order: each group's first address
    /// receives the message directly, the rest is its branch.
    static func split(_ targets: [String], limit: Int) -> [(direct: String, branch: [String])] {
        guard !targets.isEmpty else { return [] }
        let groups = max(1, min(limit, targets.count))
        let base = targets.count / groups
        let extra = targets.count % groups
        var result: [(direct: String, branch: [String])] = []
        var start = 0
        for g in 0..<groups {
            let size = base + (g < extra ? 1 : 0)
            let group = Array(targets[start..<(start + size)])
            result.append((group[0], Array(group.dropFirst())))
            start += size
        }
        return result
    }

    /// `"limit;addr,addr"`, or `nil` for an empty branch (nothing to forward).
    static func encode(limit: Int, branch: [String]) -> String? {
        branch.isEmpty ? nil : "\(limit);" + branch.joined(separator: ",")
    }

    /// The limit and branch of an encoded relay; `nil` if malformed.
    static func decode(_ text: String) -> (limit: Int, branch: [String])? {
        guard let semicolon = text.firstIndex(of: ";"), let limit = Int(text[..<semicolon]), (1...1024).contains(limit) else { return nil }
        let list = text[text.index(after: semicolon)...]
        let branch = list.split(separator: ",").map(String.init)
        return branch.isEmpty ? nil : (limit, branch)
    }
}
