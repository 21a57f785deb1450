import ArgumentParser
import Domain
import Foundation
import Models
import Training

struct CTRBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctr-bench",
        abstract: "Train click models on a log file and print AUC, log loss, NE, calibration, ECE and speed.",
        discussion: """
            Trains each model kind on the same rows and evaluates it on the same test rows: ftrl_lr \
            (FTRL-Proximal logistic regression) and fm (a factorization machine). Layouts: criteo (tab \
            separated: label, 13 integer and 26 categorical columns) and csv (a header row; --label names \
            the label column, --numeric the numeric columns, every other column is categorical). With one \
            file, --train-rows splits it in time order.
            """
    )

    static let formats = ["criteo", "csv"]

    @Option(help: "Training file.") var train: String
    @Option(help: "Test file; without it, the rows after --train-rows of the training file.") var test: String?
    @Option(help: "With a single file: rows used for training, the rest for testing.") var trainRows = 8_000
    @Option(help: "File layout: criteo or csv.") var format = "criteo"
    @Option(help: "csv: the label column (0/1 or true/false).") var label = "label"
    @Option(help: "csv: comma-separated numeric columns, bucketed like Criteo's integers; every other column is categorical.")
    var numeric = ""
    @Option(help: "Model kinds to train, comma-separated (ftrl_lr, fm).") var models = "ftrl_lr,fm"
    @Option(help: "fm: latent factors per feature.") var factors = 8
    @Option(help: "Passes over the training data (ftrl_lr with --tune: the most passes tried; at least 2 are).") var epochs = 1
    @Flag(inversion: .prefixedNo, help: "ftrl_lr: choose α, L1 and the passes by log loss on the latest fifth of the training rows (without it: the defaults and --epochs).")
    var tune = true
    @Option(help: "Hashed feature space: 2^bits buckets.") var bits = 20
    @Flag(help: "Print JSON.") var json = false

    var numericColumns: Set<String> {
        Set(numeric.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty })
    }

    var modelList: [String] {
        models.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func validate() throws {
        guard Self.formats.contains(format) else {
            throw ValidationError("--format must be one of \(Self.formats.joined(separator: ", ")), not '\(format)'")
        }
        guard !label.isEmpty else { throw ValidationError("--label must name a column") }
        guard !modelList.isEmpty else { throw ValidationError("--models must name at least one model kind") }
        if let unknown = modelList.first(where: { !ModelKinds.known.contains($0) }) {
            throw ValidationError("unknown model kind '\(unknown)'; known: \(ModelKinds.known.joined(separator: ", "))")
        }
        guard (1...64).contains(factors) else { throw ValidationError("--factors must be between 1 and 64") }
        guard (1...100).contains(epochs) else { throw ValidationError("--epochs must be between 1 and 100") }
        guard (10...26).contains(bits) else { throw ValidationError("--bits must be between 10 and 26") }
    }

    func run() async throws {
        var bench = CTRBenchmark(format: format == "csv" ? .csv(label: label, numeric: numericColumns) : .criteo)
        bench.bits = bits
        bench.epochs = epochs
        bench.factors = factors
        bench.tune = tune
        var trainSet = try bench.load(train, field: "train")
        let testSet: LabeledExamples
        if let test {
            testSet = try bench.load(test, field: "test")
        } else {
            let split = trainSet.split(at: trainRows)
            trainSet = split.head
            testSet = split.tail
            guard !testSet.isEmpty else {
                throw AdServeError.invalid("train", "\(train): no rows left to test on after --train-rows \(trainRows) (\(trainSet.count) readable rows)")
            }
        }
        let rows = try modelList.map { kind throws(AdServeError) in try bench.measure(kind, train: trainSet, test: testSet) }
        if json {
            print(try JSONFormat.string(["models": rows]))
        } else {
            print("train \(trainSet.count) rows, test \(testSet.count) rows, malformed \(trainSet.malformed + testSet.malformed)")
            print(CTRBenchmark.table(rows))
            for row in rows {
                if let chosen = row.chosen { print("\(row.name): \(chosen.summary); search \(TextTable.fixed(row.search_s ?? 0, 1)) s") }
            }
            print("NE: log loss ÷ the entropy of the test rows' own click rate")
        }
    }
}
