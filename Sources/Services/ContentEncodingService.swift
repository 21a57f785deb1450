import ContentEncoding
import ContentUpdates
import Domain
import Foundation
import Logging
import Serving
import ServiceLifecycle

/// Runs the content workers as one service: `PendingAdEncoder` (ads' vectors) and
/// `ActivityVectorUpdater` (users' vectors and recent topics), every second, with one encoder
/// loaded (and on a first start fetched) in the background, so the server answers at once. If
/// the encoder cannot be loaded, ads and users go on without vectors (recent topics are kept);
/// the error is logged and the load retried every minute. With no encoder (`load` nil) only
/// recent topics are kept.
public struct ContentEncodingService: Service {
    let serving: DecisionService
    let catalog: CatalogService
    let load: (@Sendable () throws -> any ContentEncoder)?
    let fetchesRemoteMedia: Bool
    let interval: Duration
    let logger: Logger

    public init(
        serving: DecisionService, catalog: CatalogService, fetchesRemoteMedia: Bool = true, interval: Duration = .seconds(1), logger: Logger,
        load: (@Sendable () throws -> any ContentEncoder)?
    ) {
        self.serving = serving
        self.catalog = catalog
        self.load = load
        self.fetchesRemoteMedia = fetchesRemoteMedia
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            let users = ActivityVectorUpdater(serving: serving, encoder: nil)
            serving.observers.add(users)
            var ads: PendingAdEncoder?
            var nextLoad = ContinuousClock.now
            while !Task.isCancelled {
                if ads == nil, let load, ContinuousClock.now >= nextLoad {
                    do {
                        let encoder = try load()
                        users.encoder = encoder
                        ads = PendingAdEncoder(catalog: catalog, encoder: encoder, fetchesRemoteMedia: fetchesRemoteMedia)
                        logger.info("content encoder loaded")
                    } catch {
                        logger.error("content encoder unavailable; ads and users go on without vectors", metadata: ["error": "\(error)"])
                        nextLoad = ContinuousClock.now + .seconds(60)
                    }
                }
                do {
                    let encoded = try await ads?.encodePending() ?? 0
                    let activities = try await users.catchUp()
                    // A full batch means more may wait: go on at once.
                    if encoded == PendingAdEncoder.batch || activities == ActivityVectorUpdater.batch { continue }
                } catch {
                    logger.error("content encoding failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
