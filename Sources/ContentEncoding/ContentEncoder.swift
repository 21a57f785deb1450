import Domain

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
}

/// The pretrained encoders computed in Swift: all-MiniLM-L6-v2 for text.
public struct PretrainedContentEncoder: ContentEncoder {
    public let text: TextEncoder

    public init(text: TextEncoder) { self.text = text }

    /// Loads the encoders from the cache, fetching them first if needed (`EncoderModels`).
    public static func load(cache: String = EncoderModels.cacheDirectory, kernel: MatrixKernel = .blas) throws(AdServeError) -> PretrainedContentEncoder {
        PretrainedContentEncoder(text: try TextEncoder(modelDirectory: try EncoderModels.folder(EncoderModels.miniLM, cache: cache), kernel: kernel))
    }

    public func encode(text: String) -> ContentVectors {
        ContentVectors(kind: .text, model: TextEncoder.modelName, vector: self.text.encode(text))
    }
}

