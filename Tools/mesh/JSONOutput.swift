import Foundation

/// Prints `object` as one line of JSON with sorted keys (every command's `--json` output).
func printJSON(_ object: Any) throws {
    print(String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self))
}
