import Domain
import Foundation

/// Between the candidate stage and the ranker: a cheap score that cuts the few hundred
/// candidates the stage hands on (top K, fresh ads, value, objective and interest pools) to the
/// `keep` the learned ranker then scores for this user.
///
/// The cheap score is an ad's value with no user (`RankingIndex.values` of the value order: the
/// serving ranker's own value for nobody in particular, already computed for every ad), scaled
/// per objective to this user. How a user's value departs from the no-user value depends mostly
/// on the billing type — in the bench's 100k world a traffic ad is worth a median 0.31 of its
/// no-user value to a user and a conversion ad 1.33 of it, an awareness ad exactly 1 — so ranking
/// by the raw no-user value would crowd out the conversion ads. The scale comes from the request
/// itself: the `calibration` candidates of each objective with the highest no-user value are
/// scored by the ranker first, and the geometric mean of their full ÷ no-user values scales that
/// objective's other candidates. Those first predictions are kept, not made twice. Nothing is
/// kept between requests, so a decision does not depend on the ones before it.
///
/// Candidates without a no-user value (ads newer than the value order) are always kept: the
/// stage's promise that a new ad reaches the ranker holds.
enum PreRanking {
    /// Candidates of each objective scored first to scale that objective's no-user values.
    static let calibration = 4

    /// The candidates to rank, and the ranker's predictions for the first of them (as many as
    /// `predicted` holds); `candidates` itself with no predictions when it has no more than
    /// `keep` (or there is no value order to read the no-user values from).
    static func select(
        _ candidates: [Candidate], keep: Int, valueOrder: RankingIndex?, ranker: some Ranker, request: DecisionRequest, relevance: Relevance,
        engagement: EngagementCost
    ) -> (candidates: [Candidate], predicted: [Prediction]) {
        guard keep > 0, candidates.count > keep, let valueOrder else { return (candidates, []) }
        // The candidates the order knows, by no-user value (best first, then the lower ad id);
        // an ad it does not know (new since it was built, or a state slot another ad has taken
        // over) is kept whatever its value.
        let snapshot = valueOrder.snapshot
        var known: [Entry] = []
        known.reserveCapacity(candidates.count)
        var unknown: [Int] = []
        for i in candidates.indices {
            if let index = snapshot.adIndex(slot: Int64(candidates[i].adSlot)), snapshot.adIDs[Int(index)] == candidates[i].adID {
                known.append(Entry(value: valueOrder.values[Int(index)], id: candidates[i].adID.rawValue, index: i, objective: objectiveIndex(candidates[i].objective)))
            } else {
                unknown.append(i)
            }
        }
        known.sort(by: Entry.before)
        // The calibration sample: each objective's first candidates in that order.
        var sampled = [Bool](repeating: false, count: known.count)
        var taken = [Int](repeating: 0, count: Objective.allCases.count)
        var firstKnown: [Int] = []
        for k in known.indices where taken[known[k].objective] < calibration {
            taken[known[k].objective] += 1
            sampled[k] = true
            firstKnown.append(k)
        }
        let first = firstKnown.map { known[$0].index }
        let firstCandidates = first.map { candidates[$0] }
        let predicted = ranker.predictForRanking(firstCandidates, user: request.profile, context: request.context)
        // Per objective, the mean log of full ÷ no-user value over the sample where both are
        // positive; an objective with no such pair takes the mean over all objectives (0: none).
        var logSums = [Double](repeating: 0, count: Objective.allCases.count)
        var counts = [Int](repeating: 0, count: Objective.allCases.count)
        for (j, k) in firstKnown.enumerated() {
            let candidate = firstCandidates[j]
            let value = predicted[j].expectedValuePerImpression(objective: candidate.objective, bidMicros: candidate.bidMicros)
                - engagement.cost(candidate, hide: predicted[j].hide)
            guard known[k].value > 0, value > 0 else { continue }
            logSums[known[k].objective] += log(value / known[k].value)
            counts[known[k].objective] += 1
        }
        let total = counts.reduce(0, +)
        let overall = total > 0 ? logSums.reduce(0, +) / Double(total) : 0
        let scale = logSums.indices.map { exp(counts[$0] > 0 ? logSums[$0] / Double(counts[$0]) : overall) }
        // The others by scaled no-user value (times the user's relevance of the ad), best first.
        var rest: [Entry] = []
        rest.reserveCapacity(known.count - first.count)
        for k in known.indices where !sampled[k] {
            var entry = known[k]
            entry.value *= scale[entry.objective]
            if !relevance.isNeutral { entry.value *= relevance.factor(candidates[entry.index].ad) }
            rest.append(entry)
        }
        rest.sort(by: Entry.before)
        var kept = firstCandidates
        let room = max(0, keep - first.count - unknown.count)
        kept.reserveCapacity(first.count + unknown.count + min(room, rest.count))
        for i in unknown { kept.append(candidates[i]) }
        for entry in rest.prefix(room) { kept.append(candidates[entry.index]) }
        return (kept, predicted)
    }

    /// A candidate as the stage orders it: plain values, compared without reading the candidates.
    private struct Entry {
        var value: Double
        var id: Int64
        var index: Int
        var objective: Int

        /// Higher value first, then the lower ad id: the same order whatever the candidates' order.
        @inline(__always)
        static func before(_ a: Entry, _ b: Entry) -> Bool { a.value != b.value ? a.value > b.value : a.id < b.id }
    }

    @inline(__always)
    private static func objectiveIndex(_ objective: Objective) -> Int { Objective.allCases.firstIndex(of: objective)! }
}
