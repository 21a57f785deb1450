import ContentEncoding
import Domain
import Foundation

/// Pictures and short videos for the simulated ads, drawn so that what an ad shows follows its
/// campaign's latent topic, as a real creative would: each topic has a hue and a kind of shape
/// (circles, squares, triangles, stripes; large and few or small and many), drawn on a pale
/// ground of that hue. A quarter of the shapes come from another topic, as a quarter of caption
/// words do: content carries signal, noisily. Videos are three such frames with the shapes moving,
/// made into an MP4 by ffmpeg.
struct GeneratedMedia {
    static let side = 224
    let directory: String

    /// Writes campaign `campaign`'s picture (a PPM file) and, if `video`, its clip; returns the
    /// file URL of the medium its ads use.
    func write(campaign: Int, topic: Int, topics: Int, video: Bool, rng: inout SplitMix64) throws(AdServeError) -> String {
        let shapes = Self.shapes(topic: topic, topics: topics, rng: &rng)
        let ground = Self.colour(hue: Double(topic) / Double(topics), saturation: 0.25, value: Double.random(in: 0.85...0.97, using: &rng))
        if !video {
            let path = (directory as NSString).appendingPathComponent("campaign-\(campaign).ppm")
            try Self.writeFile(Data("P6\n\(Self.side) \(Self.side)\n255\n".utf8) + Self.draw(shapes, ground: ground, shift: 0), path: path)
            return URL(fileURLWithPath: path).absoluteString
        }
        let raw = (directory as NSString).appendingPathComponent("campaign-\(campaign).rgb")
        let path = (directory as NSString).appendingPathComponent("campaign-\(campaign).mp4")
        try Self.writeFile((0..<3).reduce(into: Data()) { $0 += Self.draw(shapes, ground: ground, shift: $1 * 24) }, path: raw)
        defer { try? FileManager.default.removeItem(atPath: raw) }
        _ = try Subprocess.run(
            ["ffmpeg", "-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "\(Self.side)x\(Self.side)", "-r", "1", "-i", raw,
             "-c:v", "mpeg4", "-q:v", "3", "-pix_fmt", "yuv420p", path],
            failure: { AdServeError(.storage, "ffmpeg could not write a simulated video: \($0)") })
        return URL(fileURLWithPath: path).absoluteString
    }

    struct Shape {
        var kind: Int
        var x: Double
        var y: Double
        var size: Double
        var colour: (UInt8, UInt8, UInt8)
    }

    static func shapes(topic: Int, topics: Int, rng: inout SplitMix64) -> [Shape] {
        let large = (topic / 4) % 2 == 0
        return (0..<(large ? 3 : 9)).map { _ in
            let t = Double.random(in: 0..<1, using: &rng) < 0.75 ? topic : Int.random(in: 0..<topics, using: &rng)
            return Shape(
                kind: t % 4, x: Double.random(in: 20...204, using: &rng), y: Double.random(in: 20...204, using: &rng),
                size: large ? Double.random(in: 40...70, using: &rng) : Double.random(in: 12...24, using: &rng),
                colour: colour(hue: Double(t) / Double(topics), saturation: 0.85, value: Double.random(in: 0.55...0.9, using: &rng)))
        }
    }

    /// RGB bytes of one frame; shapes move right by `shift` pixels (wrapping).
    static func draw(_ shapes: [Shape], ground: (UInt8, UInt8, UInt8), shift: Int) -> Data {
        var pixels = [UInt8](repeating: 0, count: side * side * 3)
        for i in 0..<(side * side) {
            pixels[3 * i] = ground.0
            pixels[3 * i + 1] = ground.1
            pixels[3 * i + 2] = ground.2
        }
        for shape in shapes {
            let cx = (shape.x + Double(shift)).truncatingRemainder(dividingBy: Double(side))
            let r = shape.size / 2
            for y in max(0, Int(shape.y - r))..<min(side, Int(shape.y + r) + 1) {
                for x in max(0, Int(cx - r))..<min(side, Int(cx + r) + 1) {
                    let dx = Double(x) - cx, dy = Double(y) - shape.y
                    let inside = switch shape.kind {
                    case 0: dx * dx + dy * dy <= r * r  // circle
                    case 1: true  // square
                    case 2: dy >= -r && abs(dx) <= (dy + r) / 2  // triangle, point up
                    default: Int((dy + r) / max(r / 3, 1)) % 2 == 0  // stripes
                    }
                    guard inside else { continue }
                    let p = 3 * (y * side + x)
                    pixels[p] = shape.colour.0
                    pixels[p + 1] = shape.colour.1
                    pixels[p + 2] = shape.colour.2
                }
            }
        }
        return Data(pixels)
    }

    static func colour(hue: Double, saturation: Double, value: Double) -> (UInt8, UInt8, UInt8) {
        let h = (hue - hue.rounded(.down)) * 6
        let c = value * saturation
        let x = c * (1 - abs(h.truncatingRemainder(dividingBy: 2) - 1))
        let (r, g, b): (Double, Double, Double) = switch Int(h) {
        case 0: (c, x, 0)
        case 1: (x, c, 0)
        case 2: (0, c, x)
        case 3: (0, x, c)
        case 4: (x, 0, c)
        default: (c, 0, x)
        }
        let m = value - c
        return (UInt8((r + m) * 255), UInt8((g + m) * 255), UInt8((b + m) * 255))
    }

    static func writeFile(_ data: Data, path: String) throws(AdServeError) {
        guard FileManager.default.createFile(atPath: path, contents: data) else { throw AdServeError(.storage, "cannot write \(path)") }
    }
}
