import ArgumentParser

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
}
