import ContentEncoding
import Domain
import Serving
import Storage
import Synchronization

/// Keeps users' activity vectors (`UserProfile.activityVector`) as activity arrives, off the
/// request path. It reads the activity log in order from a cursor stored with the vectors
/// (each activity is added exactly once, across restarts): a viewed, liked or clicked-from-feed
/// ad adds that ad's vector; other activity adds the vector of its topics and text. As a
/// serving observer it also adds the ads a user clicks and subtracts those they hide: these are
/// queued as they are recorded and applied by the next `catchUp`, in order (one lost in a crash
/// is not replayed; the event itself is durable). Without an encoder it keeps recent topics only.
public final class ActivityVectorUpdater: ServingObserver {
    static let cursorName = "activity-vectors"
    let serving: DecisionService
    private let loadedEncoder: Mutex<(any ContentEncoder)?>
    /// The text encoder, once loaded: until then recent topics are kept, vectors not.
    public var encoder: (any ContentEncoder)? {
        get { loadedEncoder.withLock { $0 } }
        set { loadedEncoder.withLock { $0 = newValue } }
    }
    /// Clicks and hides heard since the last `catchUp`.
    private let feedback = Mutex<[FeedbackItem]>([])
    /// Past this many waiting, the oldest are dropped (a stalled store must not grow memory).
    static let feedbackLimit = 100_000

    struct FeedbackItem {
        var user: UserID
        var embedding: [Float]?
        var topics: [String]
        var weight: Float
        var at: Timestamp
    }
    /// Topic-and-text vectors, which repeat a lot: the last few thousand are kept.
    private let texts = Mutex<[String: [Float]]>([:])
    private static let textCacheLimit = 5_000

    public init(serving: DecisionService, encoder: (any ContentEncoder)?) {
        self.serving = serving
        self.loadedEncoder = Mutex(encoder)
    }

    public static let batch = 256

    /// Applies the clicks and hides heard so far, then adds up to `batch` new activities;
    /// returns how many activities it read.
    @discardableResult
    public func catchUp(batch: Int = batch) async throws -> Int {
        let store = serving.store
        for item in feedback.withLock({ queue in defer { queue.removeAll() }; return queue }) {
            try await store.addToActivityVector(of: item.user, item: item.embedding, topics: item.topics, weight: item.weight, at: item.at, cursor: nil)
            try await serving.reloadProfile(item.user)
        }
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
        guard let encoder else { return nil }
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
        case .hide, .hideAdvertiser, .notRelevant: weight = ActivityVector.hideWeight
        case .impression, .conversion: return
        }
        guard let ad = serving.catalog.ad(event.adID) else { return }
        let item = FeedbackItem(user: event.userID, embedding: encoder == nil ? nil : ad.embedding, topics: ActivityVector.names(of: ad), weight: weight, at: event.at)
        feedback.withLock { queue in
            if queue.count >= Self.feedbackLimit { queue.removeFirst(queue.count / 2) }
            queue.append(item)
        }
    }
}
