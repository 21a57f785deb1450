import ContentEncoding
import Domain
import Foundation
import Serving
import Synchronization

/// Computes the content vectors of ads that wait for one, off the request path: reads pending
/// ads from the store, encodes their text and their first medium, and stores each vector unless
/// the ad changed meanwhile. An ad serves from the moment it is created; its vector follows
/// within seconds.
public struct PendingAdEncoder: Sendable {
    public let catalog: CatalogService
    public let encoder: any ContentEncoder
    /// Whether `https` media are downloaded (a server without a network, or the demo's made-up
    /// URLs: no), else such ads are encoded from their text.
    public let fetchesRemoteMedia: Bool
    /// Media vectors by URL: ads of one campaign often share a picture, which is decoded once.
    private let media = MediaVectorCache()

    public init(catalog: CatalogService, encoder: any ContentEncoder, fetchesRemoteMedia: Bool = true) {
        self.catalog = catalog
        self.encoder = encoder
        self.fetchesRemoteMedia = fetchesRemoteMedia
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

    /// The vectors of the ad's first medium; nil for a remote one when fetching is off.
    func encodeMedia(of ad: Ad) throws(AdServeError) -> ContentVectors? {
        guard let url = ad.mediaURLs.first else { return nil }
        // Data URLs carry the medium itself: too big a key, and rarely shared.
        let key = url.lowercased().hasPrefix("data:") ? nil : "\(ad.format.rawValue) \(url)"
        if let key, let cached = media.get(key) { return cached }
        var located = try MediaSource.locate(url, field: "media_urls[0]")
        if located == .remote {
            guard fetchesRemoteMedia else { return nil }
            located = try MediaSource.fetch(url, field: "media_urls[0]")
        }
        guard case .file(let path, let temporary) = located else { return nil }
        defer { if temporary { try? FileManager.default.removeItem(atPath: path) } }
        let vectors = ad.format == .video ? try encoder.encode(videoAt: path) : try encoder.encode(imageAt: path)
        if let key { media.put(key, vectors) }
        return vectors
    }
}

/// The last few hundred media vectors by URL.
final class MediaVectorCache: Sendable {
    private let entries = Mutex<[String: ContentVectors]>([:])
    static let limit = 512

    func get(_ key: String) -> ContentVectors? { entries.withLock { $0[key] } }

    func put(_ key: String, _ vectors: ContentVectors) {
        entries.withLock { cache in
            if cache.count >= Self.limit { cache.removeAll(keepingCapacity: true) }
            cache[key] = vectors
        }
    }
}
