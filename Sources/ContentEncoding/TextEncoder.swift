import Domain
import Foundation

/// How the text encoder multiplies matrices: OpenBLAS (`BLAS`, loaded at run time) or this
/// package's own SIMD8 loops (baseline x86-64, no FMA). Both give the same vectors to float
/// rounding; `adserve embed --kernel` times either.
public enum MatrixKernel: String, Sendable, CaseIterable {
    case blas, swift

    /// `blas` where OpenBLAS could be loaded, else `swift`.
    public static var best: MatrixKernel { BLAS.isAvailable ? .blas : .swift }

    func requireAvailable() throws(AdServeError) {
        if self == .blas && !BLAS.isAvailable {
            throw AdServeError(.storage, "OpenBLAS (libopenblas.so.0) cannot be loaded; install libopenblas0 or use the swift kernel")
        }
    }
}

/// all-MiniLM-L6-v2 in Swift: a 6-layer BERT (hidden 384, 12 heads, feed-forward 1536, exact
/// GELU, LayerNorm ε 1e-12) over WordPiece ids, mean-pooled over every token of the sequence
/// ([CLS] and [SEP] included, as sentence-transformers' attention mask does for one sentence)
/// and L2-normalized: sentence-transformers' `encode(text, normalize_embeddings=True)`.
public struct TextEncoder: Sendable {
    public static let modelName = "all-MiniLM-L6-v2"
    public static let dimensions = 384
    /// sentence-transformers' `max_seq_length` for this model: longer texts are cut.
    public static let maxTokens = 256

    struct Layer: Sendable {
        var query, key, value, attentionOutput: Linear
        var attentionNorm: LayerNorm
        var intermediate, output: Linear
        var outputNorm: LayerNorm
    }

    let tokenizer: WordPieceTokenizer
    let wordEmbeddings: [Float]
    let positionEmbeddings: [Float]
    let tokenTypeEmbedding: [Float]
    let embeddingNorm: LayerNorm
    let layers: [Layer]
    let heads = 12
    public let kernel: MatrixKernel

    /// Reads `vocab.txt` and `model.safetensors` from the model folder.
    public init(modelDirectory: String, kernel: MatrixKernel = .best) throws(AdServeError) {
        try kernel.requireAvailable()
        self.kernel = kernel
        let folder = URL(fileURLWithPath: modelDirectory)
        tokenizer = try WordPieceTokenizer(vocabularyFile: folder.appendingPathComponent("vocab.txt").path)
        let weights = try SafeTensors(path: folder.appendingPathComponent("model.safetensors").path)
        let h = Self.dimensions
        let prefix = weights.tensors["embeddings.word_embeddings.weight"] != nil ? "" : "bert."
        func w(_ name: String, _ shape: [Int]) throws(AdServeError) -> [Float] { try weights.tensor(prefix + name, shape: shape) }
        let vocabularySize = tokenizer.vocabulary.count
        wordEmbeddings = try w("embeddings.word_embeddings.weight", [vocabularySize, h])
        positionEmbeddings = try w("embeddings.position_embeddings.weight", [512, h])
        tokenTypeEmbedding = Array(try w("embeddings.token_type_embeddings.weight", [2, h])[0..<h])
        embeddingNorm = LayerNorm(weight: try w("embeddings.LayerNorm.weight", [h]), bias: try w("embeddings.LayerNorm.bias", [h]))
        var layers: [Layer] = []
        for i in 0..<6 {
            let p = "encoder.layer.\(i)."
            func linear(_ name: String, out: Int, in inputs: Int) throws(AdServeError) -> Linear {
                Linear(weight: try w(p + name + ".weight", [out, inputs]), bias: try w(p + name + ".bias", [out]), inputs: inputs, outputs: out, kernel: kernel)
            }
            func norm(_ name: String) throws(AdServeError) -> LayerNorm {
                LayerNorm(weight: try w(p + name + ".weight", [h]), bias: try w(p + name + ".bias", [h]))
            }
            layers.append(Layer(
                query: try linear("attention.self.query", out: h, in: h), key: try linear("attention.self.key", out: h, in: h),
                value: try linear("attention.self.value", out: h, in: h), attentionOutput: try linear("attention.output.dense", out: h, in: h),
                attentionNorm: try norm("attention.output.LayerNorm"), intermediate: try linear("intermediate.dense", out: 1536, in: h),
                output: try linear("output.dense", out: h, in: 1536), outputNorm: try norm("output.LayerNorm")))
        }
        self.layers = layers
    }

    /// The WordPiece ids the model reads for `text`, [CLS] and [SEP] included.
    public func tokens(_ text: String) -> [Int32] { tokenizer.encode(text, maxTokens: Self.maxTokens) }

    /// The text's unit-length 384-d vector.
    public func encode(_ text: String) -> [Float] { encode(tokens: tokens(text)) }

    func encode(tokens ids: [Int32]) -> [Float] {
        let h = Self.dimensions
        let n = ids.count
        var x = [Float](repeating: 0, count: n * h)
        for (t, id) in ids.enumerated() {
            let word = Int(id) * h
            for d in 0..<h {
                x[t * h + d] = wordEmbeddings[word + d] + positionEmbeddings[t * h + d] + tokenTypeEmbedding[d]
            }
        }
        embeddingNorm.apply(&x, rows: n)
        for layer in layers {
            let attended = attention(layer, x, rows: n)
            var y = layer.attentionOutput.apply(attended, rows: n)
            for i in y.indices { y[i] += x[i] }
            layer.attentionNorm.apply(&y, rows: n)
            var inner = layer.intermediate.apply(y, rows: n)
            for i in inner.indices { inner[i] = Self.gelu(inner[i]) }
            var z = layer.output.apply(inner, rows: n)
            for i in z.indices { z[i] += y[i] }
            layer.outputNorm.apply(&z, rows: n)
            x = z
        }
        var pooled = [Float](repeating: 0, count: h)
        for t in 0..<n {
            for d in 0..<h { pooled[d] += x[t * h + d] }
        }
        var norm: Float = 0
        for d in 0..<h {
            pooled[d] /= Float(n)
            norm += pooled[d] * pooled[d]
        }
        let scale = 1 / max(norm.squareRoot(), 1e-12)
        return pooled.map { $0 * scale }
    }

    /// Multi-head self-attention over the whole sequence (one sentence: nothing is masked).
    /// Queries, keys and values are regrouped head by head ([head][token][32]), so every dot
    /// product and every weighted sum runs over 32 contiguous floats, four SIMD8 at a time.
    private func attention(_ layer: Layer, _ x: [Float], rows n: Int) -> [Float] {
        let h = Self.dimensions
        let headSize = h / heads
        precondition(headSize == 32)
        func byHead(_ m: [Float]) -> [Float] {
            var out = [Float](repeating: 0, count: m.count)
            for t in 0..<n {
                for head in 0..<heads {
                    for d in 0..<headSize { out[(head * n + t) * headSize + d] = m[t * h + head * headSize + d] }
                }
            }
            return out
        }
        let q = byHead(layer.query.apply(x, rows: n))
        let k = byHead(layer.key.apply(x, rows: n))
        let v = byHead(layer.value.apply(x, rows: n))
        let scale = 1 / Float(headSize).squareRoot()
        var context = [Float](repeating: 0, count: n * h)
        if kernel == .blas {
            // Per head: scores = q·kᵀ/√32 (n×n), softmax by row, then scores·v (n×32).
            var scores = [Float](repeating: 0, count: n * n)
            var headContext = [Float](repeating: 0, count: n * headSize)
            for head in 0..<heads {
                let offset = head * n * headSize
                q.withUnsafeBufferPointer { qp in
                    k.withUnsafeBufferPointer { kp in
                        scores.withUnsafeMutableBufferPointer { sp in
                            BLAS.multiply(
                                m: n, n: n, k: headSize, alpha: scale, qp.baseAddress! + offset, lda: headSize, kp.baseAddress! + offset,
                                ldb: headSize, transposeB: true, beta: 0, sp.baseAddress!, ldc: n)
                        }
                    }
                }
                for i in 0..<n {
                    var maxScore = -Float.infinity
                    for j in 0..<n { maxScore = max(maxScore, scores[i * n + j]) }
                    var total: Float = 0
                    for j in 0..<n {
                        let e = Foundation.exp(scores[i * n + j] - maxScore)
                        scores[i * n + j] = e
                        total += e
                    }
                    for j in 0..<n { scores[i * n + j] /= total }
                }
                v.withUnsafeBufferPointer { vp in
                    scores.withUnsafeBufferPointer { sp in
                        headContext.withUnsafeMutableBufferPointer { hp in
                            BLAS.multiply(
                                m: n, n: headSize, k: n, sp.baseAddress!, lda: n, vp.baseAddress! + offset, ldb: headSize, transposeB: false,
                                beta: 0, hp.baseAddress!, ldc: headSize)
                        }
                    }
                }
                for i in 0..<n {
                    for d in 0..<headSize { context[i * h + head * headSize + d] = headContext[i * headSize + d] }
                }
            }
            return context
        }
        var scores = [Float](repeating: 0, count: n)
        q.withUnsafeBytes { qb in
            k.withUnsafeBytes { kb in
                v.withUnsafeBytes { vb in
                    for head in 0..<heads {
                        for i in 0..<n {
                            let qi = (head * n + i) * headSize * 4
                            let q0 = qb.loadUnaligned(fromByteOffset: qi, as: SIMD8<Float>.self)
                            let q1 = qb.loadUnaligned(fromByteOffset: qi + 32, as: SIMD8<Float>.self)
                            let q2 = qb.loadUnaligned(fromByteOffset: qi + 64, as: SIMD8<Float>.self)
                            let q3 = qb.loadUnaligned(fromByteOffset: qi + 96, as: SIMD8<Float>.self)
                            var maxScore = -Float.infinity
                            for j in 0..<n {
                                let kj = (head * n + j) * headSize * 4
                                var acc = q0 * kb.loadUnaligned(fromByteOffset: kj, as: SIMD8<Float>.self)
                                acc += q1 * kb.loadUnaligned(fromByteOffset: kj + 32, as: SIMD8<Float>.self)
                                acc += q2 * kb.loadUnaligned(fromByteOffset: kj + 64, as: SIMD8<Float>.self)
                                acc += q3 * kb.loadUnaligned(fromByteOffset: kj + 96, as: SIMD8<Float>.self)
                                scores[j] = acc.sum() * scale
                                maxScore = max(maxScore, scores[j])
                            }
                            var total: Float = 0
                            for j in 0..<n {
                                scores[j] = Foundation.exp(scores[j] - maxScore)
                                total += scores[j]
                            }
                            var c0 = SIMD8<Float>(), c1 = SIMD8<Float>(), c2 = SIMD8<Float>(), c3 = SIMD8<Float>()
                            for j in 0..<n {
                                let p = SIMD8<Float>(repeating: scores[j] / total)
                                let vj = (head * n + j) * headSize * 4
                                c0 += p * vb.loadUnaligned(fromByteOffset: vj, as: SIMD8<Float>.self)
                                c1 += p * vb.loadUnaligned(fromByteOffset: vj + 32, as: SIMD8<Float>.self)
                                c2 += p * vb.loadUnaligned(fromByteOffset: vj + 64, as: SIMD8<Float>.self)
                                c3 += p * vb.loadUnaligned(fromByteOffset: vj + 96, as: SIMD8<Float>.self)
                            }
                            let base = i * h + head * headSize
                            for d in 0..<8 {
                                context[base + d] = c0[d]
                                context[base + 8 + d] = c1[d]
                                context[base + 16 + d] = c2[d]
                                context[base + 24 + d] = c3[d]
                            }
                        }
                    }
                }
            }
        }
        return context
    }

    /// BERT's GELU, the exact one: x · Φ(x).
    static func gelu(_ x: Float) -> Float {
        0.5 * x * (1 + erff(x * 0.70710678118654752))
    }
}

/// y = x · Wᵀ + b for a batch of rows, given W as PyTorch's `nn.Linear` stores it
/// ([outputs × inputs], row-major), on the kernel chosen when it was made.
struct Linear: Sendable {
    /// [outputs × inputs] for the Swift loops (each output a dot product of contiguous rows);
    /// transposed to [inputs × outputs] for BLAS (a plain row-major product; measured 3% faster
    /// on a 202-token text than asking BLAS to transpose).
    let weight: [Float]
    let bias: [Float]
    let inputs: Int
    let outputs: Int
    let kernel: MatrixKernel

    init(weight: [Float], bias: [Float], inputs: Int, outputs: Int, kernel: MatrixKernel) {
        self.kernel = kernel
        self.bias = bias
        self.inputs = inputs
        self.outputs = outputs
        if kernel == .blas {
            var transposed = [Float](repeating: 0, count: weight.count)
            for o in 0..<outputs {
                for i in 0..<inputs { transposed[i * outputs + o] = weight[o * inputs + i] }
            }
            self.weight = transposed
        } else {
            self.weight = weight
        }
    }

    func apply(_ x: [Float], rows: Int) -> [Float] {
        var y = [Float](repeating: 0, count: rows * outputs)
        let k = inputs
        if kernel == .blas {
            for r in 0..<rows {
                for o in 0..<outputs { y[r * outputs + o] = bias[o] }
            }
            x.withUnsafeBufferPointer { xp in
                weight.withUnsafeBufferPointer { wp in
                    y.withUnsafeMutableBufferPointer { yp in
                        BLAS.multiply(
                            m: rows, n: outputs, k: k, xp.baseAddress!, lda: k, wp.baseAddress!, ldb: outputs, transposeB: false, beta: 1,
                            yp.baseAddress!, ldc: outputs)
                    }
                }
            }
            return y
        }
        precondition(x.count == rows * k)
        // Eight lanes over the first `k8` inputs; the few left (the stem's 27) one by one.
        let k8 = k - k % 8
        func tail(_ r: Int, _ o: Int) -> Float {
            var sum: Float = 0
            for c in k8..<k { sum += x[r * k + c] * weight[o * k + c] }
            return sum
        }
        weight.withUnsafeBufferPointer { w in
            x.withUnsafeBufferPointer { xs in
                y.withUnsafeMutableBufferPointer { ys in
                    let wRaw = UnsafeRawPointer(w.baseAddress!)
                    let xRaw = UnsafeRawPointer(xs.baseAddress!)
                    var o = 0
                    // Four outputs at a time: each row of x is loaded once per four weight rows.
                    while o + 4 <= outputs {
                        for r in 0..<rows {
                            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
                            var c = 0
                            while c < k8 {
                                let xv = xRaw.loadUnaligned(fromByteOffset: (r * k + c) * 4, as: SIMD8<Float>.self)
                                a0 += xv * wRaw.loadUnaligned(fromByteOffset: (o * k + c) * 4, as: SIMD8<Float>.self)
                                a1 += xv * wRaw.loadUnaligned(fromByteOffset: ((o + 1) * k + c) * 4, as: SIMD8<Float>.self)
                                a2 += xv * wRaw.loadUnaligned(fromByteOffset: ((o + 2) * k + c) * 4, as: SIMD8<Float>.self)
                                a3 += xv * wRaw.loadUnaligned(fromByteOffset: ((o + 3) * k + c) * 4, as: SIMD8<Float>.self)
                                c += 8
                            }
                            ys[r * outputs + o] = a0.sum() + tail(r, o) + bias[o]
                            ys[r * outputs + o + 1] = a1.sum() + tail(r, o + 1) + bias[o + 1]
                            ys[r * outputs + o + 2] = a2.sum() + tail(r, o + 2) + bias[o + 2]
                            ys[r * outputs + o + 3] = a3.sum() + tail(r, o + 3) + bias[o + 3]
                        }
                        o += 4
                    }
                    while o < outputs {
                        for r in 0..<rows {
                            var a = SIMD8<Float>()
                            var c = 0
                            while c < k8 {
                                a += xRaw.loadUnaligned(fromByteOffset: (r * k + c) * 4, as: SIMD8<Float>.self)
                                    * wRaw.loadUnaligned(fromByteOffset: (o * k + c) * 4, as: SIMD8<Float>.self)
                                c += 8
                            }
                            ys[r * outputs + o] = a.sum() + tail(r, o) + bias[o]
                        }
                        o += 1
                    }
                }
            }
        }
        return y
    }
}

/// Per-row normalization to zero mean and unit variance, then scale and shift.
struct LayerNorm: Sendable {
    let weight: [Float]
    let bias: [Float]
    var epsilon: Float = 1e-12

    func apply(_ x: inout [Float], rows: Int) {
        let h = weight.count
        for r in 0..<rows {
            var mean: Float = 0
            for d in 0..<h { mean += x[r * h + d] }
            mean /= Float(h)
            var variance: Float = 0
            for d in 0..<h {
                let c = x[r * h + d] - mean
                variance += c * c
            }
            variance /= Float(h)
            let inv = 1 / (variance + epsilon).squareRoot()
            for d in 0..<h { x[r * h + d] = (x[r * h + d] - mean) * inv * weight[d] + bias[d] }
        }
    }
}
