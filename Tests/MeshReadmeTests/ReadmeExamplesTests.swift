import Foundation
import Testing

/// The README is a contract: its Swift examples compile, and its `Package.swift` lines name real products.
///
/// Each ```` ```swift ```` block of README.md (but the `Package.swift` excerpt) is kept in `ReadmeBlockN.swift` of
/// this target, wrapped in a function so it compiles as part of the tests; the wrapper's lines end in
/// `// readme-wrapper`. These tests check that every file, without its wrapper lines, is exactly the README's
/// block N — so the README cannot drift from code that compiles.
@Suite struct ReadmeExamplesTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The README's ```swift blocks, in order.
    static func swiftBlocks() throws -> [String] {
        let readme = try String(contentsOf: root.appendingPathComponent("README.md"), encoding: .utf8)
        var blocks: [String] = []
        var current: [Substring]?
        for line in readme.split(separator: "\n", omittingEmptySubsequences: false) {
            if current == nil {
                if line == "```swift" { current = [] }
            } else if line == "```" {
                blocks.append(current!.joined(separator: "\n"))
                current = nil
            } else {
                current!.append(line)
            }
        }
        return blocks
    }

    @Test func everySwiftBlockIsCompiledVerbatim() throws {
        let blocks = try Self.swiftBlocks()
        #expect(blocks.count >= 5)
        let folder = Self.root.appendingPathComponent("Tests/MeshReadmeTests")
        var checked: Set<String> = []
        for (index, block) in blocks.enumerated() where !block.hasPrefix("// Package.swift") {
            let name = "ReadmeBlock\(index + 1).swift"
            let text = try #require(try? String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8),
                                    "README block \(index + 1) has no compiled copy \(name)")
            let unwrapped = text.split(separator: "\n", omittingEmptySubsequences: false)
                .filter { !$0.hasSuffix("// readme-wrapper") }.joined(separator: "\n")
            #expect(unwrapped.trimmingCharacters(in: .newlines) == block.trimmingCharacters(in: .newlines),
                    "\(name) differs from README block \(index + 1): copy the block again")
            checked.insert(name)
        }
        // No stale copy of a block that left the README.
        let files = try FileManager.default.contentsOfDirectory(atPath: folder.path).filter { $0.hasPrefix("ReadmeBlock") }
        #expect(Set(files) == checked, "copies without a README block: \(Set(files).subtracting(checked).sorted())")
    }

    @Test func thePackageExcerptNamesRealProducts() throws {
        let excerpt = try #require(try Self.swiftBlocks().first { $0.hasPrefix("// Package.swift") })
        let manifest = try String(contentsOf: Self.root.appendingPathComponent("Package.swift"), encoding: .utf8)
        let named = excerpt.split(separator: "\n").compactMap { line -> String? in
            guard line.contains(#"package: "Mesh")"#), let start = line.range(of: #".product(name: ""#) else { return nil }
            return String(line[start.upperBound...].prefix { $0 != "\"" })
        }
        #expect(named.count >= 3)
        for product in named {
            #expect(manifest.contains(#".library(name: "\#(product)""#), "README names a product Mesh does not have: \(product)")
        }
        #expect(excerpt.contains("swift-log"))
    }
}
