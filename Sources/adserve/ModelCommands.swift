import ArgumentParser
import Domain
import Foundation
import Models
import Serving
import Training

/// Options shared by `train` and `eval`: where the log is, how it is joined and split.
struct LogOptions: ParsableArguments {
    @Option(help: "Serve log, JSON lines: a server's --serve-log, or `adserve simulate --out`'s serve-log.jsonl.") var logs: String
    @Option(help: "Model repository directory.") var models = "adserve-models"
    @Option(help: "What to predict: click, conversion (per click) or hide (per impression: hides, hidden advertisers and \"not relevant\").") var target = "click"
    @Option(help: "The latest part of the log held out for evaluation (time-ordered split): a duration such as 90s, 15m, 2h or 7d.")
    var holdout = "24h"
    @Option(help: "The same as --holdout: whole hours, or a duration with its unit.") var holdoutHours: String?
    @Option(help: "Click attribution window after the impression: a duration (90s, 15m, 1h) or seconds.") var clickWindow = "1h"
    @Option(help: "Conversion attribution window after the click: a duration (1h, 7d) or seconds.") var conversionWindow = "7d"
    @Option(help: "Threshold for precision, recall, F1 and accuracy.") var threshold = 0.05
    @Option(help: "k of NDCG@k over each decision's ads.") var ndcgK = 3
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard PredictionTarget(rawValue: target) != nil else { throw ValidationError("--target must be click, conversion or hide") }
        _ = try holdoutMilliseconds()
        _ = try windows()
        guard threshold > 0, threshold < 1 else { throw ValidationError("--threshold must be between 0 and 1") }
        guard ndcgK > 0 else { throw ValidationError("--ndcg-k must be positive") }
    }

    var predictionTarget: PredictionTarget { PredictionTarget(rawValue: target) ?? .click }

    func holdoutMilliseconds() throws(AdServeError) -> Int64 {
        if let holdoutHours {
            if let hours = Int64(holdoutHours), (1...1_000_000).contains(hours) { return hours * Timestamp.millisecondsPerHour }
            return try DurationText.parse(holdoutHours, option: "holdout-hours")
        }
        return try DurationText.parse(holdout, option: "holdout")
    }

    func windows() throws(AdServeError) -> AttributionWindows {
        AttributionWindows(
            clickMilliseconds: try DurationText.parse(clickWindow, option: "click-window"),
            conversionMilliseconds: try DurationText.parse(conversionWindow, option: "conversion-window"))
    }

    /// The log replayed through the attribution join and split in time.
    func joined() throws -> (split: TimeSplit, summary: ServeLog.Summary) {
        let log = try ServeLog.read(path: logs)
        let (examples, summary) = log.joined(target: predictionTarget, windows: try windows())
        return (try TimeSplit(examples, holdoutMilliseconds: try holdoutMilliseconds(), summary: summary), summary)
    }

    var holdoutText: String { DurationText.format(milliseconds: (try? holdoutMilliseconds()) ?? 0) }

    func row(_ name: String, version: Int?, predictions: [Double], heldOut: [JoinedExample]) -> EvaluationRow {
        EvaluationRow(name: name, version: version, predictions: predictions, examples: heldOut, threshold: threshold, ndcgK: ndcgK)
    }
}

func printJSON(_ value: some Encodable) throws {
    print(try JSONFormat.string(value, pretty: true))
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Join a serve log with its events, train a click, conversion or hide model, evaluate it on the latest part, store it.",
        discussion: """
            The new version is judged on the held-out part against the promoted model, or where none is promoted against \
            the rule-based estimate; --promote promotes it only if it passes the gate (NE not worse, calibration within ±5% \
            or no worse than what it is compared with).
            """
    )

    @OptionGroup var options: LogOptions
    @Option(help: "Model kind: \(ModelKinds.known.joined(separator: ", ")).") var kind = FTRLProximal.kind
    @Option(help: "Hashed feature space: 2^bits buckets.") var bits = 20
    @Option(help: "Passes over the training data (with --tune, the most passes tried; at least 2 are).") var epochs = 1
    @Flag(inversion: .prefixedNo, help: "ftrl_lr: choose α, L1 and the passes by log loss on the latest fifth of the training data (without it: --alpha, --l1, --l2, --epochs as given).")
    var tune = true
    @Option(help: "Keep each negative with this probability (negative downsampling).") var negativeKeepRate = 1.0
    @Flag(help: "With downsampling, weight kept negatives by 1/rate instead of recalibrating.") var importanceWeighting = false
    @Option(help: "Calibration layer, fitted on the latest --calibration-window of the training data (at most a third of it): platt, isotonic or none.")
    var calibration = "platt"
    @Option(help: "The latest part of the training data that fits the calibration layer: a duration (24h, 90m).") var calibrationWindow = "24h"
    @Flag(help: "Promote the new version if it passes the gate.") var promote = false
    @Option(help: "FTRL α (learning rate scale; with --tune, the setting the search compares with).") var alpha = FTRLProximal.Parameters().alpha
    @Option(help: "FTRL L1.") var l1 = FTRLProximal.Parameters().l1
    @Option(help: "FTRL L2.") var l2 = FTRLProximal.Parameters().l2
    @Option(help: "The features the model reads: full, compact (no ids, words, interests or crosses), or choose (ftrl_lr with --tune: search both; compact only if it beats full by one standard error on the validation examples).")
    var featureSet = "full"
    @OptionGroup var tower: TwoTowerOptions
    @Option(help: "With --target click: K the two-tower model is judged at — it is promoted if its recall@K of the held-out period's clicked ads beats the most-clicked ads' — by default the K a server's candidate stage searches (serve --candidates).")
    var candidates = ServingConfiguration().candidateCount

    func validate() throws {
        guard (1...100_000).contains(candidates) else { throw ValidationError("--candidates must be between 1 and 100000") }
        guard ModelKinds.known.contains(kind) else { throw ValidationError("--kind must be one of \(ModelKinds.known.joined(separator: ", "))") }
        guard (10...26).contains(bits) else { throw ValidationError("--bits must be between 10 and 26") }
        guard (1...20).contains(epochs) else { throw ValidationError("--epochs must be between 1 and 20") }
        guard negativeKeepRate > 0, negativeKeepRate <= 1 else { throw ValidationError("--negative-keep-rate must be in (0, 1]") }
        guard CalibrationMethod(rawValue: calibration) != nil else { throw ValidationError("--calibration must be platt, isotonic or none") }
        _ = try DurationText.parse(calibrationWindow, option: "calibration-window")
        guard featureSet == "choose" || ClickFeatures.FeatureSet(rawValue: featureSet) != nil else {
            throw ValidationError("--feature-set must be full, compact or choose")
        }
    }

    struct Output: Codable {
        var version: Int
        var kind: String
        var target: String
        var trainingExamples: Int
        var log: ServeLog.Summary
        var models: [EvaluationRow]
        var comparedWith: String
        var promoted: Bool
        var gate: [String]
        /// What the hyperparameter search chose (ftrl_lr with --tune).
        var hyperparameters: FTRLSearch.Choice?
        /// The features the model reads, and with --feature-set choose each set's validation log loss.
        var featureSet: String
        var featureSets: [Trainer.FeatureSetScore]
        /// The two-tower candidate model trained beside a click model.
        var candidates: CandidateModelMeta?
        var candidatesPromoted: Bool?
    }

    func run() throws {
        let progress = Progress()
        progress.step("reading and joining \(options.logs)")
        let (split, summary) = try options.joined()
        progress.step("\(split.train.count) training and \(split.heldOut.count) held-out examples; training \(kind)" + (tune ? ", choosing its hyperparameters" : ""))
        var configuration = TrainingConfiguration()
        configuration.kind = kind
        configuration.bits = bits
        configuration.epochs = epochs
        configuration.tune = tune
        configuration.negativeKeepRate = negativeKeepRate
        configuration.importanceWeighting = importanceWeighting
        configuration.calibration = CalibrationMethod(rawValue: calibration) ?? .platt
        configuration.calibrationWindowMilliseconds = try DurationText.parse(calibrationWindow, option: "calibration-window")
        configuration.ftrl.alpha = alpha
        configuration.ftrl.l1 = l1
        configuration.ftrl.l2 = l2
        configuration.featureSet = ClickFeatures.FeatureSet(rawValue: featureSet) ?? .full
        configuration.chooseFeatureSet = featureSet == "choose"
        let target = options.predictionTarget
        let repository = try ModelRepository(directory: options.models)
        let serving = try repository.promoted(target).map { try repository.load($0) }
        let outcome = try Retraining(configuration: configuration).retrain(
            train: split.train, heldOut: split.heldOut, heldOutName: "last \(options.holdoutText) of \(options.logs)", target: target,
            serving: serving, now: SystemClock().now())
        let meta = try repository.save(outcome.candidate.model, meta: outcome.candidate.meta)
        progress.step("saved v\(meta.version)")
        let promoted = promote && outcome.adopt
        if promoted { try repository.promote(meta.version) }
        // The candidate stage retrains with the click model: same examples, same kind of gate.
        var candidates: (meta: CandidateModelMeta, promoted: Bool, summary: String)?
        if target == .click {
            progress.step("training the candidate stage's two-tower model")
            let serving = try repository.promotedCandidateModel.map { try repository.loadCandidateModel($0) }
            let retrained = CandidateRetraining(parameters: try tower.parameters(), k: self.candidates).retrain(
                train: split.train, heldOut: split.heldOut, heldOutName: "last \(options.holdoutText) of \(options.logs)", serving: serving, now: SystemClock().now())
            let saved = try repository.saveCandidateModel(retrained.model, meta: retrained.meta)
            if promote && retrained.adopt { try repository.promoteCandidateModel(saved.version) }
            candidates = (saved, promote && retrained.adopt, retrained.summary)
        }

        let heldOut = split.heldOut
        // The predictions the flow already made: the candidate's, and those of what it was compared with.
        var rows = [options.row("v\(meta.version) \(kind)", version: meta.version, predictions: outcome.candidate.heldOutPredictions, heldOut: heldOut)]
        if let serving {
            rows.append(options.row("serving v\(serving.meta.version)", version: serving.meta.version, predictions: outcome.comparedPredictions, heldOut: heldOut))
        }
        let rulePredictions = serving == nil ? outcome.comparedPredictions : RuleBasedEstimate.predictions(target, for: heldOut)
        rows.append(options.row("rule-based", version: nil, predictions: rulePredictions, heldOut: heldOut))
        if options.json {
            try printJSON(Output(
                version: meta.version, kind: kind, target: target.rawValue, trainingExamples: meta.trainingExamples, log: summary, models: rows,
                comparedWith: outcome.comparedWith, promoted: promoted, gate: outcome.verdict.reasons, hyperparameters: outcome.candidate.search,
                featureSet: (meta.featureSet ?? .full).rawValue, featureSets: outcome.candidate.featureSets,
                candidates: candidates?.meta,
                candidatesPromoted: candidates?.promoted))
        } else {
            print("logs: \(summary.impressions) impressions, \(summary.malformed) malformed lines, \(summary.unattributed) events outside their window, \(summary.pending) still inside a window at \(summary.asOf.iso8601)")
            print("trained v\(meta.version) (\(kind), \(target.rawValue)) on \(meta.trainingExamples) examples, calibrator \(meta.calibrator.kind); held-out: \(heldOut.count) examples, the last \(options.holdoutText)")
            if let search = outcome.candidate.search { print("hyperparameters: \(search.summary)") }
            print("features: " + (outcome.candidate.featureSetSummary ?? "\((meta.featureSet ?? .full).rawValue) (as given)"))
            print(EvaluationRow.table(rows, ndcgK: options.ndcgK, threshold: options.threshold))
            let verdict = outcome.adopt ? "passes" : "fails"
            print("gate, against the \(outcome.comparedWith): \(verdict): " + outcome.verdict.reasons.joined(separator: "; ")
                + (promoted ? " — promoted" : promote ? " — not promoted" : " — not promoted (no --promote)"))
            if let candidates {
                print("")
                print(candidates.meta.recall.table)
                print("candidate model c\(candidates.meta.version): \(candidates.summary)"
                    + (candidates.promoted ? " — promoted" : promote ? " — not promoted" : " — not promoted (no --promote)"))
            }
        }
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate stored models and the rule-based control on the latest part of a serve log."
    )

    @OptionGroup var options: LogOptions
    @Option(help: "Versions to evaluate (comma-separated); default: the promoted one.") var versions: String?
    @Option(help: "Stored two-tower versions to measure beside the one trained here (comma-separated); default: the promoted one.")
    var candidateVersions: String?
    @OptionGroup var tower: TwoTowerOptions

    func run() throws {
        let (split, _) = try options.joined()
        let repository = try ModelRepository(directory: options.models)
        let target = options.predictionTarget
        func numbers(_ list: String?, _ flag: String) throws -> [Int] {
            try (list ?? "").split(separator: ",").map { item in
                guard let v = Int(item) else { throw ValidationError("\(flag): '\(item)' is not a version number") }
                return v
            }
        }
        var wanted = try numbers(versions, "--versions")
        if wanted.isEmpty, let promoted = repository.promoted(target) { wanted = [promoted] }
        let heldOut = split.heldOut
        var rows: [EvaluationRow] = []
        for version in wanted {
            let predictor = try repository.load(version)
            guard predictor.meta.target == target else { throw ValidationError("model \(version) predicts \(predictor.meta.target.rawValue), not \(target.rawValue)") }
            rows.append(options.row("v\(version) \(predictor.meta.kind)", version: version, predictions: predictor.predictions(for: heldOut), heldOut: heldOut))
        }
        rows.append(options.row("rule-based", version: nil, predictions: RuleBasedEstimate.predictions(target, for: heldOut), heldOut: heldOut))
        // The candidate stage is judged on clicks: a two-tower model trained on the earlier clicks.
        var candidates: CandidateRecall?
        if target == .click {
            var stored = try numbers(candidateVersions, "--candidate-versions")
            if stored.isEmpty, let promoted = repository.promotedCandidateModel { stored = [promoted] }
            let models = try stored.map { (name: "two-tower c\($0)", model: try repository.loadCandidateModel($0)) }
            var model = TwoTowerModel(parameters: try tower.parameters())
            model.train(CandidateRecall.clicks(split.train, model: model))
            candidates = CandidateRecall(model: model, train: split.train, heldOut: heldOut, stored: models)
        }
        if options.json {
            struct Output: Encodable {
                var models: [EvaluationRow]
                var candidates: CandidateRecall?
            }
            try printJSON(Output(models: rows, candidates: candidates))
        } else {
            print("held-out: \(heldOut.count) \(target.rawValue) examples, the last \(options.holdoutText); NE against the held-out base rate")
            print(EvaluationRow.table(rows, ndcgK: options.ndcgK, threshold: options.threshold))
            if let candidates {
                print("")
                print(candidates.table)
            }
        }
    }
}

struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List, promote and roll back stored models.",
        subcommands: [List.self, Promote.self, Rollback.self]
    )

    struct List: ParsableCommand {
        @Option(help: "Model repository directory.") var models = "adserve-models"
        @Flag(help: "The candidate stage's two-tower models instead of the ranker's.") var candidates = false
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let repository = try ModelRepository(directory: models)
            if candidates {
                let all = repository.candidateModels()
                if json { return try printJSON(all) }
                return print(repository.candidateTable(all))
            }
            let all = try repository.list()
            if json { return try printJSON(all) }
            print(repository.table(all))
        }
    }

    struct Promote: ParsableCommand {
        @Argument(help: "The version to serve.") var version: Int
        @Option(help: "Model repository directory.") var models = "adserve-models"
        @Flag(help: "A two-tower model of the candidate stage (its own versions).") var candidates = false

        func run() throws {
            let repository = try ModelRepository(directory: models)
            if candidates {
                try repository.promoteCandidateModel(version)
                return print("promoted two-tower v\(version); serving nodes build its index and switch to it on their next reload")
            }
            try repository.promote(version)
            print("promoted v\(version); serving nodes load it on their next reload")
        }
    }

    struct Rollback: ParsableCommand {
        @Option(help: "Model repository directory.") var models = "adserve-models"
        @Option(help: "click, conversion, hide, or candidates (the two-tower model).") var target = "click"

        func run() throws {
            let repository = try ModelRepository(directory: models)
            if target == "candidates" {
                let version = try repository.rollbackCandidateModel()
                return print("rolled back: the candidate stage serves two-tower v\(version)")
            }
            guard let target = PredictionTarget(rawValue: target) else { throw ValidationError("--target must be click, conversion, hide or candidates") }
            let version = try repository.rollback(target)
            print("rolled back: \(target.rawValue) serves v\(version)")
        }
    }
}

/// The two-tower candidate model's training settings.
struct TwoTowerOptions: ParsableArguments {
    @Option(help: "Two-tower: floats per user and ad vector.") var towerDimension = TwoTowerModel.Parameters().dimension
    @Option(help: "Two-tower: passes over the clicks.") var towerEpochs = TwoTowerModel.Parameters().epochs
    @Option(help: "Two-tower: Adagrad learning rate.") var towerLearningRate = Double(TwoTowerModel.Parameters().learningRate)
    @Option(help: "Two-tower: L2 penalty on the weights a step touches.") var towerL2 = Double(TwoTowerModel.Parameters().l2)
    @Option(help: "Two-tower: clicks per batch (each click's negatives are the batch's other ads).") var towerBatch = TwoTowerModel.Parameters().batchSize

    func parameters() throws -> TwoTowerModel.Parameters {
        guard (2...512).contains(towerDimension) else { throw ValidationError("--tower-dimension must be between 2 and 512") }
        guard (1...1000).contains(towerEpochs) else { throw ValidationError("--tower-epochs must be between 1 and 1000") }
        guard towerLearningRate > 0, towerLearningRate.isFinite else { throw ValidationError("--tower-learning-rate must be positive") }
        guard towerL2 >= 0, towerL2.isFinite else { throw ValidationError("--tower-l2 must not be negative") }
        guard (2...65_536).contains(towerBatch) else { throw ValidationError("--tower-batch must be between 2 and 65536") }
        var p = TwoTowerModel.Parameters()
        p.dimension = towerDimension
        p.epochs = towerEpochs
        p.learningRate = Float(towerLearningRate)
        p.l2 = Float(towerL2)
        p.batchSize = towerBatch
        return p
    }
}
