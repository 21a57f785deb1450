import Domain
import Storage

/// Generates a seeded demo world — advertisers, campaigns (objectives, bids, budgets,
/// targeting, caps), ads with captions and media, and users with demographics, interests and
/// some activity — and loads it into a store in one transaction.
public struct WorldGenerator: Sendable {
    public struct Size: Sendable, Equatable {
        public var advertisers: Int
        public var campaignsPerAdvertiser: Int
        public var adsPerCampaign: Int
        public var users: Int

        public init(advertisers: Int, campaignsPerAdvertiser: Int = 10, adsPerCampaign: Int = 10, users: Int) {
            self.advertisers = max(1, advertisers)
            self.campaignsPerAdvertiser = max(1, campaignsPerAdvertiser)
            self.adsPerCampaign = max(1, adsPerCampaign)
            self.users = max(0, users)
        }

        /// The demo: 1,000 advertisers × 10 campaigns × 10 ads, 100,000 users.
        public static let demo = Size(advertisers: 1_000, users: 100_000)

        /// A world with about `ads` ads (10 per campaign, 10 campaigns per advertiser).
        public static func ads(_ ads: Int, users: Int) -> Size {
            Size(advertisers: max(1, ads / 100), users: users)
        }
    }

    public static let countries = ["us", "gb", "de", "fr", "es", "it", "br", "mx", "in", "jp", "kr", "ca", "au", "nl", "se", "pl", "tr", "id", "ng", "za"]
    public static let languageOfCountry = [
        "us": "en", "gb": "en", "de": "de", "fr": "fr", "es": "es", "it": "it", "br": "pt", "mx": "es", "in": "en", "jp": "ja",
        "kr": "ko", "ca": "en", "au": "en", "nl": "nl", "se": "sv", "pl": "pl", "tr": "tr", "id": "id", "ng": "en", "za": "en",
    ]
    public static let interests = [
        "fashion", "travel", "food", "fitness", "gaming", "music", "movies", "books", "tech", "photography", "beauty", "pets",
        "cars", "home", "gardening", "parenting", "finance", "sports", "football", "basketball", "running", "cycling", "yoga",
        "cooking", "coffee", "wine", "art", "design", "diy", "outdoors", "camping", "skincare", "sneakers", "jewelry", "crypto",
        "education", "health", "science", "comedy", "dance",
    ]
    public static let genders = ["female", "male", "other"]
    public static let devices = ["ios", "android", "web"]

    public let size: Size
    public let seed: UInt64
    public let start: Timestamp

    public init(size: Size, seed: UInt64, start: Timestamp) {
        self.size = size
        self.seed = seed
        self.start = start
    }

    /// Builds the whole world in memory. Advertiser keys are random and not kept: demo
    /// advertisers are reached with the admin key.
    public func generate() -> CatalogBatch {
        var rng = SplitMix64(seed: seed)
        var batch = CatalogBatch()
        batch.advertisers.reserveCapacity(size.advertisers)
        batch.campaigns.reserveCapacity(size.advertisers * size.campaignsPerAdvertiser)
        batch.ads.reserveCapacity(size.advertisers * size.campaignsPerAdvertiser * size.adsPerCampaign)
        let products = ["sneakers", "headphones", "backpack", "lipstick", "smartwatch", "coffee beans", "yoga mat", "novel", "camera", "sunglasses", "game", "jacket"]
        var campaignID: Int64 = 0
        var adID: Int64 = 0
        for a in 1...size.advertisers {
            let company = "Brand \(a)"
            let focus = Array(Self.interests.shuffled(using: &rng).prefix(3))
            batch.advertisers.append((Advertiser(id: AdvertiserID(Int64(a)), name: company), keyHash: "demo-\(a)-\(rng.next())"))
            for c in 1...size.campaignsPerAdvertiser {
                campaignID += 1
                let objective = Objective.allCases.randomElement(using: &rng)!
                let bid: Micros = switch objective {
                case .awareness: Int64.random(in: 2_000_000...20_000_000, using: &rng)
                case .traffic: Int64.random(in: 200_000...3_000_000, using: &rng)
                case .conversions: Int64.random(in: 5_000_000...50_000_000, using: &rng)
                }
                let daily = Int64.random(in: 50...2_000, using: &rng) * 1_000_000
                var targeting = Targeting()
                if Double.random(in: 0..<1, using: &rng) < 0.6 {
                    if Bool.random(using: &rng) { targeting.countries = Array(Self.countries.shuffled(using: &rng).prefix(Int.random(in: 1...3, using: &rng))) }
                    if Bool.random(using: &rng) {
                        let low = Int.random(in: 13...40, using: &rng)
                        targeting.ageMin = low
                        targeting.ageMax = low + Int.random(in: 10...40, using: &rng)
                    }
                    if Double.random(in: 0..<1, using: &rng) < 0.2 { targeting.genders = [Self.genders.randomElement(using: &rng)!] }
                    if Bool.random(using: &rng) { targeting.interests = Array(focus.prefix(Int.random(in: 1...3, using: &rng))) }
                    if Double.random(in: 0..<1, using: &rng) < 0.1 { targeting.devices = [Self.devices.randomElement(using: &rng)!] }
                }
                let cap = Bool.random(using: &rng) ? FrequencyCap(impressions: Int.random(in: 2...5, using: &rng), perHours: 24) : nil
                batch.campaigns.append(
                    Campaign(
                        id: CampaignID(campaignID), advertiserID: AdvertiserID(Int64(a)), name: "\(company) campaign \(c)", objective: objective,
                        bidMicros: bid, dailyBudgetMicros: daily, totalBudgetMicros: daily * Int64.random(in: 7...60, using: &rng),
                        targeting: targeting, frequencyCap: cap, createdAt: start))
                for _ in 0..<size.adsPerCampaign {
                    adID += 1
                    let product = products.randomElement(using: &rng)!
                    let topic = focus.randomElement(using: &rng)!
                    let format: AdFormat = Double.random(in: 0..<1, using: &rng) < 0.35 ? .video : .image
                    let media = format == .video
                        ? ["https://cdn.adserve.example/ads/\(adID)/video.mp4", "https://cdn.adserve.example/ads/\(adID)/poster.jpg"]
                        : ["https://cdn.adserve.example/ads/\(adID)/image.jpg"]
                    batch.ads.append(
                        Ad(
                            id: AdID(adID), campaignID: CampaignID(campaignID), format: format, mediaURLs: media,
                            caption: "The \(product) for \(topic) lovers — by \(company)", company: company, product: product,
                            description: "\(company) \(product): made for people into \(topic). Free shipping this week.",
                            createdAt: start))
                }
            }
        }
        batch.users.reserveCapacity(size.users)
        for u in 0..<size.users {
            let country = Self.countries[min(Self.countries.count - 1, Int(-log2(Double.random(in: 0.0001..<1, using: &rng)) * 3))]
            let id = try! UserID(validating: "u\(u + 1)") // "u" + digits always valid
            let interests = Array(Self.interests.shuffled(using: &rng).prefix(Int.random(in: 2...6, using: &rng)))
            batch.users.append(
                UserProfile(
                    id: id, age: Int.random(in: 13...75, using: &rng), gender: Self.genders[Int.random(in: 0..<20, using: &rng) < 1 ? 2 : Int.random(in: 0...1, using: &rng)],
                    country: country, language: Self.languageOfCountry[country], interests: interests))
            for k in 0..<2 {
                batch.activities.append(
                    Activity(
                        userID: id, type: [ActivityType.like, .view, .post, .comment].randomElement(using: &rng)!,
                        topics: [interests.randomElement(using: &rng)!], seconds: k == 1 ? Double.random(in: 1...60, using: &rng) : nil,
                        at: start.adding(milliseconds: -Int64.random(in: 0...(7 * Timestamp.millisecondsPerDay), using: &rng))))
            }
        }
        return batch
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
