import Domain
import Foundation

/// Where an ad's media is, for the encoders: a `file://` URL is read where it is; a `data:` URL
/// (base64, an image/ or video/ type) is written to a temporary file; `https` and `http` media
/// are not fetched here (the ad is encoded from its text).
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
}
