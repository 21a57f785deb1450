import Domain
import Models

/// The one retraining flow, train → gate → adopt, used by `adserve train` and by the
/// simulator's learned arm: a candidate is trained on the earlier examples and judged on the
/// later ones, which neither it nor the serving model learned from, against what served them —
/// the serving model, or before any model served, the rule-based estimate. The caller adopts
/// it (promotes it in the repository, or hands it to online learning) when `adopt` is true.
public struct Retraining: Sendable {
    public var configuration: TrainingConfiguration
    public var gate: PromotionGate

    public init(configuration: TrainingConfiguration = TrainingConfiguration(), gate: PromotionGate = PromotionGate()) {
        self.configuration = configuration
        self.gate = gate
    }

    public struct Outcome: Sendable {
        public var candidate: Trainer.Result
        public var verdict: PromotionGate.Verdict
        /// "serving model v3" or "rule-based estimate".
        public var comparedWith: String
        /// What it was compared with predicted for the held-out examples.
        public var comparedPredictions: [Double]
        public var adopt: Bool { verdict.promote }

        /// One line for people: what was measured, against what, and the verdict.
        public var summary: String {
            let m = verdict.candidate
            let s = verdict.serving
            func metrics(_ m: OfflineMetrics) -> String {
                "AUC \(TextTable.fixed(m.auc, 4)) NE \(TextTable.fixed(m.ne, 4)) calibration \(TextTable.fixed(m.calibration, 3))"
            }
            let features = candidate.featureSetSummary.map { ", \($0)" } ?? ""
            let chosen = candidate.search.map { " (\($0.chosen.summary)\($0.chosen == $0.given ? ", as given" : ", chosen")\(features))" } ?? ""
            return "trained on \(candidate.meta.trainingExamples) examples\(chosen), judged on \(m.count): \(metrics(m)); \(comparedWith) \(metrics(s)) — "
                + (adopt ? "adopted" : "not adopted") + ": " + verdict.reasons.joined(separator: "; ")
        }
    }

    /// Trains a candidate on `train`, evaluates it on `heldOut` and judges it against `serving`
    /// (nil: the rule-based estimate) on the same examples.
    public func retrain(
        train: [JoinedExample], heldOut: [JoinedExample], heldOutName: String, target: PredictionTarget, serving: ClickPredictor?, now: Timestamp
    ) throws -> Outcome {
        let candidate = try Trainer(configuration: configuration).train(train, target: target, heldOut: heldOut, heldOutName: heldOutName, now: now)
        let theirs = serving?.predictions(for: heldOut) ?? RuleBasedEstimate.predictions(target, for: heldOut)
        let name = serving.map { $0.meta.version > 0 ? "serving model v\($0.meta.version)" : "serving model" } ?? "rule-based estimate"
        let metrics = OfflineMetrics(predictions: theirs, labels: heldOut.map(\.label))
        let verdict = gate.judge(candidate: candidate.meta.metrics, serving: metrics, servingName: name)
        return Outcome(candidate: candidate, verdict: verdict, comparedWith: name, comparedPredictions: theirs)
    }
}
