import Domain
import Foundation

/// Between the candidate stage and the ranker: a cheap score that cuts the few hundred
/// candidates the stage hands on (top K, fresh ads, value, objective and interest pools) to the
/// `keep` the learned ranker then scores for this user.
///
/// The cheap score is an ad's value with no user (`RankingIndex.values` of the value order: the
/// serving ranker's own value for nobody in particular, already computed for every ad), scaled
/// per objective to this user, and, with `preRankAffinity` (off by default) and a retriever that
/// scores ads for the user (the two-tower model's inner product: the search's own for the ads
/// it found, `CandidateRetriever.affinities` for the others), raised or lowered by that score.
/// How a user's value departs from the no-user value depends first on the billing type — in
/// the bench's 100k world a traffic ad is worth a median 0.31 of its no-user value to a user
/// and a conversion ad 1.33 of it, an awareness ad exactly 1 — so ranking by the raw no-user
/// value would crowd out the conversion ads; within a billing type it follows the
/// user's affinity with the ad (the log of the ratio correlates 0.58 with it for traffic ads,
/// 0.36 for conversion ads, same world). Both come from the request itself: the `calibration`
/// candidates of each objective with the highest no-user value (with affinities, half of them
/// those the user is closest to) are scored by the ranker first, and a least-squares fit of
/// log(full ÷ no-user value) = a(objective) + β·affinity (β ≥ 0, one slope for all
/// objectives) scales the other candidates by exp(a + β·affinity). Those first predictions are
/// kept, not made twice. Nothing is kept between requests, so a decision does not depend on
/// the ones before it.
///
/// The retriever's fresh ads (`CandidateGeneration.Retrieved.fresh`), and candidates without a
/// no-user value (ads newer than the value order), are always kept: the stage's promise that a
/// new ad reaches the ranker holds however low its value with no user.
enum PreRanking {
    /// Candidates of each objective scored first to scale that objective's no-user values.
    static let calibration = 4

    /// The candidates to rank (made only for the ads kept), and the ranker's predictions for the
    /// first of them (as many as `predicted` holds). `retrieved` holds eligible ads of the
    /// eligibility's snapshot. Every ad is kept, with no predictions, when there are no more
    /// than `keep` (or no value order to read the no-user values from). Affinities are used
    /// only with a `retriever`.
    static func select(
        _ retrieved: CandidateGeneration.Retrieved, keep: Int, valueOrder: RankingIndex?, ranker: some Ranker, retriever: (any CandidateRetriever)?,
        request: DecisionRequest, eligibility: Eligibility, delivery: DeliveryState, engagement: EngagementCost
    ) -> (candidates: [Candidate], predicted: [Prediction]) {
        func candidates(_ indices: [Int32]) -> [Candidate] {
            CandidateGeneration.candidates(indices, eligibility, delivery: delivery, now: request.now)
        }
        let adIndices = retrieved.adIndices
        guard keep > 0, adIndices.count > keep, let valueOrder else { return (candidates(adIndices), []) }
        // The ads the order knows, with their no-user values; a fresh ad, or one the order does
        // not know (new since it was built, or a state slot another ad has taken over), is kept
        // whatever its value.
        let snapshot = eligibility.snapshot
        let sameSnapshot = valueOrder.snapshot === snapshot
        var known: [Entry] = []
        known.reserveCapacity(adIndices.count)
        var unknown: [Int32] = []
        for (j, adIndex) in adIndices.enumerated() {
            guard !retrieved.fresh.contains(j) else {
                unknown.append(adIndex)
                continue
            }
            let i = Int(adIndex)
            let index = sameSnapshot ? adIndex : valueOrder.snapshot.adIndex(slot: Int64(snapshot.adStateSlots[i]))
            guard let index, sameSnapshot || valueOrder.snapshot.adIDs[Int(index)] == snapshot.adIDs[i] else {
                unknown.append(adIndex)
                continue
            }
            let objective = snapshot.campaigns[Int(snapshot.adCampaigns[i])].objective
            known.append(Entry(
                value: valueOrder.values[Int(index)], id: snapshot.adIDs[i].rawValue, adIndex: adIndex, objective: objectiveIndex(objective),
                affinity: retriever == nil ? .nan : retrieved.affinities[j]))
        }
        let scored = retriever.map { affinities(of: &known, $0, request: request, snapshot: snapshot) } ?? false
        // The calibration sample: each objective's best by no-user value and, with affinities,
        // as many more of those the user is closest to. Each is kept by a scan, best first; the
        // candidates are not sorted here (the rest are, below, once the sample is scored).
        var sampled = [Bool](repeating: false, count: known.count)
        let byValue = scored ? calibration / 2 : calibration
        var best = [[Int]](repeating: [], count: Objective.allCases.count)
        for k in known.indices { insert(k, of: known, into: &best[known[k].objective], room: byValue, by: Entry.before) }
        for k in best.joined() { sampled[k] = true }
        if scored {
            // Each objective's closest not sampled yet, kept in order (nearest first) as found.
            var closest = [[Int]](repeating: [], count: Objective.allCases.count)
            for k in known.indices where !sampled[k] && !known[k].affinity.isNaN {
                let objective = known[k].objective
                insert(k, of: known, into: &closest[objective], room: calibration - best[objective].count, by: Entry.closer)
            }
            for k in closest.joined() { sampled[k] = true }
        }
        // The sample in the order of the no-user values (best first, then the lower ad id).
        let firstKnown = known.indices.filter { sampled[$0] }.sorted { Entry.before(known[$0], known[$1]) }
        let first = candidates(firstKnown.map { known[$0].adIndex })
        let predicted = ranker.predictForRanking(first, user: request.profile, context: request.context)
        // The sample's log(full ÷ no-user value) where both are positive, with the affinity.
        var points: [Point] = []
        for (j, k) in firstKnown.enumerated() {
            let value = engagement.totalValue(first[j], predicted[j])
            guard known[k].value > 0, value > 0 else { continue }
            points.append(Point(objective: known[k].objective, ratio: log(value / known[k].value), affinity: known[k].affinity))
        }
        let fit = Fit(points)
        // The others by scaled no-user value (times the user's relevance of the ad), best first.
        let relevance = eligibility.relevance
        var rest: [Entry] = []
        rest.reserveCapacity(known.count - first.count)
        for k in known.indices where !sampled[k] {
            var entry = known[k]
            entry.value *= fit.scale(entry.objective, affinity: entry.affinity)
            if !relevance.isNeutral { entry.value *= relevance.factor(snapshot.ads[Int(entry.adIndex)]) }
            rest.append(entry)
        }
        rest.sort(by: Entry.before)
        let room = max(0, keep - first.count - unknown.count)
        return (first + candidates(unknown + rest.prefix(room).map(\.adIndex)), predicted)
    }

    /// Adds entry `k` of `entries` to `kept` (indices of `entries`, first by `before`) if it is
    /// among the first `room`, dropping the one it pushes out.
    @inline(__always)
    private static func insert(_ k: Int, of entries: [Entry], into kept: inout [Int], room: Int, by before: (Entry, Entry) -> Bool) {
        var at = kept.count
        while at > 0 && before(entries[k], entries[kept[at - 1]]) { at -= 1 }
        guard at < room else { return }
        kept.insert(k, at: at)
        if kept.count > room { kept.removeLast() }
    }

    /// Fills in the affinity of each entry the search did not score from the retriever; false
    /// when no entry has one. The search's scores are exact inner products, the retriever's
    /// from one byte per component: one scale within a rounding.
    private static func affinities(of entries: inout [Entry], _ retriever: any CandidateRetriever, request: DecisionRequest, snapshot: CatalogSnapshot) -> Bool {
        let missing = entries.indices.filter { entries[$0].affinity.isNaN }
        guard !missing.isEmpty else { return true }
        let keys = missing.map { snapshot.retrievalKey(entries[$0].adIndex).rawValue }
        var affinities = [Float](repeating: .nan, count: keys.count)
        let scored = keys.withUnsafeBufferPointer { keys in
            affinities.withUnsafeMutableBufferPointer { retriever.affinities(user: request.profile, context: request.context, keys: keys, into: $0) }
        }
        if scored {
            for (j, k) in missing.enumerated() { entries[k].affinity = affinities[j] }
        }
        return scored || missing.count < entries.count
    }

    /// One calibration candidate: its objective, log(full ÷ no-user value), its affinity (NaN: none).
    struct Point {
        var objective: Int
        var ratio: Double
        var affinity: Float
    }

    /// log(full ÷ no-user value) = a(objective) + β·(affinity − the sample's mean affinity), fit
    /// by least squares on the calibration sample: β pooled over the objectives (each centred
    /// on its own means; none below 0), then each objective's a the mean of its points'
    /// ratios less β's share. An objective with no point takes the mean over all points; a
    /// candidate without an affinity is taken at the mean.
    struct Fit {
        private(set) var slope = 0.0
        private(set) var center = 0.0
        private var intercepts: [Double?] = []
        private var overall = 0.0

        init(_ points: [Point]) {
            let objectives = Objective.allCases.count
            let withAffinity = points.filter { !$0.affinity.isNaN }
            center = withAffinity.isEmpty ? 0 : withAffinity.reduce(0) { $0 + Double($1.affinity) } / Double(withAffinity.count)
            var xy = 0.0
            var xx = 0.0
            for objective in 0..<objectives {
                let group = withAffinity.filter { $0.objective == objective }
                guard group.count > 1 else { continue }
                let meanRatio = group.reduce(0) { $0 + $1.ratio } / Double(group.count)
                let meanAffinity = group.reduce(0) { $0 + Double($1.affinity) } / Double(group.count)
                for point in group {
                    xy += (point.ratio - meanRatio) * (Double(point.affinity) - meanAffinity)
                    xx += (Double(point.affinity) - meanAffinity) * (Double(point.affinity) - meanAffinity)
                }
            }
            slope = xx > 0 ? max(0, xy / xx) : 0
            var sums = [Double](repeating: 0, count: objectives)
            var counts = [Int](repeating: 0, count: objectives)
            for point in points {
                sums[point.objective] += point.ratio - slope * offset(point.affinity)
                counts[point.objective] += 1
            }
            let total = counts.reduce(0, +)
            overall = total > 0 ? sums.reduce(0, +) / Double(total) : 0
            intercepts = (0..<objectives).map { counts[$0] > 0 ? sums[$0] / Double(counts[$0]) : nil }
        }

        /// How far an affinity is from the sample's mean (0 for none).
        private func offset(_ affinity: Float) -> Double { affinity.isNaN ? 0 : Double(affinity) - center }

        /// What a candidate's no-user value is multiplied by.
        func scale(_ objective: Int, affinity: Float) -> Double { exp((intercepts[objective] ?? overall) + slope * offset(affinity)) }
    }

    /// A candidate as the stage orders it: plain values, compared without reading the candidates.
    private struct Entry {
        var value: Double
        var id: Int64
        var adIndex: Int32
        var objective: Int
        /// The user's affinity with the ad (`CandidateRetriever.affinities`); NaN: none.
        var affinity = Float.nan

        /// Higher value first, then the lower ad id: the same order whatever the candidates' order.
        @inline(__always)
        static func before(_ a: Entry, _ b: Entry) -> Bool { a.value != b.value ? a.value > b.value : a.id < b.id }

        /// Higher affinity first, then the lower ad id.
        @inline(__always)
        static func closer(_ a: Entry, _ b: Entry) -> Bool { a.affinity != b.affinity ? a.affinity > b.affinity : a.id < b.id }
    }

    @inline(__always)
    private static func objectiveIndex(_ objective: Objective) -> Int { Objective.allCases.firstIndex(of: objective)! }
}
