import Domain
import Models
import Serving
import Training

/// Writes the serve log: every placement of every decision with the features its ranker saw,
/// and every recorded click and conversion, as `ServeLogLine`s handed to `write`.
public struct ServeLogger: ServingObserver {
    let write: @Sendable (ServeLogLine) -> Void

    public init(write: @escaping @Sendable (ServeLogLine) -> Void) { self.write = write }

    public func decided(_ decision: Decision, profile: UserProfile?, context: FeedContext, at time: Timestamp) {
        for placement in decision.placements {
            write(ServeLogLine(
                kind: .impression, impressionId: ImpressionToken.placementKey(decisionID: decision.decisionID, afterPost: placement.afterPost), timeMs: time.milliseconds,
                features: ClickFeatureInput(candidate: placement.candidate, user: profile, context: context)))
        }
    }

    public func recorded(_ type: EventType, placementKey: String, at time: Timestamp) {
        let kind: ServeLogLine.Kind
        switch type {
        case .click: kind = .click
        case .conversion: kind = .conversion
        case .impression, .hide: return
        }
        write(ServeLogLine(kind: kind, impressionId: placementKey, timeMs: time.milliseconds))
    }
}
