// swift-tools-version: 6.1
//
// Mesh's benchmark suite on package-benchmark (ordo-one), a package of its own as in SwiftNIO: it depends on
// Mesh by path and is never built by Mesh's own `swift build` or `swift test`. Run it from this folder:
//
//     swift package --disable-sandbox benchmark                       # every benchmark, summary table
//     swift package --disable-sandbox benchmark --filter "Journal.*"  # a subset
//
// Each Mesh figure has its same-run ceiling as a benchmark of its own in the same table ("Ceiling: …"): raw
// SQLite inserts, raw SwiftNIO UDP. The malloc interposer (trait MallocInterposer, swift-tools 6.1) counts
// allocations per iteration: every benchmark's iteration is one message, so `Malloc (total)` is per message.

import PackageDescription

let package = Package(
    name: "MeshBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Mesh", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark.git", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // The system libsqlite3, for the raw-SQLite ceiling.
        .systemLibrary(name: "CSQLiteCeiling", path: "Sources/CSQLiteCeiling", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .executableTarget(
            name: "MeshBenchmarks",
            dependencies: [
                "CSQLiteCeiling",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "Mesh", package: "Mesh"),
                .product(name: "MeshCore", package: "Mesh"),
                .product(name: "MeshJournal", package: "Mesh"),
                .product(name: "MeshTransport", package: "Mesh"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Benchmarks/MeshBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
