import Domain
import Models

/// How well a candidate stage finds what users click: for each clicked impression of a
/// held-out period, whether the clicked ad is among the stage's top K of every ad the log knows
/// (recall@K). Three stages are measured side by side:
/// - the two-tower model (`TwoTowerModel`) trained on the earlier clicks;
/// - popularity: the ads with most clicks in the earlier period, the same list for everyone;
/// - content similarity: the inner product of the user's activity sketch and the ad's content
///   sketch (users with no activity get the popularity order).
/// Eligibility is not applied: every ad the log saw is a candidate for every click.
public struct CandidateRecall: Sendable, Codable, Equatable {
    public static let ks = [50, 100, 500]

    public struct Row: Sendable, Codable, Equatable {
        public var stage: String
        /// recall@K for each K of `ks`, in order.
        public var recall: [Double]
    }

    public var rows: [Row]
    public var heldOutClicks: Int
    public var trainingClicks: Int
    public var ads: Int
    public var ks: [Int]

    /// The ads a log knows, each by its newest impression's features.
    public static func catalog(_ examples: [JoinedExample]) -> [Int64: ClickFeatureInput] {
        var ads: [Int64: ClickFeatureInput] = [:]
        for example in examples { ads[example.features.adId] = example.features }
        return ads
    }

    /// The training set of the model: clicked impressions.
    public static func clicks(_ examples: [JoinedExample], model: TwoTowerModel) -> [TwoTowerModel.Click] {
        examples.filter(\.label).map { TwoTowerModel.Click(user: model.userSide($0.features), ad: model.adSide($0.features), adID: $0.features.adId) }
    }

    /// Measures `model` (already trained on `train`) and the two baselines on `heldOut`'s clicks,
    /// over every ad in `train` and `heldOut`; then each of `stored` (a name and a model, e.g.
    /// versions from the repository) the same way, a row each after the baselines.
    public init(model: TwoTowerModel, train: [JoinedExample], heldOut: [JoinedExample], ks: [Int] = Self.ks, stored: [(name: String, model: TwoTowerModel)] = []) {
        let catalog = Self.catalog(train + heldOut)
        let adIDs = catalog.keys.sorted()
        var clicksByAd: [Int64: Int] = [:]
        for example in train where example.label { clicksByAd[example.features.adId, default: 0] += 1 }
        let popular = adIDs.sorted { (clicksByAd[$0] ?? 0, $1) > (clicksByAd[$1] ?? 0, $0) }
        let position = Dictionary(uniqueKeysWithValues: adIDs.enumerated().map { ($0.element, $0.offset) })
        let popularRank = Dictionary(uniqueKeysWithValues: popular.enumerated().map { ($0.element, $0.offset) })
        let towers = [(name: "two-tower", model: model)] + stored
        let adVectors = towers.map { tower in adIDs.map { tower.model.adVector(tower.model.adSide(catalog[$0]!)) } }
        let adSketches = adIDs.map { catalog[$0]!.adSketch }
        let heldOutClicks = heldOut.filter(\.label)

        /// The rank (0-based) of the clicked ad among all ads by `score`, ties broken by popularity.
        func rank(of clicked: Int64, _ score: (Int) -> Float) -> Int {
            guard let target = position[clicked] else { return Int.max }
            let mine = score(target)
            var better = 0
            for i in adIDs.indices where i != target {
                let s = score(i)
                if s > mine || (s == mine && popularRank[adIDs[i]]! < popularRank[clicked]!) { better += 1 }
            }
            return better
        }

        /// The clicked ad's rank by the inner product of `tower`'s user and ad vectors.
        func towerRank(_ tower: Int, _ f: ClickFeatureInput) -> Int {
            let model = towers[tower].model
            let user = model.userVector(model.userSide(f))
            let ads = adVectors[tower]
            return rank(of: f.adId) { i in
                var dot: Float = 0
                for k in 0..<user.count { dot += user[k] * ads[i][k] }
                return dot
            }
        }

        let stages = ["two-tower", "popularity", "content similarity"] + stored.map(\.name)
        var hits = [[Int]](repeating: [Int](repeating: 0, count: ks.count), count: stages.count)
        for example in heldOutClicks {
            let f = example.features
            let ranks = [
                towerRank(0, f),
                popularRank[f.adId] ?? Int.max,
                rank(of: f.adId) { i in
                    guard let u = f.userSketch, let a = adSketches[i] else { return 0 }
                    return u.dot(a)
                },
            ] + stored.indices.map { towerRank($0 + 1, f) }
            for (stage, r) in ranks.enumerated() {
                for (n, k) in ks.enumerated() where r < k { hits[stage][n] += 1 }
            }
        }
        let n = Double(max(1, heldOutClicks.count))
        rows = zip(stages, hits).map { Row(stage: $0, recall: $1.map { Double($0) / n }) }
        self.heldOutClicks = heldOutClicks.count
        trainingClicks = train.filter(\.label).count
        ads = adIDs.count
        self.ks = ks
    }

    /// recall@k of a stage by name.
    public func recall(_ stage: String, at k: Int) -> Double? {
        guard let n = ks.firstIndex(of: k) else { return nil }
        return rows.first { $0.stage == stage }?.recall[n]
    }

    /// The rows as a text table, with what they were measured on.
    public var table: String {
        var text = "candidate recall: \(heldOutClicks) held-out clicks, \(ads) ads, two-tower trained on \(trainingClicks) earlier clicks\n"
        text += TextTable.render([["stage"] + ks.map { "recall@\($0)" }] + rows.map { row in [row.stage] + row.recall.map { TextTable.fixed($0, 3) } })
        return text
    }
}
