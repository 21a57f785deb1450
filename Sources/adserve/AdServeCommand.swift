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
            EmbedCommand.self, ANNBenchCommand.self, UserBenchCommand.self, ReportCommand.self,
        ]
    )

    /// As ArgumentParser's own, except that `serve` also takes its settings from a config file
    /// and the environment (`ServeCommand.settings`), folded in before the command line, and
    /// that bad input ends with one line.
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
            // Help and version are printed as ArgumentParser prints them; any other error ends
            // with one line naming the problem (no usage text) and a non-zero status.
            let code = exitCode(for: error)
            guard code != .success else { exit(withError: error) }
            let message = message(for: error).split(separator: "\n").first.map(String.init) ?? "\(error)"
            FileHandle.standardError.write(Data("adserve: \(message)\n".utf8))
            exit(withError: ExitCode(code.rawValue))
        }
    }
}
