import ContentEncoding
import Domain
import Serving
import Storage
import Synchronization

/// Keeps users' activity vectors (`UserProfile.activityVector`) as activity arrives, off the
/// request path. It reads the activity log in order from a cursor stored with the vectors
/// (each activity is added exactly once, across restarts): a viewed, liked or clicked-from-feed
/// ad adds that ad's vector; other activity adds the vector of its topics and text. As a
/// serving observer it also adds the ads a user clicks and subtracts those they hide (these are
/// applied as they are recorded; one lost in a crash is not replayed).
public final class ActivityVectorUpdater: ServingObserver {
    static let cursorName = "activity-vectors"
    let serving: DecisionService
    let encoder: any ContentEncoder
    /// Topic-and-text vectors, which repeat a lot: the last few thousand are kept.
    private let texts = Mutex<[String: [Float]]>([:])
    private static let textCacheLimit = 5_000

    public init(serving: DecisionService, encoder: any ContentEncoder) {
        self.serving = serving
        self.encoder = encoder
    }

    public static let batch = 256

    /// Adds up to `batch` new activities; returns how many it read.
    @discardableResult
    public func catchUp(batch: Int = batch) async throws -> Int {
        let store = serving.store
        let rows = try await store.activities(after: try await store.cursor(named: Self.cursorName), limit: batch)
        for (id, activity) in rows {
            let weight = ActivityVector.weight(activity.type, seconds: activity.seconds)
            if weight != 0, let item = vector(of: activity) {
                try await store.addToActivityVector(
                    of: activity.userID, item: item, weight: weight, at: activity.at, cursor: (Self.cursorName, id))
                try await serving.reloadProfile(activity.userID)
            } else {
                try await store.setCursor(named: Self.cursorName, to: id)
            }
        }
        return rows.count
    }

    /// What one activity is about: the ad it names, else its topics and text.
    func vector(of activity: Activity) -> [Float]? {
        if let adID = activity.adID, let embedding = serving.catalog.ad(adID)?.embedding { return embedding }
        let text = (activity.topics + [activity.text ?? ""]).filter { !$0.isEmpty }.joined(separator: ". ")
        guard !text.isEmpty else { return nil }
        if let cached = texts.withLock({ $0[text] }) { return cached }
        let vector = encoder.encode(text: text).vector
        texts.withLock { cache in
            if cache.count >= Self.textCacheLimit { cache.removeAll(keepingCapacity: true) }
            cache[text] = vector
        }
        return vector
    }

    public func decided(_ decision: Decision, profile: UserProfile?, context: FeedContext, at time: Timestamp) {}

    public func recorded(_ event: EventRecord) {
        let weight: Float
        switch event.type {
        case .click: weight = ActivityVector.clickWeight
        case .hide: weight = ActivityVector.hideWeight
        case .impression, .conversion: return
        }
        guard let embedding = serving.catalog.ad(event.adID)?.embedding else { return }
        Task { [serving] in
            try? await serving.store.addToActivityVector(of: event.userID, item: embedding, weight: weight, at: event.at, cursor: nil)
            try? await serving.reloadProfile(event.userID)
        }
    }
}
