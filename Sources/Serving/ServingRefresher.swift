import Domain

/// Keeps the decision path fresh: every `catalogInterval` publishes catalog changes (a change
/// is servable within that interval plus one rebuild), and every `rankingInterval` rebuilds the
/// rule-based order from the latest counters; a candidate stage's value order is rebuilt on a
/// thread of its own when due. Runs until its task is cancelled (the server's
/// service group cancels it on graceful shutdown).
public struct ServingRefresher: Sendable {
    public let serving: DecisionService
    public let catalogInterval: Duration
    public let rankingInterval: Duration

    public init(serving: DecisionService, catalogInterval: Duration = .milliseconds(100), rankingInterval: Duration = .seconds(1)) {
        self.serving = serving
        self.catalogInterval = catalogInterval
        self.rankingInterval = rankingInterval
    }

    public func run() async {
        var lastRanking = ContinuousClock.now
        while !Task.isCancelled {
            let rankingDue = ContinuousClock.now - lastRanking >= rankingInterval
            serving.refresh(rebuildRanking: rankingDue, valueOrderInBackground: true)
            if rankingDue { lastRanking = ContinuousClock.now }
            do { try await Task.sleep(for: catalogInterval) } catch { return }
        }
    }
}
