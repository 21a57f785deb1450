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

    /// The candidates to rank (made only for the ads kept), and the ranker's predictions for the
    /// first of them (as many as `predicted` holds). `adIndices` are eligible ads of the
    /// eligibility's snapshot. Every ad is kept, with no predictions, when there are no more
    /// than `keep` (or no value order to read the no-user values from).
    static func select(
        _ adIndices: [Int32], keep: Int, valueOrder: RankingIndex?, ranker: some Ranker, request: DecisionRequest, eligibility: Eligibility,
        delivery: DeliveryState, engagement: EngagementCost
    ) -> (candidates: [Candidate], predicted: [Prediction]) {
        func candidates(_ indices: [Int32]) -> [Candidate] {
            CandidateGeneration.candidates(indices, eligibility, delivery: delivery, now: request.now)
        }
        guard keep > 0, adIndices.count > keep, let valueOrder else { return (candidates(adIndices), []) }
        // The ads the order knows, by no-user value (best first, then the lower ad id); an ad it
        // does not know (new since it was built, or a state slot another ad has taken over) is
        // kept whatever its value.
        let snapshot = eligibility.snapshot
        let sameSnapshot = valueOrder.snapshot === snapshot
        var known: [Entry] = []
        known.reserveCapacity(adIndices.count)
        var unknown: [Int32] = []
        for adIndex in adIndices {
            let i = Int(adIndex)
            let index = sameSnapshot ? adIndex : valueOrder.snapshot.adIndex(slot: Int64(snapshot.adStateSlots[i]))
            guard let index, sameSnapshot || valueOrder.snapshot.adIDs[Int(index)] == snapshot.adIDs[i] else {
                unknown.append(adIndex)
                continue
            }
            let objective = snapshot.campaigns[Int(snapshot.adCampaigns[i])].objective
            known.append(Entry(value: valueOrder.values[Int(index)], id: snapshot.adIDs[i].rawValue, adIndex: adIndex, objective: objectiveIndex(objective)))
        }
        known.sort(by: Entry.before)
        // The calibration sample: each objective's first ads in that order.
        var sampled = [Bool](repeating: false, count: known.count)
        var taken = [Int](repeating: 0, count: Objective.allCases.count)
        var firstKnown: [Int] = []
        for k in known.indices where taken[known[k].objective] < calibration {
            taken[known[k].objective] += 1
            sampled[k] = true
            firstKnown.append(k)
        }
        let first = candidates(firstKnown.map { known[$0].adIndex })
        let predicted = ranker.predictForRanking(first, user: request.profile, context: request.context)
        // Per objective, the mean log of full ÷ no-user value over the sample where both are
        // positive; an objective with no such pair takes the mean over all objectives (0: none).
        var logSums = [Double](repeating: 0, count: Objective.allCases.count)
        var counts = [Int](repeating: 0, count: Objective.allCases.count)
        for (j, k) in firstKnown.enumerated() {
            let value = engagement.totalValue(first[j], predicted[j])
            guard known[k].value > 0, value > 0 else { continue }
            logSums[known[k].objective] += log(value / known[k].value)
            counts[known[k].objective] += 1
        }
        let total = counts.reduce(0, +)
        let overall = total > 0 ? logSums.reduce(0, +) / Double(total) : 0
        let scale = logSums.indices.map { exp(counts[$0] > 0 ? logSums[$0] / Double(counts[$0]) : overall) }
        // The others by scaled no-user value (times the user's relevance of the ad), best first.
        let relevance = eligibility.relevance
        var rest: [Entry] = []
        rest.reserveCapacity(known.count - first.count)
        for k in known.indices where !sampled[k] {
            var entry = known[k]
            entry.value *= scale[entry.objective]
            if !relevance.isNeutral { entry.value *= relevance.factor(snapshot.ads[Int(entry.adIndex)]) }
            rest.append(entry)
        }
        rest.sort(by: Entry.before)
        let room = max(0, keep - first.count - unknown.count)
        return (first + candidates(unknown + rest.prefix(room).map(\.adIndex)), predicted)
    }

    /// A candidate as the stage orders it: plain values, compared without reading the candidates.
    private struct Entry {
        var value: Double
        var id: Int64
        var adIndex: Int32
        var objective: Int

        /// Higher value first, then the lower ad id: the same order whatever the candidates' order.
        @inline(__always)
        static func before(_ a: Entry, _ b: Entry) -> Bool { a.value != b.value ? a.value > b.value : a.id < b.id }
    }

    @inline(__always)
    private static func objectiveIndex(_ objective: Objective) -> Int { Objective.allCases.firstIndex(of: objective)! }
}
