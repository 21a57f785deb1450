import Domain
import Models
import Serving

/// One served impression as the logs keep it: what serving saw (the features snapshot), how the
/// ad was chosen (its propensity) and what the user did. Written as JSON lines with `--out`.
public struct ImpressionLog: Sendable, Codable, Equatable {
    /// The join key of the impression and its events.
    public var impressionID: String { ImpressionToken.placementKey(decisionID: decisionId, afterPost: afterPost) }

    public var day: Int
    public var timeMs: Int64
    public var arm: String
    public var userId: String
    public var decisionId: String
    public var afterPost: Int
    public var adId: Int64
    public var campaignId: Int64
    public var advertiserId: Int64
    public var propensity: Double
    /// Exactly what the models saw (or would have seen) for this impression at serve time.
    public var features: ClickFeatureInput
    /// The feed position within the session's page.
    public var sessionPage: Int
    public var clicked: Bool
    public var converted: Bool
    public var hidden: Bool
    /// When the feed reported the click and the conversion (what a join matches on).
    public var clickedAtMs: Int64?
    public var convertedAtMs: Int64?
    /// The world's true P(click) for this impression: known only to the simulator, for checks.
    public var worldClickProbability: Double
}
