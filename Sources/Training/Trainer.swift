import Domain
import Foundation
import Models

/// How a model is trained from joined examples.
public struct TrainingConfiguration: Sendable, Equatable {
    public var kind = FTRLProximal.kind
    public var bits = 20
    public var epochs = 1
    /// Negative downsampling: keep each negative with this probability (1 = keep all).
    public var negativeKeepRate = 1.0
    /// With downsampling: weight kept negatives by 1 / keep-rate instead of recalibrating.
    public var importanceWeighting = false
    public var calibration = CalibrationMethod.platt
    /// The latest hours of the training examples, held back to fit the calibrator (at most a
    /// third of the time span). A later period, not a random sample: examples of the same
    /// period share users, ads and sessions with the training data, so a calibrator fitted on
    /// them does not see how the model errs on a day it has not seen (measured on simulator
    /// logs: calibration 1.14 on the next day with a random 10%, 1.00 with the latest day).
    public var calibrationHours = 24
    /// After the calibrator is fitted, the model also learns from the held-back examples (one
    /// pass), so it is as fresh as the data; the calibrator stays.
    public var learnFromCalibrationData = false
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
        public var model: any ClickModel { predictor.model }
        public var meta: ModelMeta { predictor.meta }
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
            throw AdServeError.invalid(
                "logs", "the \(examples.count) \(target.rawValue) examples are all \(positives > 0 ? "positive" : "negative"): nothing to learn (are their attribution windows still open?)")
        }
        let features = ClickFeatures(hasher: FeatureHasher(bits: config.bits))
        var model = try ModelKinds.make(config.kind, hasher: features.hasher, ftrl: config.ftrl)
        let ordered = examples.sorted { $0.servedAt < $1.servedAt }
        let span = ordered.last!.servedAt.milliseconds - ordered.first!.servedAt.milliseconds
        let window = config.calibration == .none ? 0 : min(Int64(config.calibrationHours) * Timestamp.millisecondsPerHour, span / 3)
        let cutTime = ordered.last!.servedAt.milliseconds - window
        let cut = config.calibration == .none ? ordered.count : ordered.firstIndex { $0.servedAt.milliseconds > cutTime } ?? ordered.count
        let fitting = ordered[..<max(cut, 1)]
        let calibrating = ordered[max(cut, 1)...]
        let encoded = fitting.map { features.encode($0.features) }

        var sampler = NegativeDownsampler(
            keepRate: config.negativeKeepRate, correction: config.importanceWeighting ? .importanceWeight : .recalibrate, seed: config.seed)
        for _ in 0..<max(1, config.epochs) {
            for (x, example) in zip(encoded, fitting) {
                guard let weight = sampler.sample(label: example.label) else { continue }
                model.update(x, label: example.label, weight: weight)
            }
        }
        // Importance weighting keeps the model calibrated itself; recalibration undoes sampling.
        let keepRate = config.importanceWeighting ? 1 : config.negativeKeepRate
        let calibrationEncoded = calibrating.map { features.encode($0.features) }
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
            calibrator: calibrator, metrics: OfflineMetrics(predictions: [], labels: [], trainingBaseRate: baseRate), evaluatedOn: heldOutName)
        meta.metrics = Self.evaluate(try ClickPredictor(meta: meta, model: model), on: heldOut, trainingBaseRate: baseRate)
        return Result(predictor: try ClickPredictor(meta: meta, model: model))
    }

    /// Calibrated predictions of `predictor` on `examples`, measured.
    public static func evaluate(_ predictor: ClickPredictor, on examples: [JoinedExample], trainingBaseRate: Double) -> OfflineMetrics {
        OfflineMetrics(predictions: predictor.predictions(for: examples), labels: examples.map(\.label), trainingBaseRate: trainingBaseRate)
    }
}

/// Promotes a new model only if, on the same held-out data, it is not worse than the serving
/// one: normalized entropy no higher, and calibration within ±tolerance of 1 (or no further
/// from 1 than the serving model's).
public struct PromotionGate: Sendable {
    public var calibrationTolerance = 0.05
    public init(calibrationTolerance: Double = 0.05) { self.calibrationTolerance = calibrationTolerance }

    public struct Verdict: Sendable {
        public var promote: Bool
        public var reasons: [String]
        public var candidate: OfflineMetrics
        public var serving: OfflineMetrics?
    }

    /// `reference`: what to compare with when no model serves (the rule-based estimate's metrics
    /// on the same examples); with neither, the candidate is judged on its calibration alone.
    public func judge(candidate: ClickPredictor, serving: ClickPredictor?, reference: OfflineMetrics? = nil, heldOut: [JoinedExample]) -> Verdict {
        let base = candidate.meta.trainingBaseRate
        let mine = Trainer.evaluate(candidate, on: heldOut, trainingBaseRate: base)
        var reasons: [String] = []
        guard mine.positives > 0, mine.positives < mine.count else {
            return Verdict(promote: false, reasons: ["held-out data has no positives or no negatives"], candidate: mine, serving: nil)
        }
        let calibrationError = abs(mine.calibration - 1)
        guard let theirs = serving.map({ Trainer.evaluate($0, on: heldOut, trainingBaseRate: base) }) ?? reference else {
            if calibrationError > calibrationTolerance {
                reasons.append(String(format: "calibration %.3f is outside 1 ± %.2f", mine.calibration, calibrationTolerance))
            }
            return Verdict(promote: reasons.isEmpty, reasons: reasons, candidate: mine, serving: nil)
        }
        // Both normalized by the same base rate, so their NE compare like their log loss.
        if mine.ne > theirs.ne {
            reasons.append(String(format: "NE %.4f is worse than the serving model's %.4f", mine.ne, theirs.ne))
        }
        if calibrationError > max(calibrationTolerance, abs(theirs.calibration - 1)) {
            reasons.append(String(format: "calibration %.3f is off by more than %.2f and worse than the serving model's %.3f",
                                  mine.calibration, calibrationTolerance, theirs.calibration))
        }
        return Verdict(promote: reasons.isEmpty, reasons: reasons, candidate: mine, serving: theirs)
    }
}

