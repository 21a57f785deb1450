import Domain

/// The candidate model: two towers that map a user and an ad into one space of `dimension`
/// floats, so that the ads a user will click have a large inner product with the user's vector
/// and can be fetched from an approximate-nearest-neighbour index of every ad.
///
/// Each tower is linear: a projection of a dense input (the user's activity sketch, the ad's
/// content sketch — `VectorSketch`) plus the sum of hashed embeddings of sparse fields (the
/// user's age band, gender, country, language, interests and device and a constant; the ad's
/// id, campaign, advertiser, format, objective and caption words). A new ad has a vector
/// before its first impression: its content, campaign and words are known; its id's embedding
/// is still at its small initial value.
///
/// Trained on clicked impressions alone with in-batch negatives: each click in a batch is
/// scored against the other clicks' ads (a sampled softmax), with the log-frequency
/// correction of Yi et al. (RecSys 2019), so that popular ads, which are negatives in many
/// batches, are not pushed down for it. Adagrad, a fixed number of epochs.
public struct TwoTowerModel: Sendable {
    public static let kind = "two-tower"

    public struct Parameters: Sendable, Equatable, Codable {
        /// Floats per vector (the index's dimension).
        public var dimension = 32
        /// log2 of the buckets of each tower's embedding table.
        public var bits = 16
        /// Defaults chosen on three topics-world logs of random ads (300 ads/3,000 users, 400/3,000
        /// and 2,100/20,000; 700 to 15,000 training clicks): against 0.05, 5 epochs and batches of
        /// 256, these raised recall@50 on all three (README, "The candidate stage").
        public var learningRate: Float = 0.02
        public var l2: Float = 1e-5
        public var epochs = 10
        public var batchSize = 64
        public var seed: UInt64 = 1
        public init() {}
    }

    /// One side's input: a dense sketch and the table slots of its sparse fields.
    public struct Side: Sendable, Equatable {
        public var sketch: VectorSketch?
        public var slots: [UInt32]
    }

    public let parameters: Parameters
    let hasher: FeatureHasher
    /// Per tower: a `dimension × VectorSketch.dimension` projection, row-major, and `2^bits × dimension` embeddings.
    var userProjection: [Float]
    var userEmbeddings: [Float]
    var adProjection: [Float]
    var adEmbeddings: [Float]

    public var dimension: Int { parameters.dimension }

    public init(parameters: Parameters = Parameters()) {
        self.parameters = parameters
        hasher = FeatureHasher(bits: parameters.bits, seed: 0x7770_7E55 ^ parameters.seed)
        var rng = SplitMix64(seed: parameters.seed)
        let d = parameters.dimension
        func random(_ count: Int, scale: Float) -> [Float] { (0..<count).map { _ in Float.random(in: -scale...scale, using: &rng) } }
        userProjection = random(d * VectorSketch.dimension, scale: 1 / Float(VectorSketch.dimension).squareRoot())
        adProjection = random(d * VectorSketch.dimension, scale: 1 / Float(VectorSketch.dimension).squareRoot())
        userEmbeddings = random((1 << hasher.bits) * d, scale: 0.01)
        adEmbeddings = random((1 << hasher.bits) * d, scale: 0.01)
    }

    // MARK: Inputs

    /// The user's side from its raw fields (what serving has and what the log keeps).
    public func userSide(
        sketch: VectorSketch?, age: Int?, gender: String?, country: String?, language: String?, interests: [String], device: String?
    ) -> Side {
        var keys: [UInt64] = [hasher.key(namespace: "bias", value: 0)]
        if let age { keys.append(hasher.key(namespace: "age", value: Int64(min(max(age, 0), 120) / 5))) }
        if let gender { keys.append(hasher.key(namespace: "gender", value: gender.lowercased())) }
        if let country { keys.append(hasher.key(namespace: "country", value: country.lowercased())) }
        if let language { keys.append(hasher.key(namespace: "language", value: language.lowercased())) }
        for interest in interests { keys.append(hasher.key(namespace: "interest", value: interest.lowercased())) }
        if let device { keys.append(hasher.key(namespace: "device", value: device.lowercased())) }
        return Side(sketch: sketch, slots: keys.map(hasher.slot))
    }

    public func userSide(_ f: ClickFeatureInput) -> Side {
        userSide(sketch: f.userSketch, age: f.age, gender: f.gender, country: f.country, language: f.language, interests: f.interests, device: f.device)
    }

    public func userSide(_ profile: UserProfile?, device: String?) -> Side {
        userSide(
            sketch: VectorSketch(profile?.activityVector), age: profile?.age, gender: profile?.gender, country: profile?.country,
            language: profile?.language, interests: profile?.interests ?? [], device: device)
    }

    /// The ad's side from its raw fields.
    public func adSide(sketch: VectorSketch?, adID: Int64, campaignID: Int64, advertiserID: Int64, format: String, objective: String, caption: String) -> Side {
        var keys: [UInt64] = [
            hasher.key(namespace: "ad", value: adID), hasher.key(namespace: "campaign", value: campaignID),
            hasher.key(namespace: "advertiser", value: advertiserID), hasher.key(namespace: "format", value: format),
            hasher.key(namespace: "objective", value: objective),
        ]
        for word in Set(ClickFeatures.words(caption)) { keys.append(hasher.key(namespace: "word", value: word)) }
        return Side(sketch: sketch, slots: keys.map(hasher.slot).sorted())
    }

    public func adSide(_ f: ClickFeatureInput) -> Side {
        adSide(sketch: f.adSketch, adID: f.adId, campaignID: f.campaignId, advertiserID: f.advertiserId, format: f.format, objective: f.objective, caption: f.caption)
    }

    // MARK: Towers

    public func userVector(_ side: Side) -> [Float] { tower(side, userProjection, userEmbeddings) }
    public func adVector(_ side: Side) -> [Float] { tower(side, adProjection, adEmbeddings) }

    /// Writes the user's vector into `out` (`dimension` floats) without allocating.
    public func userVector(_ side: Side, into out: UnsafeMutableBufferPointer<Float>) { tower(side, userProjection, userEmbeddings, into: out) }

    private func tower(_ side: Side, _ projection: [Float], _ embeddings: [Float]) -> [Float] {
        var out = [Float](repeating: 0, count: dimension)
        out.withUnsafeMutableBufferPointer { tower(side, projection, embeddings, into: $0) }
        return out
    }

    private func tower(_ side: Side, _ projection: [Float], _ embeddings: [Float], into out: UnsafeMutableBufferPointer<Float>) {
        let d = dimension
        let w = VectorSketch.dimension
        for i in 0..<d { out[i] = 0 }
        projection.withUnsafeBufferPointer { p in
            if let sketch = side.sketch {
                for i in 0..<d {
                    var acc: Float = 0
                    for j in 0..<w { acc += p[i * w + j] * sketch[j] }
                    out[i] = acc
                }
            }
        }
        embeddings.withUnsafeBufferPointer { e in
            for slot in side.slots {
                let base = Int(slot) * d
                for i in 0..<d { out[i] += e[base + i] }
            }
        }
    }

    // MARK: Training

    /// One clicked impression: the user's side and the ad's side, and the ad's id (for the
    /// frequency correction and to skip accidental positives among the negatives).
    public struct Click: Sendable {
        public var user: Side
        public var ad: Side
        public var adID: Int64
        public init(user: Side, ad: Side, adID: Int64) {
            self.user = user
            self.ad = ad
            self.adID = adID
        }
    }

    /// Trains on `clicks` (in any order; shuffled with the model's seed each epoch). Returns
    /// the mean in-batch softmax loss of each epoch.
    @discardableResult
    public mutating func train(_ clicks: [Click]) -> [Double] {
        guard clicks.count >= 2 else { return [] }
        var frequency: [Int64: Int] = [:]
        for click in clicks { frequency[click.adID, default: 0] += 1 }
        let total = Float(clicks.count)
        let logQ = clicks.map { log(Float(frequency[$0.adID] ?? 1) / total) }
        var state = TrainingState(model: self)
        var rng = SplitMix64(seed: parameters.seed ^ 0x7EA1)
        var order = Array(clicks.indices)
        var losses: [Double] = []
        for _ in 0..<parameters.epochs {
            order.shuffle(using: &rng)
            var loss = 0.0
            var batches = 0
            var start = 0
            while start + 1 < order.count {
                let batch = Array(order[start..<min(order.count, start + parameters.batchSize)])
                loss += state.step(&self, batch: batch, clicks: clicks, logQ: logQ)
                batches += 1
                start += parameters.batchSize
            }
            losses.append(loss / Double(max(1, batches)))
        }
        return losses
    }

    /// Adagrad accumulators, one per weight.
    private struct TrainingState {
        var userProjection: [Float]
        var userEmbeddings: [Float]
        var adProjection: [Float]
        var adEmbeddings: [Float]

        init(model: TwoTowerModel) {
            userProjection = [Float](repeating: 1e-6, count: model.userProjection.count)
            userEmbeddings = [Float](repeating: 1e-6, count: model.userEmbeddings.count)
            adProjection = [Float](repeating: 1e-6, count: model.adProjection.count)
            adEmbeddings = [Float](repeating: 1e-6, count: model.adEmbeddings.count)
        }

        /// One step of the sampled softmax over a batch; returns its mean loss.
        mutating func step(_ model: inout TwoTowerModel, batch: [Int], clicks: [Click], logQ: [Float]) -> Double {
            let d = model.dimension
            let b = batch.count
            let users = batch.map { model.userVector(clicks[$0].user) }
            let ads = batch.map { model.adVector(clicks[$0].ad) }
            // Gradients of the mean loss with respect to each user and ad vector.
            var userGrad = [[Float]](repeating: [Float](repeating: 0, count: d), count: b)
            var adGrad = [[Float]](repeating: [Float](repeating: 0, count: d), count: b)
            var loss = 0.0
            var logits = [Float](repeating: 0, count: b)
            for i in 0..<b {
                let adI = clicks[batch[i]].adID
                var maxLogit = -Float.infinity
                for j in 0..<b {
                    if j != i && clicks[batch[j]].adID == adI {
                        logits[j] = -.infinity  // the same ad: not a negative
                        continue
                    }
                    var dot: Float = 0
                    for k in 0..<d { dot += users[i][k] * ads[j][k] }
                    logits[j] = dot - logQ[batch[j]]
                    maxLogit = max(maxLogit, logits[j])
                }
                var sum: Float = 0
                for j in 0..<b where logits[j] > -.infinity {
                    logits[j] = exp(logits[j] - maxLogit)
                    sum += logits[j]
                }
                for j in 0..<b { logits[j] = logits[j] > -.infinity ? logits[j] / sum : 0 }
                loss -= Double(log(max(logits[i], 1e-30)))
                let scale = 1 / Float(b)
                for j in 0..<b {
                    let g = (logits[j] - (j == i ? 1 : 0)) * scale
                    if g == 0 { continue }
                    for k in 0..<d {
                        userGrad[i][k] += g * ads[j][k]
                        adGrad[j][k] += g * users[i][k]
                    }
                }
            }
            let rate = model.parameters.learningRate
            let l2 = model.parameters.l2
            for (n, index) in batch.enumerated() {
                Self.apply(userGrad[n], clicks[index].user, d, rate, l2, &model.userProjection, &model.userEmbeddings, &userProjection, &userEmbeddings)
                Self.apply(adGrad[n], clicks[index].ad, d, rate, l2, &model.adProjection, &model.adEmbeddings, &adProjection, &adEmbeddings)
            }
            return loss / Double(b)
        }

        /// Back-propagates one output gradient into a tower's weights (Adagrad, with L2 on the
        /// rows it touches).
        static func apply(
            _ grad: [Float], _ side: Side, _ d: Int, _ rate: Float, _ l2: Float,
            _ projection: inout [Float], _ embeddings: inout [Float], _ projectionSum: inout [Float], _ embeddingSum: inout [Float]
        ) {
            let w = VectorSketch.dimension
            if let sketch = side.sketch {
                for i in 0..<d where grad[i] != 0 {
                    for j in 0..<w {
                        let at = i * w + j
                        let g = grad[i] * sketch[j] + l2 * projection[at]
                        projectionSum[at] += g * g
                        projection[at] -= rate * g / projectionSum[at].squareRoot()
                    }
                }
            }
            for slot in side.slots {
                let base = Int(slot) * d
                for i in 0..<d {
                    let g = grad[i] + l2 * embeddings[base + i]
                    embeddingSum[base + i] += g * g
                    embeddings[base + i] -= rate * g / embeddingSum[base + i].squareRoot()
                }
            }
        }
    }

    // MARK: Bytes

    static let magic = Array("ADSERVE-TWO-TOWER-1\n".utf8)

    /// The model as bytes: parameters, then the four weight tables.
    public func serialized() -> [UInt8] {
        var writer = ModelBytesWriter(capacity: Self.magic.count + 64 + 4 * (userEmbeddings.count * 2 + userProjection.count * 2))
        writer.bytes += Self.magic
        writer.put(UInt32(parameters.dimension))
        writer.put(UInt32(parameters.bits))
        writer.put(parameters.seed)
        writer.put(userProjection)
        writer.put(adProjection)
        writer.put(userEmbeddings)
        writer.put(adEmbeddings)
        return writer.bytes
    }

    public init(serialized bytes: [UInt8]) throws(AdServeError) {
        guard var reader = ModelBytesReader(bytes, magic: Self.magic) else { throw AdServeError.invalid("model", "not a two-tower model file") }
        var parameters = Parameters()
        parameters.dimension = Int(try reader.take(UInt32.self))
        parameters.bits = Int(try reader.take(UInt32.self))
        parameters.seed = try reader.take(UInt64.self)
        guard (1...1024).contains(parameters.dimension), (4...24).contains(parameters.bits) else {
            throw AdServeError.invalid("model", "two-tower model file has dimension \(parameters.dimension) and \(parameters.bits) bits")
        }
        self.init(parameters: parameters)
        let dense = parameters.dimension * VectorSketch.dimension
        let table = (1 << hasher.bits) * parameters.dimension
        userProjection = try reader.takeFloats(dense)
        adProjection = try reader.takeFloats(dense)
        userEmbeddings = try reader.takeFloats(table)
        adEmbeddings = try reader.takeFloats(table)
        guard reader.remaining == 0 else { throw AdServeError.invalid("model", "two-tower model file has \(reader.remaining) bytes past its weights") }
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
