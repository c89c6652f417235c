import ArgumentParser

/// `mesh`: the command-line face of Mesh.
@main
struct MeshCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesh",
        abstract: "Journaled, authenticated server-to-server messaging (Diarkis-style mesh) with SQLite audit.",
        subcommands: [DemoCommand.self, BenchCommand.self]
    )
}
