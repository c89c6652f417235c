// Literal conformances, so messages read like the Diarkis examples:
// `let data: MeshData = ["myName": "Jon", "level": 12, "scores": [1, 2, 3]]`.

extension MeshValue: ExpressibleByNilLiteral {
    /// `nil` is ``MeshValue/null``.
    public init(nilLiteral: ()) { self = .null }
}

extension MeshValue: ExpressibleByBooleanLiteral {
    /// A boolean literal is ``MeshValue/bool(_:)``.
    public init(booleanLiteral value: Bool) { self = .bool(value) }
}

extension MeshValue: ExpressibleByIntegerLiteral {
    /// An integer literal is ``MeshValue/int64(_:)``; write `.uint8(3)` and so on for other widths.
    public init(integerLiteral value: Int64) { self = .int64(value) }
}

extension MeshValue: ExpressibleByFloatLiteral {
    /// A float literal is ``MeshValue/float64(_:)``.
    public init(floatLiteral value: Double) { self = .float64(value) }
}

extension MeshValue: ExpressibleByStringLiteral {
    /// A string literal is ``MeshValue/string(_:)``.
    public init(stringLiteral value: String) { self = .string(value) }
}

extension MeshValue: ExpressibleByStringInterpolation {
    /// An interpolated string literal (`"p-\(level)"`) is ``MeshValue/string(_:)`` of the interpolated text, as it
    /// would be for a `String`.
    public init(stringInterpolation: DefaultStringInterpolation) {
        self = .string(String(stringInterpolation: stringInterpolation))
    }
}

extension MeshValue: ExpressibleByArrayLiteral {
    /// An array literal is ``MeshValue/array(_:)``.
    public init(arrayLiteral elements: MeshValue...) { self = .array(elements) }
}

extension MeshValue: ExpressibleByDictionaryLiteral {
    /// A dictionary literal is a nested ``MeshValue/map(_:)``. A repeated key keeps the last value.
    public init(dictionaryLiteral elements: (String, MeshValue)...) {
        var data = MeshData()
        for (key, value) in elements { data[key] = value }
        self = .map(data)
    }
}
