import Domain
import Foundation

/// Where an ad's media is, for the encoders: a `file://` URL is read where it is; a `data:` URL
/// (base64, an image/ or video/ type) is written to a temporary file; an `https` URL is
/// `remote`, for `fetch` (curl, with a size limit and a timeout).
public enum MediaSource {
    public enum Located: Sendable, Equatable {
        case file(path: String, temporary: Bool)
        case remote
    }

    public static func locate(_ url: String, field: String) throws(AdServeError) -> Located {
        let lower = url.lowercased()
        if lower.hasPrefix("file:") {
            guard let path = URL(string: url)?.path, path.hasPrefix("/") else { throw AdServeError.invalid(field, "a file URL needs an absolute path (file:///…)") }
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: path), let size = attributes[.size] as? Int,
                attributes[.type] as? FileAttributeType == .typeRegular
            else { throw AdServeError.invalid(field, "no readable file at \(path)") }
            guard size <= MediaDecoder.maxBytes else { throw AdServeError.invalid(field, "\(path) is \(size) bytes; media may have at most \(MediaDecoder.maxBytes)") }
            return .file(path: path, temporary: false)
        }
        if lower.hasPrefix("data:") {
            let bytes = try MediaURL.dataBytes(url, field: field)
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("adserve-media-\(UInt64.random(in: 0...UInt64.max))").path
            guard FileManager.default.createFile(atPath: path, contents: Data(bytes)) else {
                throw AdServeError(.storage, "cannot write a temporary media file")
            }
            return .file(path: path, temporary: true)
        }
        return .remote
    }

    /// Fetch timeout for remote media.
    public static let fetchSeconds = 20

    /// Downloads an `https` medium to a temporary file with Debian's curl: at most
    /// `MediaDecoder.maxBytes`, `fetchSeconds` in all, redirects followed only to https. A
    /// failure (no network, 404, too large, too slow) names the field and says why.
    public static func fetch(_ url: String, field: String) throws(AdServeError) -> Located {
        guard url.lowercased().hasPrefix("https://") else { throw AdServeError.invalid(field, "only https media are fetched") }
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("adserve-media-\(UInt64.random(in: 0...UInt64.max))").path
        do {
            _ = try Subprocess.run(
                ["curl", "--fail", "--silent", "--show-error", "--location", "--proto", "=https", "--proto-redir", "=https",
                 "--max-filesize", String(MediaDecoder.maxBytes), "--max-time", String(fetchSeconds), "--output", path, "--", url],
                failure: { AdServeError.invalid(field, "cannot fetch \(url): \($0.trimmingCharacters(in: .whitespacesAndNewlines))") })
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        // curl stops a transfer that grows past the limit, but a server that sends no length is
        // caught only here.
        do {
            try MediaDecoder.checkSize(path)
        } catch {
            try? FileManager.default.removeItem(atPath: path)
            throw error
        }
        return .file(path: path, temporary: true)
    }
}
