import ArgumentParser
import Domain
import Foundation
import Models

struct CTRBenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ctr-bench",
        abstract: "Train click models on a log file and print AUC, log loss, NE, calibration and speed.",
        discussion: "Today: FTRL-Proximal logistic regression on the Criteo layout. With one file, --train-rows splits it in time order."
    )

    @Option(help: "Training file.") var train: String
    @Option(help: "Test file; without it, the rows after --train-rows of the training file.") var test: String?
    @Option(help: "With a single file: rows used for training, the rest for testing.") var trainRows = 8_000
    @Option(help: "File layout (criteo).") var format = "criteo"
    @Option(help: "Passes over the training data.") var epochs = 1
    @Option(help: "Hashed feature space: 2^bits buckets.") var bits = 20
    @Flag(help: "Print JSON.") var json = false

    struct Row: Codable {
        var name: String
        var auc: Double
        var logloss: Double
        var ne: Double
        var calibration: Double
        var train_examples_per_s: Double
        var predict_per_s: Double
        var train_rows: Int
        var test_rows: Int
        var malformed_rows: Int
    }

    func validate() throws {
        guard format == "criteo" else { throw ValidationError("--format: only criteo is supported so far") }
        guard (1...100).contains(epochs) else { throw ValidationError("--epochs must be between 1 and 100") }
        guard (10...26).contains(bits) else { throw ValidationError("--bits must be between 10 and 26") }
    }

    func run() async throws {
        let hasher = FeatureHasher(bits: bits)
        let reader = CriteoReader(hasher: hasher)
        var trainSet = reader.parse(try String(contentsOfFile: train, encoding: .utf8))
        var testSet: CriteoReader.Parsed
        if let test {
            testSet = reader.parse(try String(contentsOfFile: test, encoding: .utf8))
        } else {
            let cut = min(trainRows, trainSet.labels.count)
            testSet = CriteoReader.Parsed(features: Array(trainSet.features[cut...]), labels: Array(trainSet.labels[cut...]), malformed: 0)
            trainSet.features.removeSubrange(cut...)
            trainSet.labels.removeSubrange(cut...)
        }
        guard !trainSet.labels.isEmpty, !testSet.labels.isEmpty else {
            throw ValidationError("no readable rows to train or test on (malformed: \(trainSet.malformed + testSet.malformed))")
        }

        var model = FTRLProximal(hasher: hasher)
        let trainStart = ContinuousClock.now
        for _ in 0..<epochs {
            for (x, y) in zip(trainSet.features, trainSet.labels) { model.update(x, label: y) }
        }
        let trainSeconds = (ContinuousClock.now - trainStart).inSeconds
        let predictStart = ContinuousClock.now
        let predictions = testSet.features.map { model.predict($0) }
        let predictSeconds = (ContinuousClock.now - predictStart).inSeconds
        let baseRate = Double(trainSet.labels.filter { $0 }.count) / Double(trainSet.labels.count)
        let metrics = OfflineMetrics(predictions: predictions, labels: testSet.labels, trainingBaseRate: baseRate)
        let row = Row(
            name: "ftrl_lr", auc: metrics.auc, logloss: metrics.logloss, ne: metrics.ne, calibration: metrics.calibration,
            train_examples_per_s: Double(trainSet.labels.count * epochs) / max(trainSeconds, 1e-9),
            predict_per_s: Double(testSet.labels.count) / max(predictSeconds, 1e-9),
            train_rows: trainSet.labels.count, test_rows: testSet.labels.count, malformed_rows: trainSet.malformed + testSet.malformed)
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(["models": [row]]), as: UTF8.self))
        } else {
            print("train \(row.train_rows) rows, test \(row.test_rows) rows, malformed \(row.malformed_rows)")
            print(String(format: "%-10@ AUC %.4f  logloss %.4f  NE %.4f  calibration %.3f  train %.0f ex/s  predict %.0f /s",
                         row.name, row.auc, row.logloss, row.ne, row.calibration, row.train_examples_per_s, row.predict_per_s))
        }
    }
}
