import Domain
import Models

/// One line of a serving node's log: an impression served with the features its ranker saw, or
/// a click or conversion recorded for one. `adserve train` replays these lines through the
/// attribution join, so training sees what serving saw.
public struct ServeLogLine: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable { case impression, click, conversion }
    public var kind: Kind
    /// The decision's id, "/", the slot: the join key.
    public var impressionId: String
    public var timeMs: Int64
    /// Impressions only.
    public var features: ClickFeatureInput?

    public init(kind: Kind, impressionId: String, timeMs: Int64, features: ClickFeatureInput? = nil) {
        self.kind = kind
        self.impressionId = impressionId
        self.timeMs = timeMs
        self.features = features
    }

    /// Feeds the line to a join.
    public func replay(into join: inout AttributionJoin) {
        let time = Timestamp(milliseconds: timeMs)
        switch kind {
        case .impression: if let features { join.impression(id: impressionId, features: features, at: time) }
        case .click: join.click(id: impressionId, at: time)
        case .conversion: join.conversion(id: impressionId, at: time)
        }
    }
}
