import Domain
import Models
import Serving
import Synchronization

extension ClickFeatureInput {
    /// What the models see for one candidate: the one place serving fills the feature input,
    /// and what the impression logs keep.
    public init(candidate: Candidate, user: UserProfile?, context: FeedContext) {
        self.init(
            candidate: candidate, request: ClickFeatureInput(requestOf: candidate, user: user, context: context),
            side: UserSide(user, at: context.at))
    }

    /// The same from the request's features and the user's side, made once per decision by a
    /// caller that fills several inputs (`placed(_:user:context:)`).
    init(candidate: Candidate, request: ClickFeatureInput, side: UserSide) {
        self = request
        userHides = candidate.userHides
        adId = candidate.adID.rawValue
        campaignId = candidate.campaignID.rawValue
        advertiserId = candidate.advertiserID.rawValue
        format = candidate.ad.format.rawValue
        objective = candidate.objective.rawValue
        caption = candidate.ad.caption
        adImpressions = candidate.impressions
        adClicks = candidate.clicks
        adConversions = candidate.conversions
        adHides = candidate.hides
        adAgeHours = candidate.adAgeHours
        userCampaignImpressions = candidate.userCampaignImpressions
        userAdSimilarity = side.similarity(candidate.ad)
        adContentCode = candidate.ad.contentCode
        (recentTopicWeight, recentTopicShare, recentTopicRank) = side.about(candidate.ad)
    }

    /// The request's side alone — the user, the context and the user's hides — which is all
    /// `ClickFeatures.requestPart` reads, and what the full input above starts from: the ad's
    /// fields stay empty, so making it unpacks no caption and matches no topic (once per
    /// request, for the learned ranker).
    public init(requestOf candidate: Candidate, user: UserProfile?, context: FeedContext) {
        self.init(
            age: user?.age, gender: user?.gender, country: user?.country, language: user?.language, interests: user?.interests ?? [],
            adId: 0, campaignId: 0, advertiserId: 0, format: "", objective: "", caption: "", adImpressions: 0, adClicks: 0, adAgeHours: 0,
            userCampaignImpressions: 0, userHides: candidate.userHides, device: context.device, hour: context.hour, sessionPosition: context.sessionPosition,
            hoursSinceActivity: Self.hoursSinceActivity(user, at: context.at), userContentCode: ContentCode.of(user?.activityVector))
    }

    static func hoursSinceActivity(_ user: UserProfile?, at now: Timestamp?) -> Int? {
        guard let from = user?.activityVectorAt, let now else { return nil }
        return Int(max(0, now.milliseconds - from.milliseconds) / Timestamp.millisecondsPerHour)
    }

}

/// What every candidate of one request reads of its user, made once per request: recent topics
/// as they stand at the decision, and the activity vector with its squared norm.
struct UserSide {
    let recent: RecentTopics?
    let activity: [Float]?
    let squaredNorm: Double

    init(_ user: UserProfile?, at now: Timestamp?) {
        recent = RecentTopics(user, at: now)
        activity = user?.activityVector
        squaredNorm = activity.map(VectorMath.squaredNorm) ?? 0
    }

    /// Cosine of the user's activity vector and the ad's content vector, if both exist.
    @inline(__always)
    func similarity(_ ad: Ad) -> Double? {
        guard let activity else { return nil }
        return ad.contentCosine(activity, squaredNorm: squaredNorm)
    }

    /// `RecentTopics.about`, or nils when the user has no recent topics.
    @inline(__always)
    func about(_ ad: Ad) -> (weight: Double?, share: Double?, rank: Int?) {
        recent?.about(ad) ?? (nil, nil, nil)
    }
}

/// A user's recent topics as they stand at a decision: decayed from the profile's time to the
/// decision's, with their total and the three heaviest, computed once per request. A class:
/// every candidate reads it, and a struct of arrays would be copied (retained) for each.
final class RecentTopics {
    let topics: [String: Double]
    let decay: Double
    let total: Double
    let top: [String]
    /// The topics again when every name is ASCII, each with a hash of its bytes: matching an
    /// ad's name is then a scan of integers, not a dictionary's seeded string hash per
    /// candidate. Empty when a name is not ASCII: Swift compares strings by canonical
    /// equivalence, which an ASCII name can share with one that is not (U+037E and ";"), so
    /// then every lookup goes through `topics`.
    private let hashed: [(hash: UInt64, name: String, weight: Double, rank: Int)]

    init?(_ user: UserProfile?, at now: Timestamp?) {
        guard let user, !user.recentTopics.isEmpty else { return nil }
        let topics = user.recentTopics
        // The positive topics, heaviest first: the top three, and (summed lightest first, not in
        // the dictionary's order, which follows the process's hash seed and would change the
        // share's last bits in the logs) their total.
        let ranked = topics.filter { $0.value > 0 }.sorted { ($0.value, $1.key) > ($1.value, $0.key) }
        let top = ranked.prefix(3).map(\.key)
        let hashed = topics.compactMap { name, weight in Self.asciiHash(name).map { (hash: $0, name: name, weight: weight, rank: Self.rank(name, top)) } }
        self.hashed = hashed.count == topics.count ? hashed : []
        self.topics = topics
        self.top = top
        decay = ActivityVector.topicDecay(from: user.activityVectorAt, to: now)
        total = ranked.reversed().reduce(0) { $0 + $1.value }
    }

    /// `StableHash.fnv1a` of an ASCII name; nil for a name with any other byte.
    static func asciiHash(_ name: String) -> UInt64? {
        name.utf8.allSatisfy { $0 < 0x80 } ? StableHash.fnv1a(name) : nil
    }

    /// A topic's rank among the user's three heaviest (4: after the third).
    private static func rank(_ name: String, _ top: [String]) -> Int { (top.firstIndex(of: name) ?? 3) + 1 }

    /// The weight of a topic name and its rank among the user's topics.
    @inline(__always)
    private func find(_ name: String) -> (weight: Double, rank: Int)? {
        if !hashed.isEmpty, let hash = Self.asciiHash(name) {
            guard let topic = hashed.first(where: { $0.hash == hash && $0.name == name }) else { return nil }
            return (topic.weight, topic.rank)
        }
        guard let w = topics[name] else { return nil }
        return (w, Self.rank(name, top))
    }

    /// The decayed weight of what the user did about the ad's product or company, its share of
    /// all their recent activity, and the better rank of the two among the user's topics (4:
    /// after the third); nils when there is none.
    func about(_ ad: Ad) -> (weight: Double?, share: Double?, rank: Int?) {
        var weight = 0.0
        var rank = Int.max
        for name in ad.topicNames {
            guard let found = find(name) else { continue }
            weight += found.weight
            rank = min(rank, found.rank)
        }
        guard weight > 0, total > 0 else { return (nil, nil, nil) }
        return (weight * decay, min(1, weight / total), rank)
    }
}

/// Ranks by calibrated model predictions: P(click) from the click model, P(conversion | click)
/// from the conversion model, and with a hide slot P(hide) from the hide model (the user's side
/// of total value, `EngagementCost`). Where the click or conversion model is missing (before
/// the first training) it falls back to the rule-based estimate, so a new deployment serves
/// from the first request; without a hide model, total value uses the ads' hide rates.
public struct LearnedRanker: Ranker {
    public let click: ModelSlot
    public let conversion: ModelSlot
    public let hide: ModelSlot?
    public let fallback: RuleBasedRanker
    /// The ads' parts per model hash: the click model's, and the conversion model's when it
    /// hashes differently.
    private let clickAdParts = AdPartCache()
    private let conversionAdParts = AdPartCache()
    private let hideAdParts = AdPartCache()

    /// The fallback pools P(conversion | click) by advertiser: it prices conversion ads until a
    /// conversion model is adopted.
    public init(click: ModelSlot, conversion: ModelSlot, hide: ModelSlot? = nil, fallback: RuleBasedRanker = RuleBasedRanker(poolsConversions: true)) {
        self.hide = hide
        self.click = click
        self.conversion = conversion
        self.fallback = fallback
    }

    public var isUserIndependent: Bool { false }

    public func predict(_ candidate: Candidate, user: UserProfile?, context: FeedContext) -> Prediction {
        predict([candidate], user: user, context: context)[0]
    }

    public func predict(_ candidates: [Candidate], user: UserProfile?, context: FeedContext) -> [Prediction] {
        predict(candidates, user: user, context: context, conversionsOnly: false)
    }

    /// The conversion model runs only for conversion ads, and the click model not for awareness
    /// ads: a value that does not use a rate does not get it (an awareness ad's value is its bid
    /// per impression). Without a hide model an awareness ad costs no model work at all.
    public func predictForRanking(_ candidates: [Candidate], user: UserProfile?, context: FeedContext) -> [Prediction] {
        predict(candidates, user: user, context: context, conversionsOnly: true)
    }

    private func predict(_ candidates: [Candidate], user: UserProfile?, context: FeedContext, conversionsOnly: Bool) -> [Prediction] {
        let clickModel = click.predictor
        let conversionModel = conversion.predictor
        let hideModel = hide?.predictor
        guard clickModel != nil || conversionModel != nil || hideModel != nil, let first = candidates.first else {
            return fallback.predict(candidates, user: user, context: context)
        }
        let request = ClickFeatureInput(requestOf: first, user: user, context: context)
        let clickScorer = clickModel.map { Scorer($0, request) }
        let conversionScorer = conversionModel.map { Scorer($0, request) }
        let hideScorer = hideModel.map { Scorer($0, request) }
        // The ads' parts, fetched for the whole request at once (one per hash when the models
        // share one; a part does not depend on the feature set). An ad's part reads only the
        // ad, so a missing one is made without the user's work (similarity, recent topics,
        // activity code).
        let make = { (candidate: Candidate) in ClickFeatureInput(candidate: candidate, user: nil, context: FeedContext()) }
        let clickNeeded = { (candidate: Candidate) in Self.needs(candidate.objective, conversionsOnly: conversionsOnly).click }
        let conversionNeeded = { (candidate: Candidate) in Self.needs(candidate.objective, conversionsOnly: conversionsOnly).conversion }
        // The click model's parts serve the other models when they hash alike: the hide model
        // scores every candidate.
        let clickParts = clickScorer.map {
            clickAdParts.parts(for: candidates, features: $0.predictor.features, needed: hideScorer == nil ? clickNeeded : nil, make: make)
        }
        let conversionParts = conversionScorer.map { scorer in
            clickScorer?.predictor.features.hasher == scorer.predictor.features.hasher
                ? clickParts!
                : conversionAdParts.parts(for: candidates, features: scorer.predictor.features, needed: conversionNeeded, make: make)
        }
        let hideParts = hideScorer.map { scorer in
            clickScorer?.predictor.features.hasher == scorer.predictor.features.hasher
                ? clickParts! : hideAdParts.parts(for: candidates, features: scorer.predictor.features, make: make)
        }
        var x = SparseFeatures()
        x.indices.reserveCapacity(128)
        x.values.reserveCapacity(128)
        let side = UserSide(user, at: context.at)
        var predictions: [Prediction] = []
        predictions.reserveCapacity(candidates.count)
        // Candidates are read in place (`candidates[i]`), not copied: a copy retains the ad.
        for i in candidates.indices {
            let (needsClick, needsConversion) = Self.needs(candidates[i].objective, conversionsOnly: conversionsOnly)
            guard needsClick || hideScorer != nil else {
                predictions.append(Prediction(click: 0, conversion: 0))
                continue
            }
            let rule = ((clickScorer == nil && needsClick) || (conversionScorer == nil && needsConversion))
                ? fallback.predict(candidates[i], user: user, context: context) : nil
            // What this user has to do with this ad: computed once, read by both models.
            let about = side.about(candidates[i].ad)
            let signals = ClickFeatures.CandidateSignals(
                impressions: candidates[i].impressions, clicks: candidates[i].clicks, ageHours: candidates[i].adAgeHours,
                seen: candidates[i].userCampaignImpressions,
                similarity: side.similarity(candidates[i].ad), recentTopicWeight: about.weight, recentTopicShare: about.share,
                recentTopicRank: about.rank)
            let pClick = needsClick ? (clickScorer?.score(clickParts![i], signals, &x) ?? rule!.click) : 0
            let pConversion = needsConversion ? (conversionScorer?.score(conversionParts![i], signals, &x) ?? rule!.conversion) : 0
            let pHide = hideScorer?.score(hideParts![i], signals, &x)
            predictions.append(Prediction(click: pClick, conversion: pConversion, hide: pHide))
        }
        return predictions
    }

    /// Which rates an ad of this objective needs: all for a full prediction; for ranking
    /// (`conversionsOnly`) only those its value uses — P(click) unless it is an awareness ad,
    /// P(conversion) for a conversion ad.
    @inline(__always)
    private static func needs(_ objective: Objective, conversionsOnly: Bool) -> (click: Bool, conversion: Bool) {
        (!conversionsOnly || objective != .awareness, !conversionsOnly || objective == .conversions)
    }

    /// One model's view of one request: the request's part of the features computed once, and
    /// for a linear model the sum of its weights. A class: scoring a candidate through an
    /// optional would otherwise copy it, retaining its arrays, once per candidate.
    private final class Scorer {
        let predictor: ClickPredictor
        let request: ClickFeatures.RequestPart
        /// The linear model's weights (empty for another kind) and the request's share of the margin.
        let weights: [Double]
        let requestMargin: Double

        init(_ predictor: ClickPredictor, _ input: ClickFeatureInput) {
            self.predictor = predictor
            self.request = predictor.features.requestPart(input)
            weights = predictor.linearWeights ?? []
            requestMargin = weights.isEmpty ? 0 : predictor.features.requestMargin(request, weights: weights)
        }

        /// A linear model sums the ad's and the candidate's weights onto the request's (no
        /// example is built); another model predicts from the encoded example.
        func score(_ ad: ClickFeatures.AdPart, _ signals: ClickFeatures.CandidateSignals, _ x: inout SparseFeatures) -> Double {
            let features = predictor.features
            if !weights.isEmpty {
                let margin = requestMargin + features.adMargin(ad, weights: weights) + features.candidateMargin(request, ad, signals, weights: weights)
                return predictor.predict(margin: margin)
            }
            features.encode(request, ad, signals, into: &x)
            return predictor.predict(x)
        }
    }
}

/// The ad's part of the features (ids, format, caption words) per ad version, for one feature
/// hash: computed once, not once per request. Kept by ad state slot (`Candidate.adSlot`), so a
/// lookup is one array read (the entry's ad, revision and part: 32 bytes together); an entry
/// made for another ad or version is replaced, and a model with another hash starts the cache
/// over. The value order scores every ad, so at a million ads the cache holds a million parts.
final class AdPartCache: Sendable {
    private struct Entry {
        var ad: Int64 = -1
        var revision: Int64 = -1
        var part = ClickFeatures.AdPart()
    }
    private struct Table {
        var hasher: FeatureHasher?
        var entries: [Entry] = []
    }
    private let table = Mutex(Table())

    /// The part of every candidate's ad that is `needed` (an empty part for the others), looked
    /// up under one lock; the missing ones are made from `make`'s input outside it and added.
    func parts(
        for candidates: [Candidate], features: ClickFeatures, needed: ((Candidate) -> Bool)? = nil, make: (Candidate) -> ClickFeatureInput
    ) -> [ClickFeatures.AdPart] {
        var parts = [ClickFeatures.AdPart](repeating: ClickFeatures.AdPart(), count: candidates.count)
        var missing: [Int] = []
        table.withLock { table in
            let sameHash = table.hasher == features.hasher
            if sameHash { Self.touch(candidates, table.entries) }
            // By index: `enumerated()` copied each candidate, retaining its ad.
            for i in candidates.indices {
                if let needed, !needed(candidates[i]) { continue }
                let slot = Int(candidates[i].adSlot)
                if sameHash, slot >= 0, slot < table.entries.count, table.entries[slot].ad == candidates[i].ad.id.rawValue,
                   table.entries[slot].revision == candidates[i].ad.revision {
                    parts[i] = table.entries[slot].part
                } else {
                    missing.append(i)
                }
            }
        }
        guard !missing.isEmpty else { return parts }
        for i in missing { parts[i] = features.adPart(make(candidates[i])) }
        table.withLock { table in
            if table.hasher != features.hasher {
                table.hasher = features.hasher
                table.entries = []
            }
            for i in missing where candidates[i].adSlot >= 0 {
                let slot = Int(candidates[i].adSlot)
                if slot >= table.entries.count {
                    // Grown by an eighth, at an exact capacity (appending would double it): slots
                    // grow only as the catalog does.
                    var grown: [Entry] = []
                    grown.reserveCapacity(max(slot + 1, table.entries.count + table.entries.count / 8))
                    grown += table.entries
                    grown += repeatElement(Entry(), count: grown.capacity - grown.count)
                    table.entries = grown
                }
                table.entries[slot] = Entry(ad: candidates[i].ad.id.rawValue, revision: candidates[i].ad.revision, part: parts[i])
            }
        }
        return parts
    }

    /// Touches the candidates' entries, then their parts' keys (`CacheTouch`), before the
    /// copies that retain them.
    private static func touch(_ candidates: [Candidate], _ entries: [Entry]) {
        // Lazy: each pass derives the valid slots again (from candidates already in cache)
        // rather than storing them, so the touch allocates nothing.
        let slots = candidates.indices.lazy.map { Int(candidates[$0].adSlot) }.filter { $0 >= 0 && $0 < entries.count }
        var folded: UInt64 = 0
        for slot in slots { folded ^= UInt64(bitPattern: entries[slot].ad) }
        for slot in slots { folded ^= UInt64(truncatingIfNeeded: entries[slot].part.keyCount) }
        CacheTouch.keep(folded)
    }
}
