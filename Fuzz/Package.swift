// swift-tools-version: 6.1
//
// libFuzzer targets for Mesh, built by Tools/fuzz.sh with `swift build --sanitize=fuzzer --sanitize=address`.
// A package of its own: its executables have no main (libFuzzer provides it), so they cannot be part of the
// main package's ordinary build. Each target calls an entry point that checks its properties with preconditions.

import PackageDescription

let package = Package(
    name: "MeshFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [.package(name: "Mesh", path: "..")],
    targets: [
        .executableTarget(name: "FuzzCodec", dependencies: [.product(name: "MeshCore", package: "Mesh")]),
        .executableTarget(name: "FuzzDatagram", dependencies: [.product(name: "MeshTransport", package: "Mesh")]),
        .executableTarget(name: "FuzzAuthenticatedBody", dependencies: [.product(name: "MeshTransport", package: "Mesh")]),
        .executableTarget(name: "FuzzFragments", dependencies: [.product(name: "MeshTransport", package: "Mesh")]),
    ],
    swiftLanguageModes: [.v6]
)
