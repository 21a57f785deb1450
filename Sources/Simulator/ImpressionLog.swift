import Domain

/// One served impression as the logs keep it: what serving saw (the features snapshot), how the
/// ad was chosen (its propensity) and what the user did. Written as JSON lines with `--out`.
public struct ImpressionLog: Sendable, Codable, Equatable {
    public struct Features: Sendable, Codable, Equatable {
        public var age: Int?
        public var gender: String?
        public var country: String?
        public var language: String?
        public var interests: [String]
        public var device: String
        public var hour: Int
        public var sessionPage: Int
        public var format: String
        public var objective: String
        public var caption: String
    }

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
    public var features: Features
    public var clicked: Bool
    public var converted: Bool
    public var hidden: Bool
    /// The world's true P(click) for this impression: known only to the simulator, for checks.
    public var worldClickProbability: Double
}
