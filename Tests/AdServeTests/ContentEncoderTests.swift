@testable import ContentEncoding
import Domain
import Foundation
import Signing
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

    /// The kernels this machine can run. OpenBLAS is optional, loaded at run time where it is
    /// installed (`.ci/run` installs it): without it the package's own kernel alone is tested,
    /// as it alone would serve.
    static let kernels: [MatrixKernel] = MatrixKernel.best == .blas ? MatrixKernel.allCases : [.swift]

    /// Loaded once per kernel for the suite (22.7M weights each).
    static let encoders = Result { try kernels.map { try PretrainedContentEncoder.load(kernel: $0) } }
    static var encoder: Result<PretrainedContentEncoder, any Error> { encoders.map { $0[0] } }

    static func reference() throws -> Reference {
        try JSONFormat.decoder().decode(Reference.self, from: Data(contentsOf: fixture))
    }

    static func cosine(_ a: [Float], _ b: [Float]) -> Double { VectorMath.cosine(a, b) }

    @Test(arguments: ContentEncoderTests.kernels)
    func tokensAndVectorsMatchSentenceTransformers(kernel: MatrixKernel) throws {
        let reference = try Self.reference()
        #expect(reference.model.contains(TextEncoder.modelName))
        let encoder = try Self.encoders.get()[Self.kernels.firstIndex(of: kernel)!]
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

/// The Swift EfficientNet-Lite0 against the PyTorch package on the pictures of
/// `scripts/image-encoder-reference.py` (`Tests/Fixtures/images/`, reference vectors in
/// `Tests/Fixtures/image-encoder-reference.json`), decoded by ffmpeg.
@Suite(.serialized) struct ImageEncoderTests {
    struct Reference: Decodable {
        struct Picture: Decodable {
            var file: String
            var rgbSha256: String
            var imageVector: [Float]
            var top5: [[Double]]
        }
        var images: [Picture]
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Fixtures")

    @Test func imageVectorsAndClassesMatchPyTorch() throws {
        let reference = try JSONFormat.decoder().decode(
            Reference.self, from: Data(contentsOf: Self.fixtures.appendingPathComponent("image-encoder-reference.json")))
        #expect(reference.images.count >= 4)
        let encoder = try ContentEncoderTests.encoder.get()
        for picture in reference.images {
            let path = Self.fixtures.appendingPathComponent("images").appendingPathComponent(URL(fileURLWithPath: picture.file).lastPathComponent).path
            let pixels = try MediaDecoder.image(at: path)
            // A 224×224 PNG reaches the network byte for byte.
            #expect(Hex.encode(SHA256.hash(pixels)) == picture.rgbSha256, "pixels of \(picture.file)")
            let (vector, probabilities) = encoder.image.encode(rgb: pixels)
            let cosine = ContentEncoderTests.cosine(vector, picture.imageVector)
            #expect(cosine >= 0.999, "cosine \(cosine) for \(picture.file)")
            let top5 = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }.prefix(5).map { Double($0) }
            #expect(top5 == picture.top5.map { $0[0] }, "classes of \(picture.file)")
        }
    }

    @Test func picturesOfOtherSizesAndVideosGetBothVectors() throws {
        let encoder = try ContentEncoderTests.encoder.get()
        let images = Self.fixtures.appendingPathComponent("images")
        let wide = try encoder.encode(imageAt: images.appendingPathComponent("flat-shapes-320x200.png").path)
        #expect(wide.kind == .image && wide.imageVector?.count == ImageEncoder.imageDimensions && wide.vector.count == TextEncoder.dimensions)
        #expect(abs(wide.vector.reduce(0) { $0 + $1 * $1 } - 1) < 1e-4)
        // A 3-second video of one still picture, losslessly coded (FFV1, RGB): its frames are that
        // picture, so its vectors are.
        let still = images.appendingPathComponent("red-ball.png").path
        let video = FileManager.default.temporaryDirectory.appendingPathComponent("adserve-still-\(UInt32.random(in: 0...UInt32.max)).mkv")
        defer { try? FileManager.default.removeItem(at: video) }
        _ = try MediaDecoder.run(["ffmpeg", "-v", "error", "-nostdin", "-y", "-loop", "1", "-i", still, "-t", "3", "-r", "10", "-c:v", "ffv1", "-pix_fmt", "bgr0", video.path])
        let moving = try encoder.encode(videoAt: video.path)
        let picture = try encoder.encode(imageAt: still)
        #expect(moving.kind == .video)
        #expect(ContentEncoderTests.cosine(try #require(moving.imageVector), try #require(picture.imageVector)) > 0.9999)
        #expect(ContentEncoderTests.cosine(moving.vector, picture.vector) > 0.9999)
    }

    @Test func whatIsNotAPictureIsRefusedNamingTheField() throws {
        let encoder = try ContentEncoderTests.encoder.get()
        let notAPicture = Self.fixtures.appendingPathComponent("text-encoder-reference.json").path
        let error = #expect(throws: AdServeError.self) { try encoder.encode(imageAt: notAPicture) }
        #expect(error?.field == "media_urls")
        let missing = #expect(throws: AdServeError.self) { try encoder.encode(imageAt: "/nonexistent/picture.png") }
        #expect(missing?.field == "media_urls")
    }
}
