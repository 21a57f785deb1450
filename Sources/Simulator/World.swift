import Domain
import Storage

/// The simulated world, hidden from AdServe: users with latent interests, a tolerance for ads,
/// a visit habit and a satisfaction that ads can wear down; ads with a latent topic, a quality
/// and an observable caption that reflects the topic only noisily. AdServe sees the catalog and
/// the profiles (`batch`), never the latent state.
///
/// Two kinds of world share the generator. In `topics` (the default) the latent dimensions are
/// eight topics: users state some of their interests, captions carry the topic's words. In
/// `products` they are the ten products: a user's taste is for products, no user states an
/// interest, and the only clue is what the feed backend reports they viewed (`Activity` with the
/// product as its topic); captions say which product an ad sells, their other words are noise.
public struct World: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case topics, products
    }

    public struct Size: Sendable, Equatable {
        public var users: Int
        public var ads: Int
        public var adsPerCampaign: Int
        public var campaignsPerAdvertiser: Int
        /// Campaigns added on top of `ads`, starting on day `newCampaignDay` (0-based): the
        /// new ads whose learning the simulation measures.
        public var newCampaigns: Int
        public var newCampaignDay: Int

        public init(users: Int, ads: Int, adsPerCampaign: Int = 10, campaignsPerAdvertiser: Int = 10, newCampaigns: Int = 0, newCampaignDay: Int = 3) {
            self.users = max(1, users)
            self.ads = max(1, ads)
            self.adsPerCampaign = max(1, adsPerCampaign)
            self.campaignsPerAdvertiser = max(1, campaignsPerAdvertiser)
            self.newCampaigns = max(0, newCampaigns)
            self.newCampaignDay = max(0, newCampaignDay)
        }

        public var campaigns: Int { max(1, ads / adsPerCampaign) }
        /// The new campaigns a simulation measures unless told otherwise: 5% of the campaigns.
        public var usualNewCampaigns: Int { max(1, campaigns / 20) }
        public var advertisers: Int { max(1, campaigns / campaignsPerAdvertiser) }

        /// `serve --demo`: 1,000 advertisers × 10 campaigns × 10 ads, 100,000 users.
        public static let demo = Size(users: 100_000, ads: 100_000)
        /// `simulate` with no flags: 100,000 users, 10,000 ads in 1,000 campaigns, and 500 new
        /// ads in 50 campaigns from day 4. (Until 2026-12-06 it was 20,000 users and 2,000 ads:
        /// there two arms serving alike differ by about ±4% in revenue per user from the users
        /// alone, more than the ±3% an A/A test must show.)
        public static let simulation: Size = {
            var size = Size(users: 100_000, ads: 10_000)
            size.newCampaigns = size.usualNewCampaigns
            return size
        }()
    }

    /// Latent topics; each has an interest name users and campaigns use and caption words.
    public static let topics: [(interest: String, words: [String])] = [
        ("fitness", ["run", "gym", "strong", "sweat", "train", "muscle"]),
        ("travel", ["beach", "trip", "flight", "explore", "island", "hotel"]),
        ("food", ["taste", "recipe", "fresh", "spicy", "dinner", "bake"]),
        ("fashion", ["style", "wear", "outfit", "chic", "denim", "look"]),
        ("gaming", ["play", "level", "quest", "console", "squad", "win"]),
        ("music", ["beat", "song", "live", "bass", "tour", "vinyl"]),
        ("tech", ["fast", "smart", "battery", "screen", "app", "chip"]),
        ("pets", ["dog", "cat", "paw", "treat", "walk", "cuddle"]),
    ]
    public static let countries = ["us", "gb", "de", "fr", "br", "in", "jp", "mx", "ca", "au"]
    static let languageOfCountry = ["us": "en", "gb": "en", "de": "de", "fr": "fr", "br": "pt", "in": "en", "jp": "ja", "mx": "es", "ca": "en", "au": "en"]
    public static let devices = ["ios", "android", "web"]
    public static let products = ["sneakers", "headphones", "backpack", "serum", "watch", "coffee", "mat", "novel", "camera", "jacket"]

    public private(set) var size: Size
    public let seed: UInt64
    public let start: Timestamp
    public let kind: Kind
    /// The latent dimensions: topics' interest names, or product names.
    public let dimensionNames: [String]
    public var dimensions: Int { dimensionNames.count }
    /// Index of the first ad of the campaigns that start on `size.newCampaignDay`.
    public let firstNewAd: Int

    /// What AdServe is told: advertisers, campaigns, ads, users with their observable profiles.
    public private(set) var batch: ImportBatch
    /// Users, index i ↔ `UserID("u\(i + 1)")` (twins: see `twins(people:arms:)`).
    public private(set) var userIDs: [UserID]
    public private(set) var userLatent: [Float]
    public private(set) var userTolerance: [Double]
    public private(set) var userVisit: [Double]
    public private(set) var userContinue: [Double]
    public private(set) var userDevice: [String]
    public private(set) var userTopics: [Int]
    /// Ads, index i ↔ `AdID(i + 1)`.
    public let adLatent: [Float]
    /// The latent dimension each ad's campaign was made for (its topic or its product).
    public let adDimension: [Int]
    public let adQuality: [Double]
    public let adAdvertiser: [Int]
    /// Per advertiser: P(conversion | click) scale and mean conversion delay.
    public let advertiserConversionRate: [Double]
    public let advertiserConversionDelayHours: [Double]

    public init(size: Size, seed: UInt64, start: Timestamp, kind: Kind = .topics) {
        self.size = size
        self.seed = seed
        self.start = start
        self.kind = kind
        let names = kind == .topics ? Self.topics.map(\.interest) : Self.products
        dimensionNames = names
        var rng = SplitMix64(seed: seed)
        let k = names.count

        func gaussian() -> Float { Float(rng.gaussian()) }
        func latent(main: [(Int, Float)], noise: Float) -> [Float] {
            var v = (0..<k).map { _ in gaussian() * noise }
            for (topic, weight) in main { v[topic] += weight }
            let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
            return v.map { $0 / max(norm, 1e-6) }
        }
        /// Popular topics first: topic t drawn with weight 1 / (t + 2).
        func popularTopic() -> Int {
            let weights = (0..<k).map { 1.0 / Double($0 + 2) }
            var r = Double.random(in: 0..<weights.reduce(0, +), using: &rng)
            for (t, w) in weights.enumerated() {
                if r < w { return t }
                r -= w
            }
            return k - 1
        }

        var batch = ImportBatch()
        var advertiserTopic: [Int] = []
        var conversionRate: [Double] = []
        var conversionDelay: [Double] = []
        for a in 0..<size.advertisers {
            let name = "Brand \(a + 1)"
            batch.advertisers.append((Advertiser(id: AdvertiserID(Int64(a + 1)), name: name), keyHash: "sim-\(seed)-\(a + 1)"))
            advertiserTopic.append(popularTopic())
            conversionRate.append(Double.random(in: 0.03...0.15, using: &rng))
            conversionDelay.append(Double.random(in: 1...12, using: &rng))
        }

        var adLatent: [Float] = []
        var adQuality: [Double] = []
        var adAdvertiser: [Int] = []
        var adDimension: [Int] = []
        let campaigns = size.campaigns + size.newCampaigns
        adLatent.reserveCapacity(campaigns * size.adsPerCampaign * k)
        var adID: Int64 = 0
        var firstNewAd = 0
        for c in 0..<campaigns {
            let isNew = c >= size.campaigns
            if c == size.campaigns { firstNewAd = Int(adID) }
            let advertiser = c % size.advertisers
            let topic = Double.random(in: 0..<1, using: &rng) < 0.8 ? advertiserTopic[advertiser] : Int.random(in: 0..<k, using: &rng)
            let objective = Objective.allCases.randomElement(using: &rng) ?? .traffic
            let bid: Micros = switch objective {
            case .awareness: Int64.random(in: 2_000...8_000, using: &rng) * 1_000
            case .traffic: Int64.random(in: 300_000...1_500_000, using: &rng)
            case .conversions: Int64.random(in: 5_000_000...20_000_000, using: &rng)
            }
            let daily = Int64.random(in: 3...30, using: &rng) * 1_000_000
            var targeting = Targeting()
            let roll = Double.random(in: 0..<1, using: &rng)
            if roll < 0.3 {
                // No user of the products world states an interest: its campaigns target none.
                if kind == .topics { targeting.interests = [names[topic]] }
            } else if roll < 0.5 {
                targeting.countries = Array(Self.countries.shuffled(using: &rng).prefix(Int.random(in: 2...5, using: &rng)))
            } else if roll < 0.6 {
                let low = Int.random(in: 13...35, using: &rng)
                targeting.ageMin = low
                targeting.ageMax = low + Int.random(in: 15...40, using: &rng)
            }
            let cap = Double.random(in: 0..<1, using: &rng) < 0.4 ? FrequencyCap(impressions: Int.random(in: 2...6, using: &rng), perHours: 24) : nil
            let campaignID = CampaignID(Int64(c + 1))
            let company = batch.advertisers[advertiser].0.name
            let created = isNew ? start.adding(milliseconds: Int64(size.newCampaignDay) * Timestamp.millisecondsPerDay) : start
            batch.campaigns.append(
                Campaign(
                    id: campaignID, advertiserID: AdvertiserID(Int64(advertiser + 1)), name: "\(company) \(names[topic]) \(c + 1)",
                    objective: objective, bidMicros: bid, dailyBudgetMicros: daily, totalBudgetMicros: daily * Int64.random(in: 10...60, using: &rng),
                    startAt: isNew ? created : nil, targeting: targeting, frequencyCap: cap, createdAt: created))
            for _ in 0..<size.adsPerCampaign {
                adID += 1
                adLatent += latent(main: [(topic, 1)], noise: 0.35)
                adQuality.append(exp(Double(gaussian()) * 0.4))
                adAdvertiser.append(advertiser)
                adDimension.append(topic)
                // The caption reflects the topic noisily: each word from it with probability 0.75.
                // In the products world the words are noise and the product is the campaign's.
                let words = (0..<3).map { _ in
                    let t = kind == .topics && Double.random(in: 0..<1, using: &rng) < 0.75 ? topic : Int.random(in: 0..<Self.topics.count, using: &rng)
                    return Self.topics[t].words.randomElement(using: &rng) ?? ""
                }
                let product = kind == .products ? names[topic] : Self.products.randomElement(using: &rng) ?? "thing"
                let format: AdFormat = Double.random(in: 0..<1, using: &rng) < 0.35 ? .video : .image
                let media = format == .video
                    ? ["https://cdn.adserve.example/ads/\(adID)/video.mp4", "https://cdn.adserve.example/ads/\(adID)/poster.jpg"]
                    : ["https://cdn.adserve.example/ads/\(adID)/image.jpg"]
                batch.ads.append(
                    Ad(
                        id: AdID(adID), campaignID: campaignID, format: format, mediaURLs: media,
                        caption: "\(words.joined(separator: " ")) \(product)", company: company, product: product,
                        description: "\(company) \(product): \(words.joined(separator: ", "))", createdAt: created))
            }
        }

        var userIDs: [UserID] = []
        var userLatent: [Float] = []
        var tolerance: [Double] = []
        var visit: [Double] = []
        var cont: [Double] = []
        var device: [String] = []
        var topics: [Int] = []
        userIDs.reserveCapacity(size.users)
        userLatent.reserveCapacity(size.users * k)
        batch.users.reserveCapacity(size.users)
        for u in 0..<size.users {
            let id = UserID(trusted: "u\(u + 1)")
            let first = popularTopic()
            let second = Int.random(in: 0..<k, using: &rng)
            userLatent += latent(main: [(first, 0.8), (second, 0.5)], noise: 0.25)
            tolerance.append(Double.random(in: 0.5...1.5, using: &rng))
            visit.append(Double.random(in: 0.3...0.9, using: &rng))
            cont.append(Double.random(in: 0.6...0.85, using: &rng))
            device.append(Self.devices[Int.random(in: 0..<10, using: &rng) < 5 ? 1 : Int.random(in: 0...2, using: &rng)])
            topics.append(first)
            // Observable interests: the latent ones, noisily, plus sometimes an unrelated one (none
            // in the products world).
            var interests: [String] = []
            if Double.random(in: 0..<1, using: &rng) < 0.8 { interests.append(names[first]) }
            if second != first, Double.random(in: 0..<1, using: &rng) < 0.5 { interests.append(names[second]) }
            if Double.random(in: 0..<1, using: &rng) < 0.2 { interests.append(names[Int.random(in: 0..<k, using: &rng)]) }
            if kind == .products { interests = [] }
            let country = Self.countries[min(Self.countries.count - 1, Int(-log2(Double.random(in: 0.001..<1, using: &rng)) * 1.5))]
            let genderRoll = Int.random(in: 0..<20, using: &rng)
            // Some history: organic activity on the user's latent topics.
            for _ in 0..<2 {
                let topic = Double.random(in: 0..<1, using: &rng) < 0.7 ? first : second
                let type = [ActivityType.like, .view, .comment, .post].randomElement(using: &rng) ?? .view
                batch.activities.append(Activity(
                    userID: id, type: kind == .products ? .view : type, topics: [names[topic]],
                    at: start.adding(milliseconds: -Int64.random(in: 0..<(7 * Timestamp.millisecondsPerDay), using: &rng))))
            }
            batch.users.append(
                UserProfile(
                    id: id, age: Int.random(in: 13...70, using: &rng), gender: genderRoll == 0 ? "other" : genderRoll % 2 == 0 ? "female" : "male",
                    country: country, language: Self.languageOfCountry[country], interests: Array(Set(interests)).sorted()))
            userIDs.append(id)
        }

        self.batch = batch
        self.userIDs = userIDs
        self.userLatent = userLatent
        self.userTolerance = tolerance
        self.userVisit = visit
        self.userContinue = cont
        self.userDevice = device
        self.userTopics = topics
        self.adLatent = adLatent
        self.adDimension = adDimension
        self.firstNewAd = size.newCampaigns > 0 ? firstNewAd : adLatent.count / k
        self.adQuality = adQuality
        self.adAdvertiser = adAdvertiser
        self.advertiserConversionRate = conversionRate
        self.advertiserConversionDelayHours = conversionDelay
    }

    /// The world's first `people` users, each once per arm: user `a × people + p` is person `p`'s
    /// twin in arm `a`, with the person's latent traits, profile and history under an id of its
    /// own (`u<p+1>` in the first arm, `u<p+1>-<a+1>` in arm `a + 1`), so the server keeps each
    /// twin's caps, hides and activity apart. The advertisers, campaigns and ads are this world's.
    /// The paired assignment of `Simulation.Assignment`.
    public func twins(people: Int, arms: Int) -> World {
        precondition(people >= 1 && people <= userIDs.count && arms >= 1, "twins of 1...\(userIDs.count) people in at least one arm")
        let k = dimensions
        var world = self
        func repeated<T>(_ values: [T], width: Int = 1) -> [T] {
            (0..<arms).flatMap { _ in values[0..<(people * width)] }
        }
        let ids = (0..<arms).flatMap { arm in
            (0..<people).map { p in arm == 0 ? userIDs[p] : UserID(trusted: "\(userIDs[p].rawValue)-\(arm + 1)") }
        }
        let person = Dictionary(uniqueKeysWithValues: userIDs[0..<people].enumerated().map { ($1, $0) })
        world.size.users = people * arms
        world.userIDs = ids
        world.userLatent = repeated(userLatent, width: k)
        world.userTolerance = repeated(userTolerance)
        world.userVisit = repeated(userVisit)
        world.userContinue = repeated(userContinue)
        world.userDevice = repeated(userDevice)
        world.userTopics = repeated(userTopics)
        let profiles = batch.users.compactMap { profile in person[profile.id].map { ($0, profile) } }
        let activities = batch.activities.compactMap { activity in person[activity.userID].map { ($0, activity) } }
        world.batch.users = (0..<arms).flatMap { arm in
            profiles.map { p, profile in
                var twin = profile
                twin.id = ids[arm * people + p]
                return twin
            }
        }
        world.batch.activities = (0..<arms).flatMap { arm in
            activities.map { p, activity in
                var twin = activity
                twin.userID = ids[arm * people + p]
                return twin
            }
        }
        return world
    }

    /// Cosine affinity of a user and an ad, in [-1, 1] (both latent vectors are unit length).
    public func affinity(user: Int, ad: Int) -> Double {
        let k = dimensions
        var acc: Float = 0
        for d in 0..<k { acc += userLatent[user * k + d] * adLatent[ad * k + d] }
        return Double(acc)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
