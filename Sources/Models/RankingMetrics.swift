import Foundation

/// Ranking quality per decision: a group is the ads ranked in one decision, with the model's
/// scores and whether each was clicked. Mean reciprocal rank of the first clicked ad and NDCG@k
/// (binary gains, log2 discount; Järvelin & Kekäläinen 2002), averaged over the groups with at
/// least one click — a group without one says nothing about the order.
///
/// Ads are ranked by score, highest first; equal scores keep the group's order.
public struct RankingMetrics: Sendable, Equatable, Codable {
    /// One decision's ranked ads.
    public struct Group: Sendable, Equatable {
        public var scores: [Double]
        public var clicked: [Bool]

        public init(scores: [Double], clicked: [Bool]) {
            precondition(scores.count == clicked.count, "one click flag per score")
            self.scores = scores
            self.clicked = clicked
        }
    }

    /// The cut-off of NDCG.
    public var k: Int
    /// Groups given.
    public var groups: Int
    /// Groups with at least one click: the ones averaged.
    public var countedGroups: Int
    /// Mean over counted groups of 1 / (rank of the first clicked ad).
    public var mrr: Double
    /// Mean over counted groups of NDCG@k.
    public var ndcg: Double

    public init(groups: [Group], k: Int = 10) {
        precondition(k > 0)
        self.k = k
        self.groups = groups.count
        var counted = 0
        var sumReciprocalRank = 0.0
        var sumNDCG = 0.0
        for group in groups where group.clicked.contains(true) {
            counted += 1
            sumReciprocalRank += Self.reciprocalRank(group)
            sumNDCG += Self.ndcg(group, k: k)
        }
        countedGroups = counted
        mrr = counted > 0 ? sumReciprocalRank / Double(counted) : 0
        ndcg = counted > 0 ? sumNDCG / Double(counted) : 0
    }

    /// Positions of the group's ads, best score first (ties in the group's order).
    static func ranking(_ group: Group) -> [Int] {
        group.scores.indices.sorted { group.scores[$0] > group.scores[$1] || (group.scores[$0] == group.scores[$1] && $0 < $1) }
    }

    /// 1 / rank of the first clicked ad (ranks from 1); 0 without a click.
    public static func reciprocalRank(_ group: Group) -> Double {
        guard let rank = ranking(group).firstIndex(where: { group.clicked[$0] }) else { return 0 }
        return 1 / Double(rank + 1)
    }

    /// DCG@k / ideal DCG@k with gain 1 per clicked ad and discount log2(rank + 1); 0 without a click.
    public static func ndcg(_ group: Group, k: Int) -> Double {
        let clicks = group.clicked.reduce(0) { $0 + ($1 ? 1 : 0) }
        guard clicks > 0 else { return 0 }
        var dcg = 0.0
        for (rank, position) in ranking(group).prefix(k).enumerated() where group.clicked[position] {
            dcg += 1 / log2(Double(rank + 2))
        }
        var ideal = 0.0
        for rank in 0..<min(k, clicks) { ideal += 1 / log2(Double(rank + 2)) }
        return dcg / ideal
    }
}
