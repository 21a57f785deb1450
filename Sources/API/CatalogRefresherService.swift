import Serving
import ServiceLifecycle

/// Runs `CatalogRefresher` as a service: stops on graceful shutdown.
public struct CatalogRefresherService: Service {
    let refresher: CatalogRefresher

    public init(catalog: Catalog) { self.refresher = CatalogRefresher(catalog: catalog) }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await refresher.run() }
    }
}
