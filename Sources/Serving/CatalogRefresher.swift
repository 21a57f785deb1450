import Domain

/// Publishes catalog changes to the decision path: checks every `interval` and rebuilds the
/// snapshot when something changed. Runs until its task is cancelled (the server's service
/// group cancels it on graceful shutdown).
public struct CatalogRefresher: Sendable {
    public let catalog: Catalog
    public let interval: Duration

    public init(catalog: Catalog, interval: Duration = .milliseconds(100)) {
        self.catalog = catalog
        self.interval = interval
    }

    public func run() async {
        while !Task.isCancelled {
            catalog.publishIfChanged()
            do { try await Task.sleep(for: interval) } catch { return }
        }
    }
}
