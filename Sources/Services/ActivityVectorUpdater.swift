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
            let item = weight == 0 ? nil : vector(of: activity)
            let topics = weight == 0 ? [] : names(of: activity)
            if item != nil || !topics.isEmpty {
                try await store.addToActivityVector(
                    of: activity.userID, item: item, topics: topics, weight: weight, at: activity.at, cursor: (Self.cursorName, id))
                try await serving.reloadProfile(activity.userID)
            } else {
                try await store.setCursor(named: Self.cursorName, to: id)
            }
        }
        return rows.count
    }

    /// What one activity is about, by name: its topics, and the product and company of the ad it
    /// names.
    func names(of activity: Activity) -> [String] {
        let ad = activity.adID.flatMap { serving.catalog.ad($0) }
        return activity.topics.map { $0.lowercased() } + (ad.map(ActivityVector.names(of:)) ?? [])
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
        guard let ad = serving.catalog.ad(event.adID) else { return }
        let embedding = ad.embedding
        let topics = ActivityVector.names(of: ad)
        Task { [serving] in
            try? await serving.store.addToActivityVector(of: event.userID, item: embedding, topics: topics, weight: weight, at: event.at, cursor: nil)
            try? await serving.reloadProfile(event.userID)
        }
    }
}
