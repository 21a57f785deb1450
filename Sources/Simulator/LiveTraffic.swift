import Domain
import Events
import Serving

/// A light, endless version of the simulation against a running server's serving path, on the
/// real clock: `serve --demo` runs it so delivery, spend and reports move while someone
/// explores. Random users of the world scroll a page; the behaviour model decides what they do.
public struct LiveTraffic: Sendable {
    public let world: World
    public let serving: DecisionService
    public let pagesPerSecond: Double
    public let seed: UInt64
    let behaviour = Behaviour()

    public init(world: World, serving: DecisionService, pagesPerSecond: Double = 20, seed: UInt64 = 1) {
        self.world = world
        self.serving = serving
        self.pagesPerSecond = max(0.1, pagesPerSecond)
        self.seed = seed
    }

    /// Runs until the task is cancelled. Errors of single pages are skipped, not fatal.
    public func run() async {
        let ingestor = EventIngestor(serving: serving)
        var rng = SplitMix64(seed: seed)
        let pause = Duration.milliseconds(Int64(1000 / pagesPerSecond))
        // Clicks come a few seconds after the ad is seen, as a person's do (sooner ones are
        // invalid traffic), and conversions after their click: held here until due.
        var later: [(due: ContinuousClock.Instant, type: EventType, token: String)] = []
        while !Task.isCancelled {
            let now = ContinuousClock.now
            for event in later where event.due <= now {
                _ = try? await ingestor.ingest(IncomingEvent(type: event.type, impressionToken: event.token))
            }
            later.removeAll { $0.due <= now }
            let user = Int.random(in: 0..<world.userIDs.count, using: &rng)
            let hour = serving.clock.now().hourOfDay
            if let decision = try? await serving.decide(
                userID: world.userIDs[user], context: FeedContext(device: world.userDevice[user], hour: hour), organicCount: 10)
            {
                for placement in decision.placements {
                    let ad = Int(placement.ad.id.rawValue - 1)
                    guard ad < world.adQuality.count else { continue }
                    let affinity = world.affinity(user: user, ad: ad)
                    _ = try? await ingestor.ingest(IncomingEvent(type: .impression, impressionToken: placement.impressionToken))
                    let clickAt = ContinuousClock.now + .milliseconds(Int64.random(in: 2_000...10_000, using: &rng))
                    let pClick = behaviour.clickProbability(
                        affinity: affinity, quality: world.adQuality[ad], afterPost: placement.afterPost, seenBefore: 0, hour: hour)
                    if Double.random(in: 0..<1, using: &rng) < pClick {
                        later.append((clickAt, .click, placement.impressionToken))
                        let rate = world.advertiserConversionRate[world.adAdvertiser[ad]]
                        if Double.random(in: 0..<1, using: &rng) < behaviour.conversionProbability(advertiserRate: rate, affinity: affinity) {
                            later.append((clickAt + .seconds(1), .conversion, placement.impressionToken))
                        }
                    } else if Double.random(in: 0..<1, using: &rng) < behaviour.hideProbability(affinity: affinity, tolerance: world.userTolerance[user], adsThisSession: 0) {
                        _ = try? await ingestor.ingest(IncomingEvent(type: .hide, impressionToken: placement.impressionToken))
                    }
                }
            }
            do { try await Task.sleep(for: pause) } catch { return }
        }
    }
}
