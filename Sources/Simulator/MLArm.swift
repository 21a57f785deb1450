import Domain
import Foundation
import ModelServing
import Models
import Serving
import Synchronization
import Training

/// The learned arm: ranks by calibrated model predictions (`LearnedRanker`), learns online from
/// its own joined impressions and events as their attribution windows close, and at the end of
/// every simulated day retrains each model from scratch on everything joined so far — adopted
/// only if the promotion gate passes it against the model that served that day, both judged on
/// the day neither had learned from. On day one it starts untrained and serves the rule-based
/// estimate until the online model has seen enough examples.
public final class MLArm: Arm {
    public let name = "ml"
    public let configuration: TrainingConfiguration
    /// For learning, a conversion counts within a day of its click (billing keeps 7 days): with
    /// the full window a conversion model would get no negative for a week.
    /// What the arm learns. P(conversion | click) stays the rule-based per-ad estimate: this world
    /// gives an arm about 120 conversions a day, too few to learn from — over a 7-day run the
    /// retrained conversion models scored held-out AUC 0.46–0.62 and calibration 0.60–0.90.
    public static let learnedTargets: [PredictionTarget] = [.click]
    /// Online learning labels a click 15 minutes after the impression (clicks in this world come
    /// within seconds; the shorter the wait, the fresher the model).
    public static let learningWindows = AttributionWindows(
        clickMilliseconds: 15 * 60_000, conversionMilliseconds: Timestamp.millisecondsPerDay)
    let click = ModelSlot()
    let conversion = ModelSlot()
    let learner: OnlineLearner
    /// Every example the join has labelled, per target: the next retrain's training data.
    private let history = Mutex<[PredictionTarget: [JoinedExample]]>([:])
    /// The serving models as each day began: what the gate compares a retrain with.
    private let startOfDay = Mutex<[PredictionTarget: ClickPredictor]>([:])
    /// One line per retrain: what it measured on the day it had not seen, and the gate's verdict.
    private let retrains = Mutex<[String]>([])
    public var notes: [String] { retrains.withLock { $0 } }

    public init(configuration: TrainingConfiguration = MLArm.defaultConfiguration) throws(AdServeError) {
        self.configuration = configuration
        // Until a retrain has passed the gate the arm serves the rule-based estimate: an
        // untrained model is never published.
        learner = OnlineLearner(click: click, conversion: conversion, windows: Self.learningWindows, minimumUpdatesBeforePublishing: .max)
        for target in Self.learnedTargets {
            let features = ClickFeatures(hasher: FeatureHasher(bits: configuration.bits))
            let meta = ModelMeta.untrained(kind: configuration.kind, target: target, features: features, at: Timestamp(milliseconds: 0))
            try learner.adopt(try ModelKinds.make(configuration.kind, hasher: features.hasher), meta: meta, trained: false)
        }
    }

    public static var defaultConfiguration: TrainingConfiguration {
        var configuration = TrainingConfiguration()
        configuration.bits = 20
        configuration.epochs = 2
        // The latest day fits the calibration layer and is not learned from: a model that went on
        // to learn it was off by 0.85–1.24 on the next day, and the gate refused it.
        configuration.calibration = .platt
        return configuration
    }

    public func servingPath(base: DecisionService, seed: UInt64) -> DecisionService {
        var serving = base.configuration
        serving.policy = .ranked
        return base.variant(ranker: LearnedRanker(click: click, conversion: conversion), configuration: serving, decisionIDs: DecisionIDGenerator(prefix: seed))
    }

    public func served(_ logs: [ImpressionLog]) {
        for log in logs { learner.served(id: log.impressionID, features: log.features, at: Timestamp(milliseconds: log.timeMs)) }
    }

    public func observe(_ type: EventType, impressionID: String, at time: Timestamp) {
        switch type {
        case .click: learner.clicked(id: impressionID, at: time)
        case .conversion: learner.converted(id: impressionID, at: time)
        default: break
        }
    }

    public func advance(to now: Timestamp) {
        let examples = learner.advance(to: now)
        guard !examples.isEmpty else { return }
        history.withLock { history in
            for example in examples { history[example.target == .click ? .click : .conversion, default: []].append(example) }
        }
    }

    public func endOfDay(_ day: Int, logs: [ImpressionLog]) async throws {
        let all = history.withLock { $0 }
        let servedToday = startOfDay.withLock { $0 }
        let trainer = Trainer(configuration: configuration)
        let gate = PromotionGate()
        for target in Self.learnedTargets {
            let examples = all[target] ?? []
            guard let last = examples.last else { continue }
            let dayStart = Timestamp(milliseconds: last.servedAt.milliseconds - last.servedAt.milliseconds % Timestamp.millisecondsPerDay)
            let before = examples.filter { $0.servedAt < dayStart }
            let today = examples.filter { $0.servedAt >= dayStart }
            // Both labels in both periods, or there is nothing to learn or to judge by.
            guard Self.hasBothLabels(before), Self.hasBothLabels(today) else { continue }
            let candidate = try trainer.train(before, target: target, heldOut: today, heldOutName: "day \(day + 1)", now: last.labelledAt)
            // Before any model has served, the reference is the rule-based estimate that did.
            let reference = OfflineMetrics(
                predictions: today.map { RuleBasedRanker().estimate(target, $0.features) }, labels: today.map(\.label),
                trainingBaseRate: candidate.meta.trainingBaseRate)
            let verdict = gate.judge(candidate: candidate.predictor, serving: servedToday[target], reference: reference, heldOut: today)
            let m = verdict.candidate
            var line = String(format: "day %d %@: retrain on %d examples, judged on the next %d: AUC %.4f NE %.4f calibration %.3f",
                              day + 1, target.rawValue, before.count, today.count, m.auc, m.ne, m.calibration)
            if let s = verdict.serving {
                line += String(format: "; %@ AUC %.4f NE %.4f calibration %.3f", servedToday[target] == nil ? "rule-based" : "serving model", s.auc, s.ne, s.calibration)
            }
            line += verdict.promote ? " — adopted" : " — kept the online model: " + verdict.reasons.joined(separator: "; ")
            retrains.withLock { $0.append(line) }
            if verdict.promote {
                let result = try trainer.train(examples, target: target, heldOut: [], heldOutName: "none", now: last.labelledAt)
                try learner.adopt(result.model, meta: result.meta, trained: true)
            }
        }
        startOfDay.withLock { snapshot in
            for target in PredictionTarget.allCases {
                snapshot[target] = (target == .click ? click : conversion).predictor
            }
        }
    }

    static func hasBothLabels(_ examples: [JoinedExample], atLeast minimum: Int = 50) -> Bool {
        var positives = 0
        for example in examples where example.label { positives += 1 }
        return positives >= minimum && examples.count - positives >= minimum
    }
}
