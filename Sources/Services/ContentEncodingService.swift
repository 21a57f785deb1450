import ContentEncoding
import Domain
import Logging
import Serving
import ServiceLifecycle

/// Computes the content vectors of ads that wait for one, off the request path: reads pending
/// ads from the store, encodes their text, and stores each vector unless the ad's text changed
/// meanwhile. An ad serves from the moment it is created; its vector follows within seconds.
public struct PendingAdEncoder: Sendable {
    public let catalog: CatalogService
    public let encoder: any ContentEncoder

    public init(catalog: CatalogService, encoder: any ContentEncoder) {
        self.catalog = catalog
        self.encoder = encoder
    }

    /// Encodes up to `batch` pending ads, oldest first; returns how many vectors it stored.
    @discardableResult
    public func encodePending(batch: Int = 32) async throws -> Int {
        var stored = 0
        for ad in try await catalog.store.adsPendingEmbedding(limit: batch) {
            let text = ad.contentText
            let vectors = encoder.encode(text: text)
            if try await catalog.storeEmbedding(vectors.vector, for: ad.id, computedFrom: text) { stored += 1 }
            await Task.yield()
        }
        return stored
    }
}

/// Runs `PendingAdEncoder` as a service. The encoder is loaded (and on a first start fetched)
/// in the background, so the server answers at once; if it cannot be loaded, ads keep serving
/// without vectors and the error is logged and retried every minute.
public struct ContentEncodingService: Service {
    let catalog: CatalogService
    let load: @Sendable () throws -> any ContentEncoder
    let interval: Duration
    let logger: Logger

    public init(catalog: CatalogService, interval: Duration = .seconds(1), logger: Logger, load: @escaping @Sendable () throws -> any ContentEncoder) {
        self.catalog = catalog
        self.load = load
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var worker: PendingAdEncoder?
            while !Task.isCancelled {
                if worker == nil {
                    do {
                        worker = PendingAdEncoder(catalog: catalog, encoder: try load())
                        logger.info("content encoder loaded")
                    } catch {
                        logger.error("content encoder unavailable; ads serve without vectors", metadata: ["error": "\(error)"])
                        try? await Task.sleep(for: .seconds(60))
                        continue
                    }
                }
                do {
                    // A full batch means more may wait: go on at once.
                    if try await worker?.encodePending() == 32 { continue }
                } catch {
                    logger.error("content encoding failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
