import Domain
import Models
import Serving
import Synchronization

/// Content sketches of ads (`VectorSketch`) per ad version: a projection of 384 floats is
/// worth computing once, not once per impression logged or per index refresh. The catalog's
/// ads carry theirs (`Ad.contentSketch`); the cache holds the others'.
public final class AdSketches: Sendable {
    public static let shared = AdSketches()

    private struct Key: Hashable {
        var ad: Int64
        var revision: Int64
    }
    private let sketches = Mutex<[Key: VectorSketch?]>([:])

    public init() {}

    /// The sketch of the ad's content vector; nil while it has none. A compacted ad (the
    /// catalog's) carries its own, made from its floats before they were let go.
    public func sketch(of ad: Ad) -> VectorSketch? {
        if ad.isCompacted { return ad.contentSketch }
        guard ad.embedding != nil else { return nil }
        let key = Key(ad: ad.id.rawValue, revision: ad.revision)
        if let cached = sketches.withLock({ $0[key] }) { return cached }
        let sketch = VectorSketch(ad.embedding)
        sketches.withLock { cache in
            if cache.count > 4_000_000 { cache.removeAll() }  // bounded: old ad versions fall out
            cache[key] = sketch
        }
        return sketch
    }
}

extension ClickFeatureInput {
    /// What the logs keep of a decision's placements, in order: the models' features and the two
    /// towers' inputs (the user's activity sketch and each ad's content sketch). The user's side
    /// — the request's features, recent topics, activity vector and sketch — is made once for
    /// the decision, not once per placement.
    public static func placed(_ candidates: [Candidate], user: UserProfile?, context: FeedContext) -> [ClickFeatureInput] {
        guard let first = candidates.first else { return [] }
        var request = ClickFeatureInput(requestOf: first, user: user, context: context)
        request.userSketch = VectorSketch(user?.activityVector)
        let side = UserSide(user, at: context.at)
        return candidates.map { candidate in
            var input = ClickFeatureInput(candidate: candidate, request: request, side: side)
            input.adSketch = AdSketches.shared.sketch(of: candidate.ad)
            return input
        }
    }
}
