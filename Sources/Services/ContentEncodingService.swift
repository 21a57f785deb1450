import ContentEncoding
import Domain
import Foundation
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

    public static let batch = 32

    /// Encodes up to `batch` pending ads, oldest first; returns how many vectors it stored.
    @discardableResult
    public func encodePending(batch: Int = batch) async throws -> Int {
        var stored = 0
        for ad in try await catalog.store.adsPendingEmbedding(limit: batch) {
            let source = ad.contentSource
            let text = encoder.encode(text: ad.contentText).vector
            var vector = text
            var image: [Float]?
            var failure: String?
            do {
                if let media = try encodeMedia(of: ad) {
                    // Text and picture meet in the text space: the sum of both, unit length.
                    vector = VectorMath.unitLength(zip(text, media.vector).map { $0 + $1 })
                    image = media.imageVector
                }
            } catch {
                failure = error.message
            }
            if try await catalog.storeEmbedding(vector, image: image, failure: failure, for: ad.id, computedFrom: source) { stored += 1 }
            await Task.yield()
        }
        return stored
    }

    /// The vectors of the ad's first medium if it is a file or a data URL; nil for one that is
    /// not fetched here (http, https).
    func encodeMedia(of ad: Ad) throws(AdServeError) -> ContentVectors? {
        guard let url = ad.mediaURLs.first else { return nil }
        guard case .file(let path, let temporary) = try MediaSource.locate(url, field: "media_urls[0]") else { return nil }
        defer { if temporary { try? FileManager.default.removeItem(atPath: path) } }
        return ad.format == .video ? try encoder.encode(videoAt: path) : try encoder.encode(imageAt: path)
    }

}

/// Runs the content workers as one service: `PendingAdEncoder` (ads' vectors) and
/// `ActivityVectorUpdater` (users' vectors), every second, with one encoder loaded (and on a
/// first start fetched) in the background, so the server answers at once. If the encoder cannot
/// be loaded, ads and users go on without vectors; the error is logged and retried every minute.
public struct ContentEncodingService: Service {
    let serving: DecisionService
    let catalog: CatalogService
    let load: @Sendable () throws -> any ContentEncoder
    let interval: Duration
    let logger: Logger

    public init(
        serving: DecisionService, catalog: CatalogService, interval: Duration = .seconds(1), logger: Logger,
        load: @escaping @Sendable () throws -> any ContentEncoder
    ) {
        self.serving = serving
        self.catalog = catalog
        self.load = load
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var workers: (ads: PendingAdEncoder, users: ActivityVectorUpdater)?
            while !Task.isCancelled {
                if workers == nil {
                    do {
                        let encoder = try load()
                        let users = ActivityVectorUpdater(serving: serving, encoder: encoder)
                        serving.observers.add(users)
                        workers = (PendingAdEncoder(catalog: catalog, encoder: encoder), users)
                        logger.info("content encoder loaded")
                    } catch {
                        logger.error("content encoder unavailable; ads and users go on without vectors", metadata: ["error": "\(error)"])
                        try? await Task.sleep(for: .seconds(60))
                        continue
                    }
                }
                guard let workers else { continue }
                do {
                    let ads = try await workers.ads.encodePending()
                    let activities = try await workers.users.catchUp()
                    // A full batch means more may wait: go on at once.
                    if ads == PendingAdEncoder.batch || activities == ActivityVectorUpdater.batch { continue }
                } catch {
                    logger.error("content encoding failed", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
