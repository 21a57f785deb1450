import Domain
import Foundation
import Models

/// `adserve ctr-bench`: each model kind trained on the same rows of a public click log and
/// evaluated on the same test rows, with its training and prediction speed.
public struct CTRBenchmark: Sendable {
    /// How a log file is laid out: Criteo's (tab separated: label, 13 integer and 26
    /// categorical columns) or CSV with a header (`label` names the label column, `numeric` the
    /// numeric columns; every other column is categorical).
    public enum Format: Sendable {
        case criteo
        case csv(label: String, numeric: Set<String>)
    }

    public var format: Format
    public var bits = 20
    public var epochs = 1
    /// Latent factors of the factorization machine.
    public var factors = 8
    /// ftrl_lr: choose α, L1 and the passes (up to max(2, `epochs`)) on the latest fifth of the
    /// training rows (`FTRLSearch`) instead of the defaults and `epochs`.
    public var tune = true

    public init(format: Format) { self.format = format }

    /// One model kind's result.
    public struct Row: Sendable, Codable {
        public var name: String
        public var auc: Double
        public var logloss: Double
        public var ne: Double
        public var calibration: Double
        public var ece: Double
        public var train_examples_per_s: Double
        public var predict_per_s: Double
        public var train_rows: Int
        public var test_rows: Int
        public var malformed_rows: Int
        /// ftrl_lr with `tune`: what the search chose, and the seconds it took (not counted in
        /// `train_examples_per_s`, which times the final training alone).
        public var chosen: FTRLSearch.Choice?
        public var search_s: Double?
    }

    public var hasher: FeatureHasher { FeatureHasher(bits: bits) }

    /// Reads one file; a file with no readable row is an error that names it (`field` says
    /// which option gave it).
    public func load(_ path: String, field: String) throws(AdServeError) -> LabeledExamples {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw AdServeError.invalid(field, "\(path): cannot read it as UTF-8 text")
        }
        let examples: LabeledExamples
        switch format {
        case .csv(let label, let numeric):
            do throws(AdServeError) {
                examples = try CSVReader(hasher: hasher, labelColumn: label, numericColumns: numeric).parse(text)
            } catch {
                throw AdServeError.invalid(error.field ?? field, "\(path): \(error.message)")
            }
        case .criteo:
            examples = CriteoReader(hasher: hasher).parse(text)
        }
        guard !examples.isEmpty else { throw AdServeError.invalid(field, "\(path): no readable rows (\(examples.malformed) malformed)") }
        return examples
    }

    /// Trains a fresh model of `kind` on `train` and evaluates it on `test`.
    public func measure(_ kind: String, train: LabeledExamples, test: LabeledExamples) throws(AdServeError) -> Row {
        switch kind {
        case FactorizationMachine.kind:
            var parameters = FactorizationMachine.Parameters()
            parameters.factors = factors
            return measure({ FactorizationMachine(hasher: hasher, parameters: parameters) }, train: train, test: test, epochs: epochs)
        case FTRLProximal.kind:
            guard tune else { return measure({ FTRLProximal(hasher: hasher) }, train: train, test: test, epochs: epochs) }
            let start = ContinuousClock.now
            let choice = FTRLSearch(maxEpochs: max(2, epochs)).choose(features: train.features, labels: train.labels, hasher: hasher, baseEpochs: epochs)
            let seconds = (ContinuousClock.now - start).inSeconds
            var row = measure({ FTRLProximal(hasher: hasher, parameters: choice.parameters) }, train: train, test: test, epochs: choice.epochs)
            row.chosen = choice
            row.search_s = seconds
            return row
        default:
            throw AdServeError.invalid("models", "unknown model kind '\(kind)'; known: \(ModelKinds.known.joined(separator: ", "))")
        }
    }

    /// The model is built before the clock starts, so the timing is training alone.
    private func measure<Model: ClickModel>(_ makeModel: () -> Model, train: LabeledExamples, test: LabeledExamples, epochs: Int) -> Row {
        var model = makeModel()
        let trainStart = ContinuousClock.now
        for _ in 0..<epochs {
            for (x, y) in zip(train.features, train.labels) { model.update(x, label: y, weight: 1) }
        }
        let trainSeconds = (ContinuousClock.now - trainStart).inSeconds
        let predictStart = ContinuousClock.now
        let predictions = test.features.map { model.predict($0) }
        let predictSeconds = (ContinuousClock.now - predictStart).inSeconds
        let metrics = OfflineMetrics(predictions: predictions, labels: test.labels)
        return Row(
            name: Model.kind, auc: metrics.auc, logloss: metrics.logloss, ne: metrics.ne, calibration: metrics.calibration, ece: metrics.ece,
            train_examples_per_s: Double(train.count * epochs) / max(trainSeconds, 1e-9),
            predict_per_s: Double(test.count) / max(predictSeconds, 1e-9),
            train_rows: train.count, test_rows: test.count, malformed_rows: train.malformed + test.malformed, chosen: nil, search_s: nil)
    }

    /// The rows as a table for people.
    public static func table(_ rows: [Row]) -> String {
        var table = [["model", "AUC", "logloss", "NE", "calibration", "ECE", "train ex/s", "predict /s"]]
        for r in rows {
            table.append([
                r.name, TextTable.fixed(r.auc, 4), TextTable.fixed(r.logloss, 4), TextTable.fixed(r.ne, 4), TextTable.fixed(r.calibration, 3),
                TextTable.fixed(r.ece, 4), TextTable.fixed(r.train_examples_per_s, 0), TextTable.fixed(r.predict_per_s, 0),
            ])
        }
        return TextTable.render(table)
    }
}
