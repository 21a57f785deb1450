import Domain
import Foundation
import Synchronization

/// What an ad shows, as vectors: `vector` in the text space (384-d, unit length), shared by
/// captions, pictures and users' activity so they can be compared; `imageVector` for media.
public struct ContentVectors: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable { case text, image, video }
    public var kind: Kind
    public var model: String
    public var vector: [Float]
    public var imageVector: [Float]?

    public init(kind: Kind, model: String, vector: [Float], imageVector: [Float]? = nil) {
        self.kind = kind
        self.model = model
        self.vector = vector
        self.imageVector = imageVector
    }
}

/// The boundary between AdServe and its pretrained content models.
public protocol ContentEncoder: Sendable {
    func encode(text: String) -> ContentVectors
    /// A picture file: its image vector, and a vector in the text space.
    func encode(imageAt path: String) throws(AdServeError) -> ContentVectors
    /// A video file: a few frames across it, each encoded as a picture, averaged.
    func encode(videoAt path: String) throws(AdServeError) -> ContentVectors
}

/// The pretrained encoders computed in Swift: all-MiniLM-L6-v2 for text, EfficientNet-Lite0
/// for pictures and video frames. A picture's text-space vector is the MiniLM vector of "a photo
/// of a <class>" for its five most probable ImageNet classes, weighted by their probabilities:
/// so a user whose activity is about "espresso" can match an ad whose picture shows a cup.
public struct PretrainedContentEncoder: ContentEncoder {
    public let text: TextEncoder
    public let image: ImageEncoder
    /// ImageNet's class names in index order.
    public let classNames: [String]
    private let classVectors = ClassVectorCache()
    public static let videoFrames = 4

    public init(text: TextEncoder, image: ImageEncoder, classNames: [String]) {
        self.text = text
        self.image = image
        self.classNames = classNames
    }

    /// Loads the encoders from the cache, fetching and converting them first if needed
    /// (`EncoderModels`).
    public static func load(cache: String = EncoderModels.cacheDirectory, kernel: MatrixKernel = .best) throws(AdServeError) -> PretrainedContentEncoder {
        let text = try TextEncoder(modelDirectory: try EncoderModels.folder(EncoderModels.miniLM, cache: cache), kernel: kernel)
        let image = try ImageEncoder(weightsFile: try EncoderModels.efficientNetWeights(cache: cache), kernel: kernel)
        let namesFile = URL(fileURLWithPath: try EncoderModels.folder(EncoderModels.imageNetClasses, cache: cache))
            .appendingPathComponent("imagenet1k_clean_names.json")
        guard let data = FileManager.default.contents(atPath: namesFile.path),
            let names = try? JSONDecoder().decode([String].self, from: data), names.count == 1000
        else { throw AdServeError(.storage, "\(namesFile.path) does not hold the 1,000 ImageNet class names") }
        return PretrainedContentEncoder(text: text, image: image, classNames: names)
    }

    public func encode(text: String) -> ContentVectors {
        ContentVectors(kind: .text, model: TextEncoder.modelName, vector: self.text.encode(text))
    }

    public func encode(imageAt path: String) throws(AdServeError) -> ContentVectors {
        let (imageVector, probabilities) = image.encode(rgb: try MediaDecoder.image(at: path))
        return ContentVectors(kind: .image, model: Self.imageModel, vector: textVector(probabilities), imageVector: imageVector)
    }

    public func encode(videoAt path: String) throws(AdServeError) -> ContentVectors {
        let frames = try MediaDecoder.videoFrames(at: path, count: Self.videoFrames).map { image.encode(rgb: $0) }
        var imageVector = [Float](repeating: 0, count: ImageEncoder.imageDimensions)
        var probabilities = [Float](repeating: 0, count: 1000)
        for frame in frames {
            for i in imageVector.indices { imageVector[i] += frame.imageVector[i] / Float(frames.count) }
            for i in probabilities.indices { probabilities[i] += frame.probabilities[i] / Float(frames.count) }
        }
        return ContentVectors(kind: .video, model: Self.imageModel, vector: textVector(probabilities), imageVector: imageVector)
    }

    static let imageModel = "\(ImageEncoder.modelName) + \(TextEncoder.modelName)"

    /// Σ p(class) · vector("a photo of a <class>") over the five most probable classes, unit length.
    func textVector(_ probabilities: [Float]) -> [Float] {
        let top = probabilities.indices.sorted { probabilities[$0] > probabilities[$1] }.prefix(5)
        var sum = [Float](repeating: 0, count: TextEncoder.dimensions)
        for index in top {
            let vector = classVectors.vector(index) { text.encode("a photo of a \(classNames[index])") }
            for d in sum.indices { sum[d] += probabilities[index] * vector[d] }
        }
        return VectorMath.unitLength(sum)
    }
}

/// The text vectors of class names, computed the first time a class comes up.
final class ClassVectorCache: Sendable {
    private let vectors = Mutex<[Int: [Float]]>([:])

    func vector(_ index: Int, _ make: () -> [Float]) -> [Float] {
        if let known = vectors.withLock({ $0[index] }) { return known }
        let made = make()
        vectors.withLock { $0[index] = made }
        return made
    }
}

