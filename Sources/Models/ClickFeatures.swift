import Domain

/// Everything the click and conversion models may look at for one (user, ad, context), raw and
/// unhashed. Serving builds it for every candidate, logs it with every impression, and training
/// reads it back from the logs: one struct, one encoder, so training sees what serving saw.
public struct ClickFeatureInput: Sendable, Codable, Equatable {
    // The user.
    public var age: Int?
    public var gender: String?
    public var country: String?
    public var language: String?
    public var interests: [String]
    // The ad.
    public var adId: Int64
    public var campaignId: Int64
    public var advertiserId: Int64
    public var format: String
    public var objective: String
    public var caption: String
    /// Delivery counters of the ad when it was ranked (its historical CTR).
    public var adImpressions: Int64
    public var adClicks: Int64
    /// Logged for comparisons with the rule-based estimate (not model features); hides are
    /// missing from logs older than the hide model.
    public var adConversions: Int64
    public var adHides: Int64?
    /// Hours since the ad was created.
    public var adAgeHours: Int64
    /// How often this user saw the ad's campaign recently.
    public var userCampaignImpressions: Int
    /// Ads the user had hidden before this decision; nil in logs older than feature version 6.
    public var userHides: Int?
    // The context.
    public var device: String?
    public var hour: Int?
    /// Organic posts the user has scrolled past in this session.
    public var sessionPosition: Int?
    // The user with the ad.
    /// Cosine between the user's activity vector and the ad's content vector (both in the
    /// content encoder's text space); nil when either is missing.
    public var userAdSimilarity: Double?
    /// The decayed weight of the user's recent activity about this ad's product or company
    /// (`UserProfile.recentTopics`, decayed to the decision's time); nil when there is none.
    public var recentTopicWeight: Double?
    /// That weight's share of all the user's recent activity (1: all of it was about this
    /// product or company); nil when there is none.
    public var recentTopicShare: Double?
    /// Where the ad's product or company stands among the user's recent topics: 1 for the
    /// heaviest; nil when it is not among them.
    public var recentTopicRank: Int?
    /// Hours from the user's last activity to the decision; nil when there is none.
    public var hoursSinceActivity: Int?
    /// The ad's content vector and the user's activity vector, compressed (`ContentCode`).
    public var adContentCode: Int?
    public var userContentCode: Int?
    /// The user's activity vector and the ad's content vector as sketches (`VectorSketch`): the
    /// inputs of the candidate model's two towers, logged so that it trains on what serving saw.
    public var userSketch: VectorSketch?
    public var adSketch: VectorSketch?

    public init(
        age: Int?, gender: String?, country: String?, language: String?, interests: [String],
        adId: Int64, campaignId: Int64, advertiserId: Int64, format: String, objective: String, caption: String,
        adImpressions: Int64, adClicks: Int64, adConversions: Int64 = 0, adHides: Int64? = nil, adAgeHours: Int64, userCampaignImpressions: Int, userHides: Int? = nil,
        device: String?, hour: Int?, sessionPosition: Int?, userAdSimilarity: Double? = nil, recentTopicWeight: Double? = nil,
        recentTopicShare: Double? = nil, recentTopicRank: Int? = nil, hoursSinceActivity: Int? = nil, adContentCode: Int? = nil, userContentCode: Int? = nil,
        userSketch: VectorSketch? = nil, adSketch: VectorSketch? = nil
    ) {
        self.age = age
        self.gender = gender
        self.country = country
        self.language = language
        self.interests = interests
        self.adId = adId
        self.campaignId = campaignId
        self.advertiserId = advertiserId
        self.format = format
        self.objective = objective
        self.caption = caption
        self.adImpressions = adImpressions
        self.adClicks = adClicks
        self.adConversions = adConversions
        self.adHides = adHides
        self.adAgeHours = adAgeHours
        self.userCampaignImpressions = userCampaignImpressions
        self.userHides = userHides
        self.device = device
        self.hour = hour
        self.sessionPosition = sessionPosition
        self.userAdSimilarity = userAdSimilarity
        self.recentTopicWeight = recentTopicWeight
        self.recentTopicShare = recentTopicShare
        self.recentTopicRank = recentTopicRank
        self.hoursSinceActivity = hoursSinceActivity
        self.adContentCode = adContentCode
        self.userContentCode = userContentCode
        self.userSketch = userSketch
        self.adSketch = adSketch
    }
}

/// The one feature code path of the click models: per-field namespaces, hashed into
/// `hasher.dimension` buckets, plus crosses (user interest × caption word, interest × campaign,
/// interest × advertiser, age × advertiser, gender × format, device × format).
///
/// It works in three parts so that serving does the string work once: the request's part (user
/// and context) once per request, the ad's part once per ad version (cached), and the rest —
/// live counters and crosses — per candidate from 64-bit keys, without touching a string.
public struct ClickFeatures: Sendable, Equatable {
    /// Bumped whenever the encoding changes: a model trained on another version is refused.
    /// 2: caption tokens shorter than three characters are kept when they hold a digit
    /// ("product 3" and "product 4" differ).
    /// 3: the user·ad similarity of the activity and content vectors, in buckets of 0.1.
    /// 4: the weight of the user's recent activity about the ad's product or company, in
    /// octaves, and crossed with the advertiser.
    /// 5: the ad's content code, alone, crossed with the user's interests and with the user's
    /// activity code; hours since the user's last activity; recent-topic weights decayed to the
    /// decision's time, their share of all the user's recent activity in tenths, and the rank of
    /// the ad's product or company among the user's recent topics (1, 2, 3, later).
    /// 6: the ads the user had hidden, in octaves (how little they tolerate ads: what a hide
    /// model needs most); absent from inputs logged before it existed.
    public static let version = 6
    public let hasher: FeatureHasher
    public let set: FeatureSet
    /// The namespaces keyed per candidate, hashed once.
    private let ctr, age, seen, similarity, recent, share, rank: UInt64

    /// Which of the features a model reads (the encoding of each is the same).
    ///
    /// - `full`: all of them.
    /// - `compact`: no identifiers, caption words, interests, content codes or crosses — the
    ///   bias, the request's coarse context (age, gender, country, language, device, hour,
    ///   session depth, hours since the last activity, hides) and the per-candidate signals (historical CTR, ad age,
    ///   times seen, user·ad similarity, recent-topic weight, share and rank): a few dozen
    ///   weights, which a few hundred clicks can learn, where the full set's sparse weights
    ///   still add noise about as fast as signal.
    ///
    /// The trainer uses `TrainingConfiguration.featureSet` (full by default) or, with
    /// `chooseFeatureSet`, switches to the other on a clear win on the examples after those it
    /// learns; the model's metadata records the set.
    public enum FeatureSet: String, Sendable, Codable, CaseIterable {
        case full, compact
    }

    public init(hasher: FeatureHasher, set: FeatureSet = .full) {
        self.hasher = hasher
        self.set = set
        ctr = hasher.namespaceSeed("a.ctr")
        age = hasher.namespaceSeed("a.age")
        seen = hasher.namespaceSeed("x.seen")
        similarity = hasher.namespaceSeed("x.similarity")
        recent = hasher.namespaceSeed("x.recent")
        share = hasher.namespaceSeed("x.share")
        rank = hasher.namespaceSeed("x.rank")
    }

    /// The request's part: the user and the context, the same for every candidate.
    public struct RequestPart: Sendable, Equatable {
        /// The coarse context: all the compact set reads of the request (the full set adds the
        /// interests and the activity code).
        var context: [UInt64] = []
        var interests: [UInt64] = []
        var ageBucket: UInt64 = 0
        var gender: UInt64 = 0
        var device: UInt64 = 0
        var contentCode: UInt64?
    }

    /// The ad's part: ids, format, objective and caption words, the same for every request. One
    /// array of keys (a cached part is one allocation to reach): the ad, campaign, advertiser,
    /// format and objective, then the caption's words, then the content code if there is one.
    public struct AdPart: Sendable {
        /// No features: a placeholder for an ad a model will not score.
        public init() {}
        fileprivate(set) var keys: [UInt64] = []
        // 16 bytes in all (a cache keeps one per ad): the content code, when there is one, is
        // the last key.
        fileprivate var words: Int32 = 0
        fileprivate var hasContentCode = false
        var wordCount: Int { Int(words) }
        var contentCode: UInt64? { hasContentCode ? keys.last : nil }
        static let wordStart = 5
        /// How many keys the part holds (reading it loads the keys' first line).
        public var keyCount: Int { keys.count }
        var campaign: UInt64 { keys.count > 1 ? keys[1] : 0 }
        var advertiser: UInt64 { keys.count > 2 ? keys[2] : 0 }
        var format: UInt64 { keys.count > 3 ? keys[3] : 0 }
    }

    public func requestPart(_ input: ClickFeatureInput) -> RequestPart {
        var part = RequestPart()
        part.ageBucket = hasher.key(namespace: "u.age", value: input.age.map(Self.ageBucket) ?? "unknown")
        part.gender = hasher.key(namespace: "u.gender", value: input.gender ?? "unknown")
        part.device = hasher.key(namespace: "c.device", value: input.device ?? "unknown")
        part.context = [part.ageBucket, part.gender, part.device]
        if let country = input.country { part.context.append(hasher.key(namespace: "u.country", value: country)) }
        if let language = input.language { part.context.append(hasher.key(namespace: "u.language", value: language)) }
        part.interests = input.interests.map { hasher.key(namespace: "u.interest", value: $0) }
        part.context.append(hasher.key(namespace: "c.hour", value: Int64(input.hour ?? -1)))
        part.context.append(hasher.key(namespace: "c.depth", value: Self.log2Bucket(Int64(input.sessionPosition ?? 0))))
        part.context.append(hasher.key(namespace: "u.since", value: input.hoursSinceActivity.map { Self.log2Bucket(Int64($0)) } ?? -1))
        if let hides = input.userHides { part.context.append(hasher.key(namespace: "u.hides", value: Self.log2Bucket(Int64(hides)))) }
        part.contentCode = input.userContentCode.map { hasher.key(namespace: "u.content", value: Int64($0)) }
        return part
    }

    public func adPart(_ input: ClickFeatureInput) -> AdPart {
        var part = AdPart()
        let words = Self.words(input.caption)
        part.keys = [
            hasher.key(namespace: "a.ad", value: input.adId),
            hasher.key(namespace: "a.campaign", value: input.campaignId),
            hasher.key(namespace: "a.advertiser", value: input.advertiserId),
            hasher.key(namespace: "a.format", value: input.format),
            hasher.key(namespace: "a.objective", value: input.objective),
        ]
        part.keys.reserveCapacity(AdPart.wordStart + words.count + 1)
        for word in words { part.keys.append(hasher.key(namespace: "a.word", value: word)) }
        part.words = Int32(words.count)
        if let code = input.adContentCode {
            part.keys.append(hasher.key(namespace: "a.content", value: Int64(code)))
            part.hasContentCode = true
        }
        return part
    }

    /// What varies per candidate besides the ad: its live counters and what this user has to do
    /// with it.
    public struct CandidateSignals: Sendable {
        public var impressions: Int64
        public var clicks: Int64
        public var ageHours: Int64
        public var seen: Int
        public var similarity: Double?
        public var recentTopicWeight: Double?
        public var recentTopicShare: Double?
        public var recentTopicRank: Int?

        public init(
            impressions: Int64, clicks: Int64, ageHours: Int64, seen: Int, similarity: Double?, recentTopicWeight: Double?, recentTopicShare: Double?,
            recentTopicRank: Int?
        ) {
            self.impressions = impressions
            self.clicks = clicks
            self.ageHours = ageHours
            self.seen = seen
            self.similarity = similarity
            self.recentTopicWeight = recentTopicWeight
            self.recentTopicShare = recentTopicShare
            self.recentTopicRank = recentTopicRank
        }
    }

    /// The example for one candidate: bias, request and ad parts, the ad's live counters, and
    /// the crosses. Works from 64-bit keys only: no strings, no allocation once `x` has grown.
    public func encode(_ request: RequestPart, _ ad: AdPart, _ signals: CandidateSignals, into x: inout SparseFeatures) {
        x.indices.removeAll(keepingCapacity: true)
        x.values.removeAll(keepingCapacity: true)
        emitRequest(request, into: &x)
        emitAd(ad, into: &x)
        emitCandidate(request, ad, signals, into: &x)
    }

    /// A linear model's margin (Σ weights of the example's features, `weights` indexed by slot)
    /// in three sums, so that a ranker scoring many candidates for one request adds the
    /// request's features once: `requestMargin` + `adMargin` + `candidateMargin` is the margin
    /// of `encode`'s example, up to the order of the additions.
    public func requestMargin(_ request: RequestPart, weights: [Double]) -> Double {
        Self.margin(weights) { emitRequest(request, into: &$0) }
    }

    public func adMargin(_ ad: AdPart, weights: [Double]) -> Double {
        Self.margin(weights) { emitAd(ad, into: &$0) }
    }

    public func candidateMargin(_ request: RequestPart, _ ad: AdPart, _ signals: CandidateSignals, weights: [Double]) -> Double {
        Self.margin(weights) { emitCandidate(request, ad, signals, into: &$0) }
    }

    /// The weights of what `emit` lists, summed.
    @inline(__always)
    private static func margin(_ weights: [Double], _ emit: (inout MarginSum) -> Void) -> Double {
        weights.withUnsafeBufferPointer { w in
            var sum = MarginSum(weights: w)
            emit(&sum)
            return sum.total
        }
    }

    // The one list of features, in three sections; `encode` and the margins read the same code.

    /// The bias and the request's features.
    @inline(__always)
    private func emitRequest<Sink: FeatureSink>(_ request: RequestPart, into sink: inout Sink) {
        sink.add(hasher.biasIndex)
        for key in request.context { sink.add(hasher.slot(key)) }
        guard set == .full else { return }
        for key in request.interests { sink.add(hasher.slot(key)) }
        if let code = request.contentCode { sink.add(hasher.slot(code)) }
    }

    /// The ad's own features.
    @inline(__always)
    private func emitAd<Sink: FeatureSink>(_ ad: AdPart, into sink: inout Sink) {
        guard set == .full else { return }
        for key in ad.keys { sink.add(hasher.slot(key)) }
    }

    /// The live counters, the user·ad signals and the crosses.
    @inline(__always)
    private func emitCandidate<Sink: FeatureSink>(_ request: RequestPart, _ ad: AdPart, _ signals: CandidateSignals, into sink: inout Sink) {
        sink.add(hasher.slot(hasher.key(namespaceSeed: ctr, value: Self.ctrBucket(impressions: signals.impressions, clicks: signals.clicks))))
        sink.add(hasher.slot(hasher.key(namespaceSeed: age, value: Self.ageBucket(hours: signals.ageHours))))
        sink.add(hasher.slot(hasher.key(namespaceSeed: seen, value: Int64(min(signals.seen, 8)))))
        sink.add(hasher.slot(hasher.key(namespaceSeed: similarity, value: Self.similarityBucket(signals.similarity))))
        let recent = hasher.key(namespaceSeed: self.recent, value: Self.weightBucket(signals.recentTopicWeight))
        sink.add(hasher.slot(recent))
        sink.add(hasher.slot(hasher.key(namespaceSeed: share, value: Self.shareBucket(signals.recentTopicShare))))
        sink.add(hasher.slot(hasher.key(namespaceSeed: rank, value: Int64(min(signals.recentTopicRank ?? 0, 4)))))
        guard set == .full else { return }
        let advertiser = ad.advertiser, campaign = ad.campaign, format = ad.format
        ad.keys.withUnsafeBufferPointer { keys in
            sink.add(hasher.slot(hasher.cross(recent, advertiser)))
            if let adCode = ad.contentCode {
                if let userCode = request.contentCode { sink.add(hasher.slot(hasher.cross(userCode, adCode))) }
                for interest in request.interests { sink.add(hasher.slot(hasher.cross(interest, adCode))) }
            }
            let words = AdPart.wordStart..<(AdPart.wordStart + ad.wordCount)
            for interest in request.interests {
                for j in words { sink.add(hasher.slot(hasher.cross(interest, keys[j]))) }
                sink.add(hasher.slot(hasher.cross(interest, advertiser)))
                sink.add(hasher.slot(hasher.cross(interest, campaign)))
            }
            sink.add(hasher.slot(hasher.cross(request.ageBucket, advertiser)))
            sink.add(hasher.slot(hasher.cross(request.gender, format)))
            sink.add(hasher.slot(hasher.cross(request.device, format)))
        }
    }

    /// The same encoding from the raw input alone (training, evaluation, tests).
    public func encode(_ input: ClickFeatureInput, into x: inout SparseFeatures) {
        encode(requestPart(input), adPart(input), CandidateSignals(input), into: &x)
    }

    /// Octaves of a weight: ≤ 0.25, ≤ 0.5, ≤ 1, ≤ 2, … up to 64 and more; -100 when there is none.
    static func weightBucket(_ weight: Double?) -> Int64 {
        guard let weight, weight.isFinite, weight > 0 else { return -100 }
        return Int64(min(max(log2(weight).rounded(.up), -2), 6))
    }

    /// Tenths of a share, 0…10; -1 when there is none.
    static func shareBucket(_ share: Double?) -> Int64 {
        guard let share, share.isFinite, share > 0 else { return -1 }
        return Int64((min(share, 1) * 10).rounded(.down))
    }

    /// Tenths of the cosine, -10…10; -100 when there is none (no activity or no ad vector).
    static func similarityBucket(_ similarity: Double?) -> Int64 {
        guard let similarity, similarity.isFinite else { return -100 }
        return Int64((min(max(similarity, -1), 1) * 10).rounded(.down))
    }

    public func encode(_ input: ClickFeatureInput) -> SparseFeatures {
        var x = SparseFeatures()
        encode(input, into: &x)
        return x
    }

    static func ageBucket(_ age: Int) -> String {
        switch age {
        case ..<18: "<18"
        case 18..<25: "18-24"
        case 25..<35: "25-34"
        case 35..<45: "35-44"
        case 45..<55: "45-54"
        default: "55+"
        }
    }

    /// New (under a day), this week, this month, older: coarse, so the feature says how fresh
    /// the ad is rather than what time it is.
    static func ageBucket(hours: Int64) -> Int64 {
        switch hours {
        case ..<24: 0
        case ..<(7 * 24): 1
        case ..<(30 * 24): 2
        default: 3
        }
    }

    /// 0, 1, 2–3, 4–7, …
    static func log2Bucket(_ v: Int64) -> Int64 { v <= 0 ? 0 : Int64(Int64.bitWidth - v.leadingZeroBitCount) }

    /// The ad's smoothed historical CTR, in half-octave buckets; ads with little history share one.
    static func ctrBucket(impressions: Int64, clicks: Int64) -> Int64 {
        guard impressions >= 100 else { return -1 }
        let ctr = (Double(clicks) + 0.5) / (Double(impressions) + 1)
        return Int64((2 * log2(ctr)).rounded(.down))
    }

    /// Lowercased words of a caption, letters and digits only: words of 3 characters or more,
    /// and shorter tokens that hold a digit (model numbers, sizes, "3"), which carry meaning where
    /// "a" or "of" do not.
    static func words(_ caption: String) -> [Substring] {
        caption.lowercased().split { !$0.isLetter && !$0.isNumber }.filter { $0.count >= 3 || $0.contains(where: \.isNumber) }
    }
}

extension ClickFeatures.CandidateSignals {
    /// The signals a logged input recorded.
    public init(_ input: ClickFeatureInput) {
        self.init(
            impressions: input.adImpressions, clicks: input.adClicks, ageHours: input.adAgeHours, seen: input.userCampaignImpressions,
            similarity: input.userAdSimilarity, recentTopicWeight: input.recentTopicWeight, recentTopicShare: input.recentTopicShare,
            recentTopicRank: input.recentTopicRank)
    }
}

/// Where the feature list goes: an example's indices, or a linear model's running margin.
protocol FeatureSink {
    mutating func add(_ slot: UInt32)
}

extension SparseFeatures: FeatureSink {
    @inline(__always)
    mutating func add(_ slot: UInt32) { append(slot) }
}

struct MarginSum: FeatureSink {
    let weights: UnsafeBufferPointer<Double>
    var total = 0.0
    @inline(__always)
    mutating func add(_ slot: UInt32) { total += weights[Int(slot)] }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
