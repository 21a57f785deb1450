import Domain
import Foundation

/// Pictures and videos to RGB pixels, through Debian's `ffmpeg` as a subprocess (PNG, JPEG,
/// WebP, GIF, MP4, WebM, …): the shorter side scaled to 224 with bicubic filtering, then the
/// centre 224×224 cropped — so a 224×224 picture reaches the network unchanged.
public enum MediaDecoder {
    /// Media larger than this are refused before decoding.
    public static let maxBytes = 50 << 20
    static let filter = "scale=\(ImageEncoder.side):\(ImageEncoder.side):force_original_aspect_ratio=increase:flags=bicubic,crop=\(ImageEncoder.side):\(ImageEncoder.side)"
    static let frameBytes = ImageEncoder.side * ImageEncoder.side * 3

    /// The picture's 224×224 RGB bytes.
    public static func image(at path: String) throws(AdServeError) -> [UInt8] {
        try checkSize(path)
        let bytes = try run(["ffmpeg", "-v", "error", "-nostdin", "-i", path, "-vf", filter, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"])
        guard bytes.count == frameBytes else { throw AdServeError(.invalidInput, "\(path) is not a picture ffmpeg can read", field: "media_urls") }
        return bytes
    }

    /// `count` frames spread evenly across the video, each 224×224 RGB.
    public static func videoFrames(at path: String, count: Int) throws(AdServeError) -> [[UInt8]] {
        try checkSize(path)
        let probe = try run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", path])
        guard let seconds = Double(String(decoding: probe, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)), seconds > 0 else {
            throw AdServeError(.invalidInput, "\(path) is not a video ffmpeg can read", field: "media_urls")
        }
        let rate = Double(count) / seconds
        let bytes = try run([
            "ffmpeg", "-v", "error", "-nostdin", "-i", path, "-vf", "fps=\(rate),\(filter)", "-frames:v", String(count), "-f", "rawvideo",
            "-pix_fmt", "rgb24", "pipe:1",
        ])
        let frames = bytes.count / frameBytes
        guard frames > 0 else { throw AdServeError(.invalidInput, "no frame could be read from \(path)", field: "media_urls") }
        return (0..<frames).map { Array(bytes[($0 * frameBytes)..<(($0 + 1) * frameBytes)]) }
    }

    static func checkSize(_ path: String) throws(AdServeError) {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path), let size = attributes[.size] as? Int else {
            throw AdServeError(.invalidInput, "cannot read \(path)", field: "media_urls")
        }
        guard size <= maxBytes else { throw AdServeError(.invalidInput, "\(path) is \(size) bytes; media may have at most \(maxBytes)", field: "media_urls") }
    }

    /// Runs ffmpeg or ffprobe; a failure is the media's fault and names the field.
    static func run(_ command: [String]) throws(AdServeError) -> [UInt8] {
        try Subprocess.run(command) { AdServeError(.invalidInput, "\(command[0]) could not read the media: \($0)", field: "media_urls") }
    }
}
