/// Renders ``MeshData`` as JSON text, for the journal's `payload_json` audit column and for logs.
///
/// The rendering is for people and for SQLite's JSON functions (`json_extract(payload_json, '$.myName')`), not
/// for round trips: integers become JSON numbers (SQLite reads those beyond 2^63 as reals), bytes become
/// standard base64 strings, non-finite floats become the strings `"NaN"`, `"Infinity"` and `"-Infinity"`, and
/// keys appear in canonical (ascending UTF-8) order. The exact form of a message is the binary payload
/// (``MeshCodec``).
public enum MeshJSON {
    /// `data` as compact JSON text.
    public static func string(from data: MeshData) -> String {
        var out: [UInt8] = []
        out.reserveCapacity(128)
        writeMap(data, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    /// The JSON text of an encoded message (``MeshCodec``), written as its bytes are read: the same text as
    /// ``string(from:)-(MeshData)`` of the decoded message, without building the decoded values. The journal renders
    /// each received message's `payload_json` this way.
    /// - Throws: ``MeshCodecError`` for any input ``MeshCodec/decode(_:limits:)`` refuses, with the same error.
    public static func string(encoded bytes: [UInt8], limits: MeshCodec.Limits = .default) throws(MeshCodecError) -> String {
        let result = bytes.withUnsafeBytes { raw in
            Result { () throws(MeshCodecError) -> [UInt8] in
                var builder = JSONTextBuilder()
                builder.out.reserveCapacity(raw.count + raw.count / 2 + 16)
                try MeshCodec.walk(raw, limits: limits, into: &builder)
                return builder.out
            }
        }
        return String(decoding: try result.get(), as: UTF8.self)
    }

    /// `value` as compact JSON text.
    public static func string(from value: MeshValue) -> String {
        var out: [UInt8] = []
        writeValue(value, into: &out)
        return String(decoding: out, as: UTF8.self)
    }

    static func writeMap(_ map: MeshData, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        var first = true
        for (key, value) in map.entries {
            if !first { out.append(UInt8(ascii: ",")) }
            first = false
            writeString(key, into: &out)
            out.append(UInt8(ascii: ":"))
            writeValue(value, into: &out)
        }
        out.append(UInt8(ascii: "}"))
    }

    static func writeValue(_ value: MeshValue, into out: inout [UInt8]) {
        switch value {
        case .null: out.append(contentsOf: "null".utf8)
        case .bool(let v): out.append(contentsOf: (v ? "true" : "false").utf8)
        case .int8(let v): out.append(contentsOf: String(v).utf8)
        case .int16(let v): out.append(contentsOf: String(v).utf8)
        case .int32(let v): out.append(contentsOf: String(v).utf8)
        case .int64(let v): out.append(contentsOf: String(v).utf8)
        case .uint8(let v): out.append(contentsOf: String(v).utf8)
        case .uint16(let v): out.append(contentsOf: String(v).utf8)
        case .uint32(let v): out.append(contentsOf: String(v).utf8)
        case .uint64(let v): out.append(contentsOf: String(v).utf8)
        case .float64(let v):
            if v.isNaN {
                out.append(contentsOf: "\"NaN\"".utf8)
            } else if v.isInfinite {
                out.append(contentsOf: (v > 0 ? "\"Infinity\"" : "\"-Infinity\"").utf8)
            } else {
                out.append(contentsOf: v.description.utf8)
            }
        case .string(let v): writeString(v, into: &out)
        case .bytes(let v):
            out.append(UInt8(ascii: "\""))
            Base64.encode(v, into: &out)
            out.append(UInt8(ascii: "\""))
        case .array(let elements):
            out.append(UInt8(ascii: "["))
            for (i, element) in elements.enumerated() {
                if i > 0 { out.append(UInt8(ascii: ",")) }
                writeValue(element, into: &out)
            }
            out.append(UInt8(ascii: "]"))
        case .map(let nested): writeMap(nested, into: &out)
        }
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    static func writeString(_ string: String, into out: inout [UInt8]) {
        var string = string
        string.withUTF8 { writeString(UnsafeRawBufferPointer($0), into: &out) }
    }

    /// Writes UTF-8 bytes as a JSON string literal.
    static func writeString(_ utf8: UnsafeRawBufferPointer, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
