import Domain
import Models

/// The rule-based control's estimate for a logged impression, from the delivery counters
/// serving logged with it (the same `BetaPrior`s as `RuleBasedRanker`): what a learned model is
/// compared with offline, and what the gate compares a first model with.
public enum RuleBasedEstimate {
    public static func predict(_ target: PredictionTarget, _ features: ClickFeatureInput) -> Double {
        switch target {
        case .click: BetaPrior.click.mean(successes: features.adClicks, trials: features.adImpressions)
        case .conversion: BetaPrior.conversion.mean(successes: features.adConversions, trials: features.adClicks)
        case .hide: BetaPrior.hide.mean(successes: features.adHides ?? 0, trials: features.adImpressions)
        }
    }

    public static func predictions(_ target: PredictionTarget, for examples: [JoinedExample]) -> [Double] {
        examples.map { predict(target, $0.features) }
    }
}

/// One model's offline evaluation on held-out examples: the per-impression metrics and, per
/// decision, MRR and NDCG@k of its ads ordered by the model's scores against what was clicked.
public struct EvaluationRow: Sendable, Codable {
    public var name: String
    public var version: Int?
    public var examples: Int
    public var positives: Int
    public var auc: Double
    public var logloss: Double
    public var ne: Double
    public var calibration: Double
    public var ece: Double
    public var precision: Double
    public var recall: Double
    public var f1: Double
    public var accuracy: Double
    public var mrr: Double
    public var ndcg: Double

    public init(name: String, version: Int?, predictions: [Double], examples: [JoinedExample], threshold: Double, ndcgK: Int) {
        let m = OfflineMetrics(predictions: predictions, labels: examples.map(\.label), threshold: threshold)
        var groups: [String: RankingMetrics.Group] = [:]
        for (p, e) in zip(predictions, examples) {
            let decision = String(e.id.prefix { $0 != "/" })
            groups[decision, default: RankingMetrics.Group(scores: [], clicked: [])].scores.append(p)
            groups[decision]!.clicked.append(e.label)
        }
        let ranking = RankingMetrics(groups: Array(groups.values), k: ndcgK)
        self.name = name
        self.version = version
        self.examples = m.count
        self.positives = m.positives
        self.auc = m.auc
        self.logloss = m.logloss
        self.ne = m.ne
        self.calibration = m.calibration
        self.ece = m.ece
        self.precision = m.precision
        self.recall = m.recall
        self.f1 = m.f1
        self.accuracy = m.accuracy
        self.mrr = ranking.mrr
        self.ndcg = ranking.ndcg
    }

    /// The rows as a table for people, with the threshold the classification metrics used.
    public static func table(_ rows: [EvaluationRow], ndcgK k: Int, threshold: Double) -> String {
        var table = [["model", "examples", "AUC", "logloss", "NE", "calibration", "ECE", "precision", "recall", "F1", "accuracy", "MRR", "NDCG@\(k)"]]
        for r in rows {
            table.append([r.name, String(r.examples)] + [r.auc, r.logloss, r.ne].map { TextTable.fixed($0, 4) }
                + [TextTable.fixed(r.calibration, 3), TextTable.fixed(r.ece, 4)]
                + [r.precision, r.recall, r.f1, r.accuracy, r.mrr, r.ndcg].map { TextTable.fixed($0, 3) })
        }
        return TextTable.render(table) + "\nprecision, recall, F1 and accuracy at threshold \(TextTable.fixed(threshold, 3))"
    }
}
