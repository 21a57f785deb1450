import Domain
import ModelServing
import Models
import Serving
import Storage
import Training

/// Writes the serve log as an observer of serving: every placement of every decision with the
/// features its ranker saw, the arm that chose it and its propensity, and every recorded event,
/// as `ServeLogLine`s handed to `write`. The server and the simulator both log through it.
public struct ServeLogger: ServingObserver {
    let write: @Sendable (ServeLogLine) -> Void

    public init(write: @escaping @Sendable (ServeLogLine) -> Void) { self.write = write }

    public func decided(_ decision: Decision, profile: UserProfile?, context: FeedContext, at time: Timestamp) {
        guard !decision.placements.isEmpty else { return }
        let inputs = ClickFeatureInput.placed(decision.placements.map(\.candidate), user: profile, context: context)
        for (placement, features) in zip(decision.placements, inputs) {
            write(ServeLogLine(
                kind: .impression, impressionId: decision.placementKey(placement), timeMs: time.milliseconds, features: features,
                arm: decision.arm, propensity: placement.propensity))
        }
    }

    /// Impressions are logged when served; the feed's impression reports add nothing to training.
    public func recorded(_ event: EventRecord) {
        guard event.type != .impression else { return }
        write(ServeLogLine(event.type, impressionId: event.placementKey, at: event.at))
    }
}
