import ArgumentParser
import Foundation
import Logging
import MeshJournal

/// `mesh`: the command-line face of Mesh.
@main
struct MeshCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mesh",
        abstract: "Journaled, authenticated server-to-server messaging (Diarkis-style mesh) with SQLite audit.",
        subcommands: [DemoCommand.self, NodeCommand.self, SendCommand.self, ReplayCommand.self, ClusterCommand.self, KeygenCommand.self, JournalCommand.self, ChaosProxyCommand.self, BenchCommand.self]
    )

    /// Logs go to stderr (stdout carries results, e.g. `--json`). Level from `MESH_LOG_LEVEL` (default
    /// `warning`): trace, debug, info, notice, warning, error, critical.
    static func main() async {
        MallocTuning.apply()
        let level = ProcessInfo.processInfo.environment["MESH_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let error as SQLiteError where error.primaryCode == SQLiteError.corrupt {
            // Met while reading: the journal is damaged where the up-front quick check did not reach.
            exit(withError: CLIError("a journal is corrupt (\(error.message)): `mesh journal verify FILE` lists the damage"))
        } catch {
            exit(withError: error)
        }
    }
}
