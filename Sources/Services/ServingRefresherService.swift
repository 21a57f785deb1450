import Serving
import ServiceLifecycle

/// Runs `ServingRefresher` as a service: catalog changes published every 100 ms, the
/// rule-based order rebuilt every second; stops on graceful shutdown.
public struct ServingRefresherService: Service {
    let refresher: ServingRefresher

    public init(serving: DecisionService) { self.refresher = ServingRefresher(serving: serving) }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await refresher.run() }
    }
}
