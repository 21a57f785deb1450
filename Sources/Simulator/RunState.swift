import Domain
import HeapModule
import Serving

/// Something that happens at a simulated time. Ties break by scheduling order, so a run is
/// reproducible.
struct Scheduled: Comparable {
    enum Action {
        /// The user's `index`th session of the day.
        case session(user: Int, index: Int)
        case page(Session)
        case event(PendingEvent)
    }

    var time: Timestamp
    var sequence: Int
    var action: Action

    static func < (a: Scheduled, b: Scheduled) -> Bool { (a.time, a.sequence) < (b.time, b.sequence) }
    static func == (a: Scheduled, b: Scheduled) -> Bool { a.time == b.time && a.sequence == b.sequence }
}

struct Session {
    var user: Int
    var day: Int
    /// Which of the user's sessions that day (0 first).
    var index: Int
    var page: Int
    var adsSeen: Int
    var seconds: Double
}

struct PendingEvent {
    var type: EventType
    var token: String
    var user: Int
    var day: Int
}

/// Counters of one arm on one day.
struct DayStats {
    var impressions = 0
    var clicks = 0
    var expectedClicks = 0.0
    var conversions = 0
    var hides = 0
    var revenueMicros: Int64 = 0
    /// What the impressions served would have been charged in expectation, budgets aside
    /// (`RunState.expectedCharge`).
    var expectedRevenueMicros = 0.0
    var organicImpressions = 0
    var sessions = 0
    var sessionSeconds = 0.0
    var activeUsers = 0
    var returningUsers = 0
    /// Impressions of an ad for the product or topic the user had viewed most so far.
    var mostViewedImpressions = 0
    /// Impressions whose slot went to exploration (`Placement.explored`).
    var exploredImpressions = 0
}

/// What a random draw of a run is for: the key of a paired run's draws (`RunState.drawing`).
struct Moment {
    enum Purpose: UInt64 {
        case visit = 1, secondSession, thirdSession, sessionStart, activity, click, conversion, hide, duplicate, clickDelay, conversionDelay, continuing
    }
    var purpose: Purpose
    var day = 0
    var session = 0
    var page = 0
    var slot = 0
}

/// The mutable state of a run: the event queue, the world's memory of users (satisfaction,
/// exposures), and every counter the report needs.
struct RunState {
    let world: World
    /// Hashed assignment: every draw comes from this one stream, in the order the run asks.
    var rng: SplitMix64
    /// Paired assignment (`Simulation.Assignment.paired`): users are `people` persons' twins
    /// (user `u` is person `u % people`), and each draw comes from a generator seeded by `seed`,
    /// the person and the `Moment` it is for. A person's twins then get the same luck in every
    /// arm — the same visits, the same uniform against whichever ad's P(click) fills a slot:
    /// common random numbers. Where twins' paths part (another ad, a session cut short), later
    /// draws still match by moment, not by how many came before.
    let pairing: (people: Int, seed: UInt64)?
    var queue = Heap<Scheduled>()
    var sequence = 0

    var satisfaction: [Double]
    var annoyingToday: [Int]
    var hidesToday: [Int]
    var activeDay: [Int]
    var activeYesterday: [Bool]
    /// Times each (user, ad) pair was shown: fatigue.
    var exposures: [Int64: Int] = [:]
    /// Organic views the feed reported, per user and latent dimension (users × dimensions).
    var views: [Int32]
    /// Per arm, per new ad (index − `world.firstNewAd`): each impression's predicted and true
    /// P(click), in order.
    var newAdImpressions: [[[(predicted: Double, truth: Double)]]]

    /// [arm][day]
    var days: [[DayStats]]
    /// Per user (each user belongs to one arm).
    var userImpressions: [Int]
    var userClicks: [Int]
    var userRevenue: [Int64]
    var userExpectedRevenue: [Double]
    var userSessions: [Int]
    var userSessionSeconds: [Double]
    var userHides: [Int]
    /// Days the user was active that had a next day in the run, and the ones they came back after.
    var userActiveDaysWithTomorrow: [Int]
    var userReturns: [Int]
    /// Days in the run.
    var runDays: Int { days.first?.count ?? 0 }
    /// Copies of each campaign in the store: one per arm when budgets are split (`CampaignSlice`).
    let copies: Int
    /// [arm][afterPost] → (impressions, clicks)
    var byPosition: [[Int: (impressions: Int, clicks: Int)]]
    /// Per arm, per ad: shown at least once.
    var shown: [[Bool]]
    var totalCharged: Int64 = 0

    init(world: World, arms: Int, days: Int, seed: UInt64, copies: Int = 1, people: Int? = nil) {
        self.world = world
        self.copies = copies
        self.rng = SplitMix64(seed: seed ^ 0x51_4D55_4C41_5445)
        self.pairing = people.map { ($0, StableHash.mix(seed ^ 0x5041_4952_4544)) }
        let users = world.userIDs.count
        satisfaction = Array(repeating: 1, count: users)
        annoyingToday = Array(repeating: 0, count: users)
        hidesToday = Array(repeating: 0, count: users)
        activeDay = Array(repeating: -1, count: users)
        activeYesterday = Array(repeating: false, count: users)
        self.days = Array(repeating: Array(repeating: DayStats(), count: days), count: arms)
        userImpressions = Array(repeating: 0, count: users)
        userClicks = Array(repeating: 0, count: users)
        userRevenue = Array(repeating: 0, count: users)
        userExpectedRevenue = Array(repeating: 0, count: users)
        userSessions = Array(repeating: 0, count: users)
        userSessionSeconds = Array(repeating: 0, count: users)
        userHides = Array(repeating: 0, count: users)
        userActiveDaysWithTomorrow = Array(repeating: 0, count: users)
        userReturns = Array(repeating: 0, count: users)
        byPosition = Array(repeating: [:], count: arms)
        shown = Array(repeating: Array(repeating: false, count: world.adQuality.count), count: arms)
        views = Array(repeating: 0, count: users * world.dimensions)
        newAdImpressions = Array(repeating: Array(repeating: [], count: world.adQuality.count - world.firstNewAd), count: arms)
        // The history imported with the world counts as viewed.
        let dimension = Dictionary(uniqueKeysWithValues: world.dimensionNames.enumerated().map { ($1, $0) })
        let userIndex = Dictionary(uniqueKeysWithValues: world.userIDs.enumerated().map { ($1, $0) })
        for activity in world.batch.activities {
            guard let user = userIndex[activity.userID], let d = activity.topics.first.flatMap({ dimension[$0] }) else { continue }
            views[user * world.dimensions + d] += 1
        }
    }

    /// The world's index of a served ad (its campaign's copy in an arm's slice, when budgets are split).
    func worldAd(_ id: AdID) -> Int { Int(CampaignSlice.original(of: id.rawValue, count: copies) - 1) }

    mutating func schedule(_ action: Scheduled.Action, at time: Timestamp) {
        sequence += 1
        queue.insert(Scheduled(time: time, sequence: sequence, action: action))
    }

    /// Runs `body` with the generator of `user`'s draw at `moment`: the run's stream, or with
    /// pairing a generator of that person and moment alone.
    mutating func drawing<T>(_ user: Int, _ moment: Moment, _ body: (inout SplitMix64) -> T) -> T {
        guard let pairing else { return body(&rng) }
        var key = StableHash.mix(pairing.seed ^ UInt64(user % pairing.people))
        key = StableHash.mix(key ^ moment.purpose.rawValue)
        key = StableHash.mix(key ^ UInt64(moment.day) << 40 ^ UInt64(moment.session) << 32 ^ UInt64(moment.page) << 16 ^ UInt64(moment.slot))
        var generator = SplitMix64(seed: key)
        return body(&generator)
    }

    mutating func chance(_ p: Double, _ user: Int, _ moment: Moment) -> Bool {
        drawing(user, moment) { Double.random(in: 0..<1, using: &$0) } < p
    }

    /// Who visits today, and when their sessions start (diurnal curve).
    mutating func scheduleSessions(day: Int, dayStart: Timestamp, behaviour: Behaviour) {
        let arrivals = Behaviour.hourlyArrivals
        for user in world.userIDs.indices where chance(world.userVisit[user] * satisfaction[user], user, Moment(purpose: .visit, day: day)) {
            let sessions = 1 + (chance(0.4, user, Moment(purpose: .secondSession, day: day)) ? 1 : 0)
                + (chance(0.15, user, Moment(purpose: .thirdSession, day: day)) ? 1 : 0)
            for index in 0..<sessions {
                let offset = drawing(user, Moment(purpose: .sessionStart, day: day, session: index)) { rng in
                    var r = Double.random(in: 0..<1, using: &rng)
                    var hour = 23
                    for (h, share) in arrivals.enumerated() {
                        if r < share { hour = h; break }
                        r -= share
                    }
                    return Int64(hour) * Timestamp.millisecondsPerHour + Int64.random(in: 0..<Timestamp.millisecondsPerHour, using: &rng)
                }
                schedule(.session(user: user, index: index), at: dayStart.adding(milliseconds: offset))
            }
        }
    }

    /// What the user lingered on among a page's organic posts, as the feed backend reports it:
    /// something on one of their latent topics (the strongest most often). In the topics world a
    /// view, like, comment or post; in the products world a view of a product, with its dwell.
    mutating func organicActivity(_ session: Session, at time: Timestamp) -> Activity {
        let user = session.user
        let k = world.dimensions
        var best = 0
        var weights: [Double] = []
        for d in 0..<k {
            let w = Double(max(0, world.userLatent[user * k + d]))
            weights.append(w * w)
            if weights[d] > weights[best] { best = d }
        }
        let kind = world.kind
        let moment = Moment(purpose: .activity, day: session.day, session: session.index, page: session.page)
        let (topic, type, text, seconds) = drawing(user, moment) { rng in
            var r = Double.random(in: 0..<max(weights.reduce(0, +), 1e-9), using: &rng)
            var topic = best
            for (d, w) in weights.enumerated() {
                if r < w { topic = d; break }
                r -= w
            }
            let type = kind == .products ? .view : [ActivityType.view, .view, .like, .like, .comment, .post][Int.random(in: 0..<6, using: &rng)]
            let words = World.topics[topic % World.topics.count].words
            let text = type == .comment || type == .post ? words.randomElement(using: &rng) : nil
            let seconds = type == .view ? Double.random(in: 2...60, using: &rng) : nil
            return (topic, type, text, seconds)
        }
        views[user * k + topic] += 1
        return Activity(
            userID: world.userIDs[user], type: type, topics: [world.dimensionNames[topic]], text: text, seconds: seconds, at: time)
    }

    /// The dimension the user has viewed most so far (ties: the lowest); nil before any view.
    func mostViewed(user: Int) -> Int? {
        let k = world.dimensions
        var best: Int?
        for d in 0..<k where views[user * k + d] > 0 && (best == nil || views[user * k + d] > views[user * k + best!]) { best = d }
        return best
    }

    mutating func startSession(user: Int, index: Int, arm: Int, day: Int, at time: Timestamp) {
        if activeDay[user] != day {
            activeDay[user] = day
            days[arm][day].activeUsers += 1
            if day + 1 < runDays { userActiveDaysWithTomorrow[user] += 1 }
            if activeYesterday[user], day > 0 {
                days[arm][day - 1].returningUsers += 1
                userReturns[user] += 1
            }
        }
        days[arm][day].sessions += 1
        userSessions[user] += 1
        schedule(.page(Session(user: user, day: day, index: index, page: 0, adsSeen: 0, seconds: 0)), at: time)
    }

    /// The user scrolls one page: sees its ads, maybe clicks, converts later, or hides; then
    /// scrolls on or leaves.
    mutating func servePage(_ session: Session, decision: Decision, arm: Int, at time: Timestamp, config: Simulation.Configuration) {
        var session = session
        let user = session.user
        let behaviour = config.behaviour
        var annoying = 0
        var hides = 0
        var clicks = 0
        for (slot, placement) in decision.placements.enumerated() {
            func at(_ purpose: Moment.Purpose) -> Moment {
                Moment(purpose: purpose, day: session.day, session: session.index, page: session.page, slot: slot)
            }
            let ad = worldAd(placement.ad.id)
            let affinity = world.affinity(user: user, ad: ad)
            let key = Int64(user) << 32 | Int64(ad)
            let seen = exposures[key, default: 0]
            exposures[key] = seen + 1
            let pClick = behaviour.clickProbability(
                affinity: affinity, quality: world.adQuality[ad], afterPost: placement.afterPost, seenBefore: seen, hour: time.hourOfDay)
            if ad >= world.firstNewAd { newAdImpressions[arm][ad - world.firstNewAd].append((placement.prediction.click, pClick)) }
            if let top = mostViewed(user: user), top == world.adDimension[ad] { days[arm][session.day].mostViewedImpressions += 1 }
            let clicked = chance(pClick, user, at(.click))
            let advertiser = world.adAdvertiser[ad]
            let pConversion = behaviour.conversionProbability(advertiserRate: world.advertiserConversionRate[advertiser], affinity: affinity)
            let converted = clicked && chance(pConversion, user, at(.conversion))
            let expectedRevenue = Self.expectedCharge(placement.objective, price: placement.priceMicros, pClick: pClick, pConversion: pConversion)
            let hidden = !clicked
                && chance(behaviour.hideProbability(affinity: affinity, tolerance: world.userTolerance[user], adsThisSession: session.adsSeen), user, at(.hide))
            session.adsSeen += 1
            if affinity < behaviour.irrelevance { annoying += 1 }

            // The feed reports the impression when the ad scrolls into view, then what followed.
            let seenAt = time.adding(milliseconds: Int64(placement.afterPost) * 5_000)
            let token = placement.impressionToken
            schedule(.event(PendingEvent(type: .impression, token: token, user: user, day: session.day)), at: seenAt)
            if chance(config.duplicateRate, user, at(.duplicate)) {
                schedule(.event(PendingEvent(type: .impression, token: token, user: user, day: session.day)), at: seenAt.adding(milliseconds: 30_000))
            }
            if clicked {
                clicks += 1
                let clickAt = seenAt.adding(milliseconds: drawing(user, at(.clickDelay)) { Int64.random(in: 2_000...10_000, using: &$0) })
                schedule(.event(PendingEvent(type: .click, token: token, user: user, day: session.day)), at: clickAt)
                if converted {
                    let meanHours = world.advertiserConversionDelayHours[advertiser]
                    let hours = min(-log(drawing(user, at(.conversionDelay)) { Double.random(in: 0.0001..<1, using: &$0) }) * meanHours, 6 * 24)
                    let convertedAt = clickAt.adding(milliseconds: Int64(hours * 3_600_000) + 1)
                    schedule(.event(PendingEvent(type: .conversion, token: token, user: user, day: session.day)), at: convertedAt)
                }
            }
            if hidden {
                hides += 1
                schedule(.event(PendingEvent(type: .hide, token: token, user: user, day: session.day)), at: seenAt.adding(milliseconds: 3_000))
            }

            days[arm][session.day].impressions += 1
            shown[arm][ad] = true
            if placement.explored { days[arm][session.day].exploredImpressions += 1 }
            days[arm][session.day].expectedClicks += pClick
            days[arm][session.day].expectedRevenueMicros += expectedRevenue
            userExpectedRevenue[user] += expectedRevenue
            if clicked { days[arm][session.day].clicks += 1 }
            if converted { days[arm][session.day].conversions += 1 }
            if hidden { days[arm][session.day].hides += 1 }
            userImpressions[user] += 1
            if clicked { userClicks[user] += 1 }
            if hidden { userHides[user] += 1 }
            var position = byPosition[arm][placement.afterPost] ?? (0, 0)
            position.impressions += 1
            if clicked { position.clicks += 1 }
            byPosition[arm][placement.afterPost] = position

        }
        annoyingToday[user] += annoying
        hidesToday[user] += hides

        let pageSeconds = Double(config.organicPerPage) * 5 + Double(decision.placements.count) * 3 + Double(clicks) * 20
        session.seconds += pageSeconds
        days[arm][session.day].organicImpressions += config.organicPerPage
        session.page += 1
        let goOn = session.page < config.maxPagesPerSession
            && chance(
                behaviour.continueProbability(base: world.userContinue[user], annoyingAds: annoying, hides: hides, tolerance: world.userTolerance[user]), user,
                Moment(purpose: .continuing, day: session.day, session: session.index, page: session.page - 1))
        if goOn {
            schedule(.page(session), at: time.adding(milliseconds: Int64(pageSeconds * 1000)))
        } else {
            days[arm][session.day].sessionSeconds += session.seconds
            userSessionSeconds[user] += session.seconds
        }
    }

    /// An impression's expected charge in micros: its price per billed event × the world's true
    /// probability of that event (an impression: 1; a click; a click, then a conversion). Summed,
    /// what the impressions served would have been charged with no budget stopping the charges:
    /// set against revenue, it shows how much delivery budgets gave away (a conversion campaign
    /// keeps being served while its clicks' conversions are still to come).
    static func expectedCharge(_ objective: Objective, price: Micros, pClick: Double, pConversion: Double) -> Double {
        let perEvent = Double(objective.pricePerBilledEvent(bid: price))
        return switch objective {
        case .awareness: perEvent
        case .traffic: perEvent * pClick
        case .conversions: perEvent * pClick * pConversion
        }
    }

    mutating func charged(_ micros: Int64, user: Int, arm: Int, day: Int) {
        totalCharged += micros
        userRevenue[user] += micros
        days[arm][day].revenueMicros += micros
    }

    /// Satisfaction moves with what the day brought; who was active is remembered for returns.
    mutating func endDay(_ day: Int, behaviour: Behaviour) {
        for user in world.userIDs.indices {
            satisfaction[user] = behaviour.nextSatisfaction(
                satisfaction[user], annoyingAds: annoyingToday[user], hides: hidesToday[user], tolerance: world.userTolerance[user])
            annoyingToday[user] = 0
            hidesToday[user] = 0
            activeYesterday[user] = activeDay[user] == day
        }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
