import Domain
import Foundation
import Models

/// How a model is trained from joined examples.
public struct TrainingConfiguration: Sendable, Equatable {
    public var kind = FTRLProximal.kind
    public var bits = 20
    /// Passes over the training data; with `tune`, the most passes the search tries.
    public var epochs = 1
    /// FTRL: choose α, L1 and the passes on the latest training examples (`FTRLSearch`)
    /// instead of taking `ftrl` and `epochs` as given.
    public var tune = true
    /// Negative downsampling: keep each negative with this probability (1 = keep all).
    public var negativeKeepRate = 1.0
    /// With downsampling: weight kept negatives by 1 / keep-rate instead of recalibrating.
    public var importanceWeighting = false
    public var calibration = CalibrationMethod.platt
    /// The latest part of the training examples, held back to fit the calibrator (at most a
    /// third of the time span); 24 hours by default. A later period, not a random sample: examples of the same
    /// period share users, ads and sessions with the training data, so a calibrator fitted on
    /// them does not see how the model errs on a day it has not seen (measured on simulator
    /// logs: calibration 1.14 on the next day with a random 10%, 1.00 with the latest day).
    public var calibrationWindowMilliseconds = 24 * Timestamp.millisecondsPerHour
    /// After the calibrator is fitted, the model also learns from the held-back examples (one
    /// pass), so it is as fresh as the data; the calibrator stays.
    public var learnFromCalibrationData = false
    /// The features the model reads (`ClickFeatures.FeatureSet`).
    public var featureSet = ClickFeatures.FeatureSet.full
    /// FTRL with `tune`: search the other feature set too, and train with it if its chosen
    /// setting beats `featureSet`'s on the same validation examples by more than one standard
    /// error of the paired per-example difference. Off by default: on the simulator's worlds
    /// it moved nothing measurable (README, "Content and activity in the simulator").
    public var chooseFeatureSet = false
    public var seed: UInt64 = 7
    /// Hyperparameters of the FTRL kind.
    public var ftrl = FTRLProximal.Parameters()
    public init() {}
}

/// How the calibrator is fitted on the held-back latest examples.
public enum CalibrationMethod: String, Sendable, Equatable, CaseIterable {
    case none, platt, isotonic

    public func fit(predictions: [Double], labels: [Bool]) -> Calibrator {
        switch self {
        case .none: .identity
        case .platt: .platt(PlattCalibrator.fit(predictions: predictions, labels: labels))
        case .isotonic: .isotonic(IsotonicCalibrator.fit(predictions: predictions, labels: labels))
        }
    }
}

/// Trains one model on one target from time-ordered joined examples and measures it.
public struct Trainer: Sendable {
    public let configuration: TrainingConfiguration
    public init(configuration: TrainingConfiguration = TrainingConfiguration()) { self.configuration = configuration }

    public struct Result: Sendable {
        public var predictor: ClickPredictor
        /// The calibrated predictions on the held-out examples that `meta.metrics` measured.
        public var heldOutPredictions: [Double]
        /// The hyperparameters the search chose (nil: not searched, the configuration's).
        public var search: FTRLSearch.Choice?
        /// With `chooseFeatureSet`: each set searched and the validation log loss of its
        /// chosen setting, the configuration's set first; the set trained is `meta.featureSet`.
        public var featureSets: [FeatureSetScore] = []
        /// The feature set trained and why, in words; nil when the sets were not compared.
        public var featureSetSummary: String? {
            guard featureSets.count > 1 else { return nil }
            let trained = meta.featureSet ?? .full
            let scores = featureSets.map { "\($0.set.rawValue) \($0.logloss.map { TextTable.fixed($0, 4) } ?? "not scored")" }
            let other = featureSets[1]
            let verdict = other.gain.map { gain in
                let errors = other.standardError.map { $0 > 0 ? gain / $0 : 0 } ?? 0
                return "; \(other.set.rawValue) \(gain > 0 ? "lower" : "not lower") by \(TextTable.fixed(errors, 1)) standard errors, one needed"
            } ?? ""
            return "\(trained.rawValue) features (validation log loss: \(scores.joined(separator: ", "))\(verdict))"
        }
        public var model: any ClickModel { predictor.model }
        public var meta: ModelMeta { predictor.meta }
    }

    /// One feature set's result in the search.
    public struct FeatureSetScore: Sendable, Equatable, Codable {
        public var set: ClickFeatures.FeatureSet
        /// The validation log loss of the setting the search chose for it (nil: too few labels).
        public var logloss: Double?
        /// For the other set: how much lower its log loss was than the configured set's, per
        /// example, and the standard error of that paired difference.
        public var gain: Double?
        public var standardError: Double?
    }

    /// Trains on `examples` (but for the latest `calibrationHours`, which fit the calibrator) and
    /// evaluates the calibrated model on `heldOut`, which should come later in time.
    public func train(
        _ examples: [JoinedExample], target: PredictionTarget, heldOut: [JoinedExample], heldOutName: String, now: Timestamp
    ) throws -> Result {
        let config = configuration
        guard !examples.isEmpty else { throw AdServeError.invalid("logs", "no \(target.rawValue) examples to train on") }
        let positives = examples.reduce(0) { $0 + ($1.label ? 1 : 0) }
        guard positives > 0, positives < examples.count else {
            let hint = positives > 0
                ? "a negative is labelled only once its attribution window has closed: the log may be shorter than the window; `adserve train` takes --click-window and --conversion-window"
                : "are their attribution windows still open?"
            throw AdServeError.invalid(
                "logs", "the \(examples.count) \(target.rawValue) examples are all \(positives > 0 ? "positive" : "negative"): nothing to learn (\(hint))")
        }
        let hasher = FeatureHasher(bits: config.bits)
        var features = ClickFeatures(hasher: hasher, set: config.featureSet)
        let ordered = examples.sorted { $0.servedAt < $1.servedAt }
        let span = ordered.last!.servedAt.milliseconds - ordered.first!.servedAt.milliseconds
        let window = config.calibration == .none ? 0 : min(config.calibrationWindowMilliseconds, span / 3)
        let cutTime = ordered.last!.servedAt.milliseconds - window
        let cut = config.calibration == .none ? ordered.count : ordered.firstIndex { $0.servedAt.milliseconds > cutTime } ?? ordered.count
        let fitting = ordered[..<max(cut, 1)]
        let calibrating = ordered[max(cut, 1)...]
        var encoded = fitting.map { features.encode($0.features) }

        var sampler = NegativeDownsampler(
            keepRate: config.negativeKeepRate, correction: config.importanceWeighting ? .importanceWeight : .recalibrate, seed: config.seed)
        // Importance weighting keeps the model calibrated itself; recalibration undoes sampling.
        let keepRate = config.importanceWeighting ? 1 : config.negativeKeepRate
        var ftrl = config.ftrl
        var epochs = max(1, config.epochs)
        var search: FTRLSearch.Choice?
        var calibrationEncoded = calibrating.map { features.encode($0.features) }
        var featureSets: [FeatureSetScore] = []
        if config.tune && config.kind == FTRLProximal.kind {
            // Settings are judged where the model will be: on the examples after those it
            // learns, the calibration window (without one, the latest fifth of the examples).
            var searchSampler = sampler
            let weights = fitting.map { searchSampler.sample(label: $0.label) ?? 0 }
            let labels = fitting.map(\.label)
            let searcher = FTRLSearch(maxEpochs: max(2, config.epochs))
            func choose(_ x: [SparseFeatures], _ validation: [SparseFeatures]) -> (choice: FTRLSearch.Choice, losses: [Float]) {
                searcher.scored(
                    features: x, labels: labels, weights: weights,
                    validation: calibrating.isEmpty ? nil : (validation, calibrating.map(\.label)), hasher: hasher, base: config.ftrl,
                    baseEpochs: config.epochs, calibration: config.calibration, adjust: { DownsamplingRecalibration.recalibrate($0, keepRate: keepRate) })
            }
            var (choice, losses) = choose(encoded, calibrationEncoded)
            if config.chooseFeatureSet {
                // The other set is trained only on a clear win over the configured one, judged
                // on the same examples: like a setting, the lower of two noisy scores is lower
                // partly by chance (and each search has already kept its own best).
                featureSets = [FeatureSetScore(set: features.set, logloss: choice.chosenLogloss)]
                let other = ClickFeatures(hasher: hasher, set: features.set == .full ? .compact : .full)
                let otherEncoded = fitting.map { other.encode($0.features) }
                let otherCalibration = calibrating.map { other.encode($0.features) }
                let (otherChoice, otherLosses) = choose(otherEncoded, otherCalibration)
                let paired = FTRLSearch.pairedGain(losses, otherLosses)
                featureSets.append(
                    FeatureSetScore(set: other.set, logloss: otherChoice.chosenLogloss, gain: paired?.gain, standardError: paired?.standardError))
                if let paired, paired.gain > searcher.standardErrors * paired.standardError {
                    (features, encoded, calibrationEncoded, choice) = (other, otherEncoded, otherCalibration, otherChoice)
                }
            }
            (ftrl, epochs, search) = (choice.parameters, choice.epochs, choice)
        }
        var model = try ModelKinds.make(config.kind, hasher: features.hasher, ftrl: ftrl)
        for _ in 0..<epochs {
            for (x, example) in zip(encoded, fitting) {
                guard let weight = sampler.sample(label: example.label) else { continue }
                model.update(x, label: example.label, weight: weight)
            }
        }
        let calibrator = calibrating.isEmpty
            ? Calibrator.identity
            : config.calibration.fit(
                predictions: calibrationEncoded.map { DownsamplingRecalibration.recalibrate(model.predict($0), keepRate: keepRate) },
                labels: calibrating.map(\.label))
        if config.learnFromCalibrationData {
            for (x, example) in zip(calibrationEncoded, calibrating) {
                guard let weight = sampler.sample(label: example.label) else { continue }
                model.update(x, label: example.label, weight: weight)
            }
        }

        let learned = config.learnFromCalibrationData ? ordered[...] : fitting
        let baseRate = Double(learned.filter(\.label).count) / Double(max(1, learned.count))
        var meta = ModelMeta(
            kind: config.kind, target: target, createdAt: now, trainedFrom: ordered.first!.servedAt, trainedTo: ordered.last!.servedAt,
            trainingExamples: learned.count, trainingBaseRate: baseRate, features: features, negativeKeepRate: keepRate,
            calibrator: calibrator, metrics: OfflineMetrics(predictions: [], labels: []), evaluatedOn: heldOutName)
        let predictions = try ClickPredictor(meta: meta, model: model).predictions(for: heldOut)
        meta.metrics = OfflineMetrics(predictions: predictions, labels: heldOut.map(\.label))
        return Result(predictor: try ClickPredictor(meta: meta, model: model), heldOutPredictions: predictions, search: search, featureSets: featureSets)
    }

    /// Calibrated predictions of `predictor` on `examples`, measured.
    public static func evaluate(_ predictor: ClickPredictor, on examples: [JoinedExample]) -> OfflineMetrics {
        OfflineMetrics(predictions: predictor.predictions(for: examples), labels: examples.map(\.label))
    }
}

/// Promotes a new model only if, on the same held-out data, it is not worse than what serves:
/// normalized entropy no higher, and calibration within ±tolerance of 1 (or no further from 1
/// than the serving model's). Before any model has served, what served was the rule-based
/// estimate, and the candidate is compared with that.
public struct PromotionGate: Sendable {
    public var calibrationTolerance = 0.05
    public init(calibrationTolerance: Double = 0.05) { self.calibrationTolerance = calibrationTolerance }

    public struct Verdict: Sendable {
        public var promote: Bool
        /// Each comparison made, passed or failed, in words.
        public var reasons: [String]
        public var candidate: OfflineMetrics
        /// What the candidate was compared with, measured on the same examples.
        public var serving: OfflineMetrics
    }

    /// Judges a candidate's held-out metrics against `serving`'s — whatever served (a model, or
    /// the rule-based estimate), named `servingName` — measured on the same examples against the
    /// same base rate.
    public func judge(candidate mine: OfflineMetrics, serving theirs: OfflineMetrics, servingName: String) -> Verdict {
        guard mine.positives > 0, mine.positives < mine.count else {
            return Verdict(promote: false, reasons: ["held-out data has no positives or no negatives"], candidate: mine, serving: theirs)
        }
        var promote = true
        var reasons: [String] = []
        // Both normalized by the same base rate, so their NE compare like their log loss.
        if mine.ne > theirs.ne {
            promote = false
            reasons.append("NE \(TextTable.fixed(mine.ne, 4)) is worse than the \(servingName)'s \(TextTable.fixed(theirs.ne, 4))")
        } else {
            reasons.append("NE \(TextTable.fixed(mine.ne, 4)) is not worse than the \(servingName)'s \(TextTable.fixed(theirs.ne, 4))")
        }
        let error = abs(mine.calibration - 1)
        let allowed = max(calibrationTolerance, abs(theirs.calibration - 1))
        if error > allowed {
            promote = false
            reasons.append("calibration \(TextTable.fixed(mine.calibration, 3)) is off by more than \(TextTable.fixed(calibrationTolerance, 2)) and worse than the \(servingName)'s \(TextTable.fixed(theirs.calibration, 3))")
        } else {
            reasons.append("calibration \(TextTable.fixed(mine.calibration, 3)) is within \(TextTable.fixed(allowed, 3)) of 1 (the \(servingName)'s: \(TextTable.fixed(theirs.calibration, 3)))")
        }
        return Verdict(promote: promote, reasons: reasons, candidate: mine, serving: theirs)
    }
}
