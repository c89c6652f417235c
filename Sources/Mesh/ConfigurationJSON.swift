/// A JSON value as a configuration file states it: numbers keep their text (so `1` and `1.5` and `true` stay
/// apart), objects keep their keys in order and a key may appear only once.
///
/// Foundation's `JSONSerialization` cannot serve a strict configuration reader: it bridges `true` to the number 1,
/// so `"port": true` bound port 1, and it silently keeps the last of duplicate keys.
enum ConfigurationJSON: Equatable {
    case object([(key: String, value: ConfigurationJSON)])
    case array([ConfigurationJSON])
    case string(String)
    /// The number's literal text, as written.
    case number(String)
    case bool(Bool)
    case null

    static func == (lhs: ConfigurationJSON, rhs: ConfigurationJSON) -> Bool {
        switch (lhs, rhs) {
        case (.object(let a), .object(let b)): a.count == b.count && zip(a, b).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case (.array(let a), .array(let b)): a == b
        case (.string(let a), .string(let b)), (.number(let a), .number(let b)): a == b
        case (.bool(let a), .bool(let b)): a == b
        case (.null, .null): true
        default: false
        }
    }

    /// What the value is, for error messages: `true`, `a string`, `a number (1.5)`.
    var kind: String {
        switch self {
        case .object: "an object"
        case .array: "a list"
        case .string(let s): "a string (\"\(s.count > 40 ? String(s.prefix(40)) + "…" : s)\")"
        case .number(let n): "a number (\(n))"
        case .bool(let b): "\(b)"
        case .null: "null"
        }
    }

    /// Parses `bytes` (UTF-8 JSON, RFC 8259).
    /// - Throws: ``MeshError`` `invalidConfiguration` naming the byte offset of the first problem, or the key that
    ///   appears twice in one object.
    static func parse(_ bytes: [UInt8]) throws(MeshError) -> ConfigurationJSON {
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.value(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else { throw parser.error("unexpected content after the JSON value") }
        return value
    }

    private struct Parser {
        let bytes: [UInt8]
        var position = 0

        func error(_ what: String) -> MeshError {
            MeshError(.invalidConfiguration, "not valid JSON: \(what) at byte \(position)")
        }

        mutating func skipWhitespace() {
            while position < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[position]) { position += 1 }
        }

        mutating func expect(_ literal: String) throws(MeshError) {
            for byte in literal.utf8 {
                guard position < bytes.count, bytes[position] == byte else { throw error("expected \(literal)") }
                position += 1
            }
        }

        mutating func value(depth: Int) throws(MeshError) -> ConfigurationJSON {
            guard depth < 64 else { throw error("nesting deeper than 64") }
            guard position < bytes.count else { throw error("unexpected end") }
            switch bytes[position] {
            case UInt8(ascii: "{"): return try object(depth: depth)
            case UInt8(ascii: "["): return try array(depth: depth)
            case UInt8(ascii: "\""): return .string(try string())
            case UInt8(ascii: "t"): try expect("true"); return .bool(true)
            case UInt8(ascii: "f"): try expect("false"); return .bool(false)
            case UInt8(ascii: "n"): try expect("null"); return .null
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try number())
            default: throw error("unexpected character")
            }
        }

        mutating func object(depth: Int) throws(MeshError) -> ConfigurationJSON {
            position += 1
            var members: [(key: String, value: ConfigurationJSON)] = []
            var seen: Set<String> = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "}") {
                position += 1
                return .object(members)
            }
            while true {
                skipWhitespace()
                guard position < bytes.count, bytes[position] == UInt8(ascii: "\"") else { throw error("expected a key") }
                let key = try string()
                guard seen.insert(key).inserted else {
                    throw MeshError(.invalidConfiguration, "\"\(key)\" appears twice (only one value per key)")
                }
                skipWhitespace()
                try expect(":")
                skipWhitespace()
                members.append((key, try value(depth: depth + 1)))
                skipWhitespace()
                guard position < bytes.count else { throw error("unexpected end in an object") }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "}") {
                    position += 1
                    return .object(members)
                } else {
                    throw error("expected , or }")
                }
            }
        }

        mutating func array(depth: Int) throws(MeshError) -> ConfigurationJSON {
            position += 1
            var elements: [ConfigurationJSON] = []
            skipWhitespace()
            if position < bytes.count, bytes[position] == UInt8(ascii: "]") {
                position += 1
                return .array(elements)
            }
            while true {
                skipWhitespace()
                elements.append(try value(depth: depth + 1))
                skipWhitespace()
                guard position < bytes.count else { throw error("unexpected end in a list") }
                if bytes[position] == UInt8(ascii: ",") {
                    position += 1
                } else if bytes[position] == UInt8(ascii: "]") {
                    position += 1
                    return .array(elements)
                } else {
                    throw error("expected , or ]")
                }
            }
        }

        mutating func number() throws(MeshError) -> String {
            let start = position
            if bytes[position] == UInt8(ascii: "-") { position += 1 }
            func digits(_ p: inout Int) -> Int {
                let from = p
                while p < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[p]) { p += 1 }
                return p - from
            }
            guard position < bytes.count else { throw error("a number without digits") }
            if bytes[position] == UInt8(ascii: "0") {
                position += 1
            } else if digits(&position) == 0 {
                throw error("a number without digits")
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: ".") {
                position += 1
                guard digits(&position) > 0 else { throw error("a fraction without digits") }
            }
            if position < bytes.count, bytes[position] == UInt8(ascii: "e") || bytes[position] == UInt8(ascii: "E") {
                position += 1
                if position < bytes.count, bytes[position] == UInt8(ascii: "+") || bytes[position] == UInt8(ascii: "-") { position += 1 }
                guard digits(&position) > 0 else { throw error("an exponent without digits") }
            }
            return String(decoding: bytes[start..<position], as: UTF8.self)
        }

        mutating func string() throws(MeshError) -> String {
            position += 1
            var run = position  // start of unescaped bytes not yet copied
            var text: [UInt8] = []
            while true {
                guard position < bytes.count else { throw error("unterminated string") }
                let byte = bytes[position]
                if byte == UInt8(ascii: "\"") {
                    text += bytes[run..<position]
                    position += 1
                    break
                }
                guard byte >= 0x20 else { throw error("a control character in a string") }
                guard byte == UInt8(ascii: "\\") else {
                    position += 1
                    continue
                }
                text += bytes[run..<position]
                position += 1
                guard position < bytes.count else { throw error("unterminated escape") }
                let escaped = bytes[position]
                position += 1
                switch escaped {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): text.append(escaped)
                case UInt8(ascii: "b"): text.append(0x08)
                case UInt8(ascii: "f"): text.append(0x0C)
                case UInt8(ascii: "n"): text.append(0x0A)
                case UInt8(ascii: "r"): text.append(0x0D)
                case UInt8(ascii: "t"): text.append(0x09)
                case UInt8(ascii: "u"):
                    var code = try hex4()
                    if (0xD800...0xDBFF).contains(code) {
                        try expect("\\u")
                        let low = try hex4()
                        guard (0xDC00...0xDFFF).contains(low) else { throw error("an unpaired surrogate") }
                        code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
                    }
                    guard let scalar = Unicode.Scalar(code) else { throw error("an invalid \\u escape") }
                    text += Array(String(scalar).utf8)
                default:
                    throw error("an invalid escape")
                }
                run = position
            }
            guard let decoded = String(validating: text, as: UTF8.self) else { throw error("a string that is not UTF-8") }
            return decoded
        }

        mutating func hex4() throws(MeshError) -> UInt32 {
            guard position + 4 <= bytes.count else { throw error("a short \\u escape") }
            var value: UInt32 = 0
            for byte in bytes[position..<(position + 4)] {
                let digit: UInt8
                switch byte {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
                default: throw error("a \\u escape that is not hexadecimal")
                }
                value = value * 16 + UInt32(digit)
            }
            position += 4
            return value
        }
    }
}
