import Foundation

/// Offline evaluation of probabilistic predictions against labels.
public struct OfflineMetrics: Sendable, Equatable, Codable {
    public var count: Int
    public var positives: Int
    public var auc: Double
    public var logloss: Double
    /// Log loss divided by the entropy of the evaluated examples' own base rate (He et al.
    /// 2014): < 1 beats always predicting that rate. Against the training base rate instead, a
    /// calibrated model would show NE above 1 merely because the rate moved between the periods.
    public var ne: Double
    /// Mean prediction ÷ observed rate: 1 is calibrated.
    public var calibration: Double
    /// Expected calibration error over 10 equal-count bins of the sorted predictions:
    /// Σ_bins (n_b / N) · |mean prediction − observed rate|. 0 is calibrated in every bin.
    public var ece: Double
    /// The threshold of the metrics below: a prediction ≥ threshold counts as a positive call.
    public var threshold: Double
    /// Of the positive calls, the share that were positive (0 when there are none).
    public var precision: Double
    /// Of the positives, the share called positive (0 when there are none).
    public var recall: Double
    /// The harmonic mean of precision and recall (0 when both are 0).
    public var f1: Double
    /// The share of calls that were right.
    public var accuracy: Double

    public init(predictions: [Double], labels: [Bool], threshold: Double = 0.5) {
        precondition(predictions.count == labels.count)
        count = labels.count
        positives = labels.reduce(0) { $0 + ($1 ? 1 : 0) }
        let eps = 1e-15
        var loss = 0.0
        for (p, y) in zip(predictions, labels) { loss += Self.logloss(p, y) }
        logloss = count > 0 ? loss / Double(count) : 0
        let observed = count > 0 ? Double(positives) / Double(count) : 0
        let b = min(max(observed, eps), 1 - eps)
        ne = logloss / -(b * log(b) + (1 - b) * log(1 - b))
        calibration = observed > 0 ? predictions.reduce(0, +) / Double(count) / observed : 0
        auc = Self.auc(predictions, labels)
        ece = Self.ece(predictions, labels)
        self.threshold = threshold
        var (truePositives, falsePositives, trueNegatives) = (0, 0, 0)
        for (p, y) in zip(predictions, labels) {
            switch (p >= threshold, y) {
            case (true, true): truePositives += 1
            case (true, false): falsePositives += 1
            case (false, false): trueNegatives += 1
            case (false, true): break
            }
        }
        let calledPositive = truePositives + falsePositives
        precision = calledPositive > 0 ? Double(truePositives) / Double(calledPositive) : 0
        recall = positives > 0 ? Double(truePositives) / Double(positives) : 0
        f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
        accuracy = count > 0 ? Double(truePositives + trueNegatives) / Double(count) : 0
    }

    /// One example's log loss, the prediction clipped to [1e-15, 1 − 1e-15].
    @inline(__always)
    public static func logloss(_ p: Double, _ y: Bool) -> Double {
        let q = min(max(p, 1e-15), 1 - 1e-15)
        return y ? -log(q) : -log(1 - q)
    }

    /// Expected calibration error over `bins` equal-count bins of the predictions sorted
    /// ascending (bin b holds ranks b·N/bins ..< (b+1)·N/bins; with fewer examples than bins some
    /// bins are empty and count for nothing).
    public static func ece(_ predictions: [Double], _ labels: [Bool], bins: Int = 10) -> Double {
        precondition(predictions.count == labels.count && bins > 0)
        let n = predictions.count
        guard n > 0 else { return 0 }
        let order = predictions.indices.sorted { predictions[$0] < predictions[$1] }
        var error = 0.0
        for b in 0..<bins {
            let range = (b * n / bins)..<((b + 1) * n / bins)
            guard !range.isEmpty else { continue }
            var sumPrediction = 0.0
            var sumLabel = 0.0
            for r in range {
                sumPrediction += predictions[order[r]]
                if labels[order[r]] { sumLabel += 1 }
            }
            error += abs(sumPrediction - sumLabel) / Double(n)
        }
        return error
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
