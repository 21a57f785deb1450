import Foundation

/// Offline evaluation of probabilistic predictions against labels.
public struct OfflineMetrics: Sendable, Equatable, Codable {
    public var count: Int
    public var positives: Int
    public var auc: Double
    public var logloss: Double
    /// Log loss divided by the entropy of the training base rate (He et al. 2014): < 1 beats
    /// always predicting the base rate.
    public var ne: Double
    /// Mean prediction ÷ observed rate: 1 is calibrated.
    public var calibration: Double

    public init(predictions: [Double], labels: [Bool], trainingBaseRate: Double) {
        precondition(predictions.count == labels.count)
        count = labels.count
        positives = labels.reduce(0) { $0 + ($1 ? 1 : 0) }
        let eps = 1e-15
        var loss = 0.0
        for (p, y) in zip(predictions, labels) {
            let q = min(max(p, eps), 1 - eps)
            loss -= y ? log(q) : log(1 - q)
        }
        logloss = count > 0 ? loss / Double(count) : 0
        let b = min(max(trainingBaseRate, eps), 1 - eps)
        let entropy = -(b * log(b) + (1 - b) * log(1 - b))
        ne = logloss / entropy
        let observed = count > 0 ? Double(positives) / Double(count) : 0
        calibration = observed > 0 ? predictions.reduce(0, +) / Double(count) / observed : 0
        auc = Self.auc(predictions, labels)
    }

    /// Area under the ROC curve by the rank-sum (Mann–Whitney) statistic, ties averaged.
    public static func auc(_ scores: [Double], _ labels: [Bool]) -> Double {
        let order = scores.indices.sorted { scores[$0] < scores[$1] }
        var rankSum = 0.0
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && scores[order[j + 1]] == scores[order[i]] { j += 1 }
            let averageRank = Double(i + j) / 2 + 1
            for k in i...j where labels[order[k]] { rankSum += averageRank }
            i = j + 1
        }
        let positives = Double(labels.reduce(0) { $0 + ($1 ? 1 : 0) })
        let negatives = Double(labels.count) - positives
        guard positives > 0, negatives > 0 else { return 0.5 }
        return (rankSum - positives * (positives + 1) / 2) / (positives * negatives)
    }
}
