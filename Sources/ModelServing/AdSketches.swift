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
    /// What the logs keep of a placement: the models' features and the two towers' inputs (the
    /// user's activity sketch, computed once per decision by the caller, and the ad's content sketch).
    public init(placed candidate: Candidate, user: UserProfile?, context: FeedContext, userSketch: VectorSketch?) {
        self.init(candidate: candidate, user: user, context: context)
        self.userSketch = userSketch
        adSketch = AdSketches.shared.sketch(of: candidate.ad)
    }
}
