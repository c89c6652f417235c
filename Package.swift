// swift-tools-version: 6.1
//
// Mesh: journaled, authenticated server-to-server messaging over UDP, in the style of the Diarkis mesh.
// Every message is committed to the node's SQLite journal (WAL) before it moves.

import PackageDescription

/// Settings every Swift target shares: Swift 6 language mode (strict concurrency) plus the upcoming features
/// the model codebases (Hummingbird, swift-metrics) turn on.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Mesh",
    platforms: [.macOS(.v15)],
    products: [
        .library(name: "MeshCore", targets: ["MeshCore"]),
        .library(name: "MeshJournal", targets: ["MeshJournal"]),
        .library(name: "MeshTransport", targets: ["MeshTransport"]),
        .library(name: "MeshFaultProxy", targets: ["MeshFaultProxy"]),
        .library(name: "Mesh", targets: ["Mesh"]),
        .executable(name: "mesh", targets: ["mesh"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/x-sheep/swift-property-based.git", from: "2.0.1"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        // The system libsqlite3 (Debian: libsqlite3-dev), plus a header of shims for macros and variadics.
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // An SQLite VFS over the default one that writes a transaction's WAL frames in one system call (C, against
        // the system SQLite). The journal's write connection opens through it.
        .target(
            name: "CMeshWALBatch",
            dependencies: ["CSQLite"]
        ),
        // Schema migrations: the numbered .sql files at the top level, embedded in code (no bundle at run time).
        .target(
            name: "MeshMigrations",
            path: "Migrations",
            exclude: ["README.md"],
            resources: [
                .embedInCode("0001_journal_v1.sql"),
                .embedInCode("0002_narrow_state.sql"),
                .embedInCode("0003_fewer_pages_per_commit.sql"),
                .embedInCode("0004_error_responses.sql"),
                .embedInCode("0005_open_set_without_in.sql"),
                .embedInCode("0006_answered_requests.sql"),
                .embedInCode("0007_shared_data.sql"),
                .embedInCode("0008_time_by_row_order.sql"),
                .embedInCode("0009_compact_invocations.sql"),
                .embedInCode("0010_pending_by_sequence.sql"),
                .embedInCode("0011_pending_without_state_row.sql"),
                .embedInCode("0012_received_without_state_row.sql"),
                .embedInCode("0013_persisted_floors.sql"),
                .embedInCode("0014_reserved_sequences.sql")
            ],
            swiftSettings: swiftSettings
        ),
        // Crash-test failpoints (inert unless MESH_FAILPOINT names one) and latency probes (compiled in only with
        // -DMESH_PROBES). No dependencies.
        .target(
            name: "MeshFailpoints",
            swiftSettings: swiftSettings
        ),
        // Values (MeshData, DataCapsule) and their binary and JSON codecs. No I/O.
        .target(
            name: "MeshCore",
            swiftSettings: swiftSettings
        ),
        // The SQLite journal: connection layer, migrator, group-commit writer, record API.
        .target(
            name: "MeshJournal",
            dependencies: [
                "CSQLite",
                "CMeshWALBatch",
                "MeshMigrations",
                "MeshCore",
                "MeshFailpoints",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // Reliable, authenticated UDP on SwiftNIO: handshake, acks, retransmission, ordering, fragmentation.
        .target(
            name: "MeshTransport",
            dependencies: [
                "MeshFailpoints",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // A UDP proxy injecting seeded loss, duplication, reordering, delay, corruption and partitions.
        .target(
            name: "MeshFaultProxy",
            dependencies: [
                "MeshCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        // The node: journal-first messaging with the Diarkis mesh API, dispatcher, resume.
        .target(
            name: "Mesh",
            dependencies: [
                "MeshCore",
                "MeshJournal",
                "MeshTransport",
                "MeshFailpoints",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // Benchmark runners and their same-run ceilings (used by `mesh bench`). Not a product.
        .target(
            name: "MeshBench",
            dependencies: [
                "CSQLite",
                "Mesh",
                "MeshCore",
                "MeshJournal",
                "MeshTransport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // The `mesh` command-line tool. Thin: its logic lives in the libraries.
        .executableTarget(
            name: "mesh",
            dependencies: [
                "Mesh",
                "MeshCore",
                "MeshJournal",
                "MeshTransport",
                "MeshFaultProxy",
                "MeshFailpoints",
                "MeshBench",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            path: "Tools/mesh",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshCoreTests",
            dependencies: [
                "MeshCore",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshJournalTests",
            dependencies: [
                "MeshJournal",
                "MeshBench",
                "MeshMigrations",
                "MeshCore",
                "CSQLite",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshTests",
            dependencies: [
                "Mesh",
                "MeshCore",
                "MeshJournal",
                "MeshTransport",
                "MeshFaultProxy",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshCLITests",
            dependencies: [
                "mesh",
                "Mesh",
                "MeshBench",
                "MeshCore",
                "MeshJournal",
                "MeshMigrations",
                "MeshTransport",
                "MeshFailpoints",
                "MeshFaultProxy",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The README's Swift blocks, compiled (each kept verbatim in a file; a test checks them against README.md).
        .testTarget(
            name: "MeshReadmeTests",
            dependencies: [
                "Mesh",
                "MeshCore",
                "MeshJournal",
                "MeshTransport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "MeshTransportTests",
            dependencies: [
                "MeshCore",
                "MeshTransport",
                "MeshFaultProxy",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "MetricsTestKit", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
