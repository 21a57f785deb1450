import Domain
import Models
import Serving
import Synchronization

extension ClickFeatureInput {
    /// What the models see for one candidate: the one place serving fills the feature input,
    /// and what the impression logs keep.
    public init(candidate: Candidate, user: UserProfile?, context: FeedContext) {
        self.init(
            age: user?.age, gender: user?.gender, country: user?.country, language: user?.language, interests: user?.interests ?? [],
            adId: candidate.adID.rawValue, campaignId: candidate.campaignID.rawValue, advertiserId: candidate.advertiserID.rawValue,
            format: candidate.ad.format.rawValue, objective: candidate.objective.rawValue, caption: candidate.ad.caption,
            adImpressions: candidate.impressions, adClicks: candidate.clicks, adConversions: candidate.conversions, adAgeHours: candidate.adAgeHours,
            userCampaignImpressions: candidate.userCampaignImpressions,
            device: context.device, hour: context.hour, sessionPosition: context.sessionPosition,
            userAdSimilarity: Self.similarity(user, candidate.ad), hoursSinceActivity: Self.hoursSinceActivity(user, at: context.at),
            adContentCode: ContentCode.of(candidate.ad.embedding), userContentCode: ContentCode.of(user?.activityVector))
        (recentTopicWeight, recentTopicShare, recentTopicRank) = RecentTopics(user, at: context.at)?.about(candidate.ad) ?? (nil, nil, nil)
    }

    static func hoursSinceActivity(_ user: UserProfile?, at now: Timestamp?) -> Int? {
        guard let from = user?.activityVectorAt, let now else { return nil }
        return Int(max(0, now.milliseconds - from.milliseconds) / Timestamp.millisecondsPerHour)
    }

    /// Cosine of the user's activity vector and the ad's content vector, if both exist.
    static func similarity(_ user: UserProfile?, _ ad: Ad) -> Double? {
        guard let user = user?.activityVector, let ad = ad.embedding, user.count == ad.count else { return nil }
        return VectorMath.cosine(user, ad)
    }
}

/// A user's recent topics as they stand at a decision: decayed from the profile's time to the
/// decision's, with their total and the three heaviest, computed once per request.
struct RecentTopics {
    let topics: [String: Double]
    let decay: Double
    let total: Double
    let top: [String]

    init?(_ user: UserProfile?, at now: Timestamp?) {
        guard let user, !user.recentTopics.isEmpty else { return nil }
        topics = user.recentTopics
        decay = ActivityVector.topicDecay(from: user.activityVectorAt, to: now)
        total = topics.values.reduce(0) { $0 + max(0, $1) }
        top = topics.filter { $0.value > 0 }.sorted { ($0.value, $1.key) > ($1.value, $0.key) }.prefix(3).map(\.key)
    }

    /// The decayed weight of what the user did about the ad's product or company, its share of
    /// all their recent activity, and the better rank of the two among the user's topics (4:
    /// after the third); nils when there is none.
    func about(_ ad: Ad) -> (weight: Double?, share: Double?, rank: Int?) {
        var weight = 0.0
        var rank = Int.max
        for name in ActivityVector.names(of: ad) {
            guard let w = topics[name] else { continue }
            weight += w
            rank = min(rank, (top.firstIndex(of: name) ?? 3) + 1)
        }
        guard weight > 0, total > 0 else { return (nil, nil, nil) }
        return (weight * decay, min(1, weight / total), rank)
    }
}

/// Ranks by calibrated model predictions: P(click) from the click model, P(conversion | click)
/// from the conversion model. Where a model is missing (before the first training) it falls
/// back to the rule-based estimate, so a new deployment serves from the first request.
public struct LearnedRanker: Ranker {
    public let click: ModelSlot
    public let conversion: ModelSlot
    public let fallback: RuleBasedRanker
    private let adParts = AdPartCache()

    public init(click: ModelSlot, conversion: ModelSlot, fallback: RuleBasedRanker = RuleBasedRanker()) {
        self.click = click
        self.conversion = conversion
        self.fallback = fallback
    }

    public var isUserIndependent: Bool { false }

    public func predict(_ candidate: Candidate, user: UserProfile?, context: FeedContext) -> Prediction {
        predict([candidate], user: user, context: context)[0]
    }

    public func predict(_ candidates: [Candidate], user: UserProfile?, context: FeedContext) -> [Prediction] {
        let clickModel = click.predictor
        let conversionModel = conversion.predictor
        guard clickModel != nil || conversionModel != nil, let first = candidates.first else {
            return fallback.predict(candidates, user: user, context: context)
        }
        let request = ClickFeatureInput(candidate: first, user: user, context: context)
        let clickScorer = clickModel.map { Scorer($0, request, adParts) }
        let conversionScorer = conversionModel.map { Scorer($0, request, adParts) }
        var x = SparseFeatures()
        x.indices.reserveCapacity(128)
        x.values.reserveCapacity(128)
        let recent = RecentTopics(user, at: context.at)
        return candidates.map { candidate in
            let rule = (clickScorer == nil || conversionScorer == nil) ? fallback.predict(candidate, user: user, context: context) : nil
            // What this user has to do with this ad: computed once, read by both models.
            let about = recent?.about(candidate.ad)
            let signals = UserAdSignals(
                similarity: ClickFeatureInput.similarity(user, candidate.ad), recentTopicWeight: about?.weight, recentTopicShare: about?.share,
                recentTopicRank: about?.rank)
            let pClick = clickScorer?.score(candidate, signals, user, context, &x) ?? rule!.click
            let pConversion = conversionScorer?.score(candidate, signals, user, context, &x) ?? rule!.conversion
            return Prediction(click: pClick, conversion: pConversion)
        }
    }

    private struct UserAdSignals {
        var similarity: Double?
        var recentTopicWeight: Double?
        var recentTopicShare: Double?
        var recentTopicRank: Int?
    }

    /// One model's view of one request: the request's part of the features computed once.
    private struct Scorer {
        let predictor: ClickPredictor
        let request: ClickFeatures.RequestPart
        let adParts: AdPartCache

        init(_ predictor: ClickPredictor, _ input: ClickFeatureInput, _ adParts: AdPartCache) {
            self.predictor = predictor
            self.request = predictor.features.requestPart(input)
            self.adParts = adParts
        }

        func score(_ candidate: Candidate, _ signals: UserAdSignals, _ user: UserProfile?, _ context: FeedContext, _ x: inout SparseFeatures) -> Double {
            let features = predictor.features
            let ad = adParts.part(for: candidate.ad, features: features) {
                features.adPart(ClickFeatureInput(candidate: candidate, user: user, context: context))
            }
            features.encode(request, ad, impressions: candidate.impressions, clicks: candidate.clicks, ageHours: candidate.adAgeHours,
                seen: candidate.userCampaignImpressions, similarity: signals.similarity, recentTopicWeight: signals.recentTopicWeight,
                recentTopicShare: signals.recentTopicShare, recentTopicRank: signals.recentTopicRank, into: &x)
            return predictor.predict(x)
        }
    }
}

/// The ad's part of the features (ids, format, caption words) per ad version and hash: computed
/// once, not once per request.
final class AdPartCache: Sendable {
    private struct Key: Hashable {
        var ad: Int64
        var revision: Int64
        var bits: Int
        var seed: UInt64
    }
    private let parts = Mutex<[Key: ClickFeatures.AdPart]>([:])

    func part(for ad: Ad, features: ClickFeatures, make: () -> ClickFeatures.AdPart) -> ClickFeatures.AdPart {
        let key = Key(ad: ad.id.rawValue, revision: ad.revision, bits: features.hasher.bits, seed: features.hasher.seed)
        if let cached = parts.withLock({ $0[key] }) { return cached }
        let part = make()
        parts.withLock { cache in
            if cache.count > 4_000_000 { cache.removeAll() }  // bounded: old ad versions and hashes fall out
            cache[key] = part
        }
        return part
    }
}
