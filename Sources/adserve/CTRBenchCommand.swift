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
    @Option(help: "Passes over the training data.") var epochs = 1
    @Option(help: "Hashed feature space: 2^bits buckets.") var bits = 20
    @Flag(help: "Print JSON.") var json = false

    struct Row: Codable {
        var name: String
        var auc: Double
        var logloss: Double
        var ne: Double
        var calibration: Double
        var ece: Double
        var train_examples_per_s: Double
        var predict_per_s: Double
        var train_rows: Int
        var test_rows: Int
        var malformed_rows: Int
    }

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
        let hasher = FeatureHasher(bits: bits)
        var trainSet = try load(train, field: "train", hasher: hasher)
        let testSet: LabeledExamples
        if let test {
            testSet = try load(test, field: "test", hasher: hasher)
        } else {
            let split = trainSet.split(at: trainRows)
            trainSet = split.head
            testSet = split.tail
            guard !testSet.isEmpty else {
                throw AdServeError.invalid("train", "\(train): no rows left to test on after --train-rows \(trainRows) (\(trainSet.count) readable rows)")
            }
        }

        var rows: [Row] = []
        for kind in modelList {
            switch kind {
            case FactorizationMachine.kind:
                var parameters = FactorizationMachine.Parameters()
                parameters.factors = factors
                rows.append(measure({ FactorizationMachine(hasher: hasher, parameters: parameters) }, train: trainSet, test: testSet))
            default:
                rows.append(measure({ FTRLProximal(hasher: hasher) }, train: trainSet, test: testSet))
            }
        }

        if json {
            print(try JSONFormat.string(["models": rows]))
        } else {
            print("train \(trainSet.count) rows, test \(testSet.count) rows, malformed \(trainSet.malformed + testSet.malformed)")
            for row in rows {
                print(String(format: "%-10@ AUC %.4f  logloss %.4f  NE %.4f  calibration %.3f  ECE %.4f  train %.0f ex/s  predict %.0f /s",
                             row.name, row.auc, row.logloss, row.ne, row.calibration, row.ece, row.train_examples_per_s, row.predict_per_s))
            }
        }
    }

    /// Reads one file in the chosen layout; a file with no readable row is an error that names it.
    func load(_ path: String, field: String, hasher: FeatureHasher) throws -> LabeledExamples {
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let examples: LabeledExamples
        switch format {
        case "csv":
            let reader = CSVReader(hasher: hasher, labelColumn: label, numericColumns: numericColumns)
            do throws(AdServeError) {
                examples = try reader.parse(text)
            } catch {
                throw AdServeError.invalid(error.field ?? field, "\(path): \(error.message)")
            }
        default:
            examples = CriteoReader(hasher: hasher).parse(text)
        }
        guard !examples.isEmpty else {
            throw AdServeError.invalid(field, "\(path): no readable rows (\(examples.malformed) malformed)")
        }
        return examples
    }

    /// Trains a fresh model on `train` for `epochs` passes and evaluates it on `test`. The model is
    /// built before the clock starts, so the timing is training alone.
    func measure<Model: ClickModel>(_ makeModel: () -> Model, train: LabeledExamples, test: LabeledExamples) -> Row {
        var model = makeModel()
        let trainStart = ContinuousClock.now
        for _ in 0..<epochs {
            for (x, y) in zip(train.features, train.labels) { model.update(x, label: y, weight: 1) }
        }
        let trainSeconds = (ContinuousClock.now - trainStart).inSeconds
        let predictStart = ContinuousClock.now
        let predictions = test.features.map { model.predict($0) }
        let predictSeconds = (ContinuousClock.now - predictStart).inSeconds
        let metrics = OfflineMetrics(predictions: predictions, labels: test.labels, trainingBaseRate: train.baseRate)
        return Row(
            name: Model.kind, auc: metrics.auc, logloss: metrics.logloss, ne: metrics.ne, calibration: metrics.calibration,
            ece: metrics.ece,
            train_examples_per_s: Double(train.count * epochs) / max(trainSeconds, 1e-9),
            predict_per_s: Double(test.count) / max(predictSeconds, 1e-9),
            train_rows: train.count, test_rows: test.count, malformed_rows: train.malformed + test.malformed)
    }
}
