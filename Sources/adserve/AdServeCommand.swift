import ArgumentParser
import Domain
import Foundation

/// `adserve`: argument parsing and wiring only; every behaviour lives in the library modules.
@main
struct AdServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "adserve",
        abstract: "Ad serving for a social photo/video feed: decisions, events, billing, reports.",
        subcommands: [
            ServeCommand.self, SimulateCommand.self, BenchCommand.self, CTRBenchCommand.self, TrainCommand.self, EvalCommand.self, ModelsCommand.self,
            EmbedCommand.self, ANNBenchCommand.self, ReportCommand.self,
        ]
    )

    /// As ArgumentParser's own, except that `serve` also takes its settings from a config file
    /// and the environment (`ServeCommand.settings`), folded in before the command line.
    static func main() async {
        do {
            var arguments = Array(CommandLine.arguments.dropFirst())
            if arguments.first == "serve" {
                arguments = ["serve"] + (try ServeCommand.settings(Array(arguments.dropFirst()))).arguments
            }
            var command = try parseAsRoot(arguments)
            if var command = command as? any AsyncParsableCommand {
                try await command.run()
            } else {
                try command.run()
            }
        } catch {
            exit(withError: error)
        }
    }
}
