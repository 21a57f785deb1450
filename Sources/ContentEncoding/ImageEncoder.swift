import Domain
import Foundation

/// EfficientNet-Lite0 (ImageNet) in Swift, on 224×224 RGB, channels-last: a 3×3 stride-2 stem,
/// 16 inverted-residual blocks (1×1 expansion, k×k depthwise, 1×1 projection; ReLU6; residual
/// add where shape allows), a 1×1 head to 1,280 channels, global average pooling and the
/// ImageNet classifier. Batch norm is folded into the convolutions by
/// `scripts/convert-efficientnet.py`, which also writes the block table into the weights file.
/// Convolutions pad as TensorFlow's "same": the total padding a stride needs, the smaller half
/// before. Every layer is put in the form it runs in once, at load: 1×1 convolutions, the stem
/// (over gathered patches) and the classifier are `Linear` products; depthwise weights are
/// regrouped channel-last.
public struct ImageEncoder: Sendable {
    public static let modelName = "EfficientNet-Lite0"
    public static let side = 224
    public static let imageDimensions = 1280
    static let mean: [Float] = [0.485, 0.456, 0.406]
    static let std: [Float] = [0.229, 0.224, 0.225]

    /// A k×k convolution whose window is gathered into a row, then multiplied (the stem).
    struct PatchConv: Sendable {
        var linear: Linear
        var channels: Int
        var kernel: Int
        var stride: Int
    }

    /// A k×k depthwise convolution; weights [ky][kx][channel].
    struct DepthwiseConv: Sendable {
        var weight: [Float]
        var bias: [Float]
        var channels: Int
        var kernel: Int
        var stride: Int
    }

    struct Block: Sendable {
        var expand: Linear?
        var depthwise: DepthwiseConv
        var project: Linear
        var residual: Bool
    }

    let stem: PatchConv
    let blocks: [Block]
    let head: Linear
    let classifier: Linear

    /// Reads the converted weights (`convert-efficientnet.py`'s output).
    public init(weightsFile path: String, kernel: MatrixKernel = .best) throws(AdServeError) {
        try kernel.requireAvailable()
        let file = try SafeTensors(path: path)
        guard let table = file.metadata["blocks"], let data = table.data(using: .utf8),
            let rows = try? JSONSerialization.jsonObject(with: data) as? [[String: Any]]
        else { throw AdServeError(.storage, "\(path) has no block table in its metadata") }
        /// A convolution as a product: PyTorch's [out][in][ky][kx] is [out × (in·k·k)].
        func linear(_ name: String, inputs: Int, outputs: Int, kernel size: Int = 1) throws(AdServeError) -> Linear {
            Linear(
                weight: try file.tensor(name + ".weight", shape: [outputs, inputs, size, size]), bias: try file.tensor(name + ".bias", shape: [outputs]),
                inputs: inputs * size * size, outputs: outputs, kernel: kernel)
        }
        func depthwise(_ name: String, channels: Int, kernel k: Int, stride: Int) throws(AdServeError) -> DepthwiseConv {
            let weight = try file.tensor(name + ".weight", shape: [channels, 1, k, k])
            var grouped = [Float](repeating: 0, count: weight.count)
            for c in 0..<channels {
                for t in 0..<(k * k) { grouped[t * channels + c] = weight[c * k * k + t] }
            }
            return DepthwiseConv(weight: grouped, bias: try file.tensor(name + ".bias", shape: [channels]), channels: channels, kernel: k, stride: stride)
        }
        stem = PatchConv(linear: try linear("stem", inputs: 3, outputs: 32, kernel: 3), channels: 3, kernel: 3, stride: 2)
        var blocks: [Block] = []
        for (i, row) in rows.enumerated() {
            guard let k = row["kernel"] as? Int, let s = row["stride"] as? Int, let e = row["expand"] as? Int,
                let cin = row["in"] as? Int, let cout = row["out"] as? Int
            else { throw AdServeError(.storage, "\(path): block \(i) of the table is malformed") }
            let hidden = cin * e
            let name = "blocks.\(i)."
            blocks.append(Block(
                expand: e == 1 ? nil : try linear(name + "expand", inputs: cin, outputs: hidden),
                depthwise: try depthwise(name + "depthwise", channels: hidden, kernel: k, stride: s),
                project: try linear(name + "project", inputs: hidden, outputs: cout),
                residual: (row["residual"] as? Bool) ?? (s == 1 && cin == cout)))
        }
        self.blocks = blocks
        head = try linear("head", inputs: blocks.last?.project.outputs ?? 320, outputs: Self.imageDimensions)
        classifier = Linear(
            weight: try file.tensor("classifier.weight", shape: [1000, Self.imageDimensions]), bias: try file.tensor("classifier.bias", shape: [1000]),
            inputs: Self.imageDimensions, outputs: 1000, kernel: kernel)
    }

    /// The image vector (the head's output averaged over space, 1,280 floats) and the ImageNet
    /// class probabilities, for 224×224 RGB bytes (row by row, 3 bytes a pixel).
    public func encode(rgb: [UInt8]) -> (imageVector: [Float], probabilities: [Float]) {
        let side = Self.side
        precondition(rgb.count == side * side * 3)
        var x = [Float](repeating: 0, count: rgb.count)
        for p in 0..<(side * side) {
            for c in 0..<3 { x[p * 3 + c] = (Float(rgb[p * 3 + c]) / 255 - Self.mean[c]) / Self.std[c] }
        }
        var size = side
        (x, size) = Self.convolve(stem, x, size: size)
        Self.relu6(&x)
        for block in blocks {
            let input = x
            var y = x
            if let expand = block.expand {
                y = expand.apply(y, rows: size * size)
                Self.relu6(&y)
            }
            var next = size
            (y, next) = Self.depthwise(block.depthwise, y, size: size)
            Self.relu6(&y)
            y = block.project.apply(y, rows: next * next)
            if block.residual {
                for i in y.indices { y[i] += input[i] }
            }
            x = y
            size = next
        }
        x = head.apply(x, rows: size * size)
        Self.relu6(&x)
        var pooled = [Float](repeating: 0, count: Self.imageDimensions)
        for p in 0..<(size * size) {
            for c in 0..<Self.imageDimensions { pooled[c] += x[p * Self.imageDimensions + c] }
        }
        for c in pooled.indices { pooled[c] /= Float(size * size) }
        let logits = classifier.apply(pooled, rows: 1)
        let top = logits.max() ?? 0
        var probabilities = logits.map { Foundation.exp($0 - top) }
        let total = probabilities.reduce(0, +)
        for i in probabilities.indices { probabilities[i] /= total }
        return (pooled, probabilities)
    }

    static func relu6(_ x: inout [Float]) {
        for i in x.indices { x[i] = min(max(x[i], 0), 6) }
    }

    /// TensorFlow "same" padding: output ⌈size / stride⌉, total padding as needed, the smaller
    /// half before.
    static func samePadding(size: Int, kernel: Int, stride: Int) -> (output: Int, before: Int) {
        let output = (size + stride - 1) / stride
        let total = max((output - 1) * stride + kernel - size, 0)
        return (output, total / 2)
    }

    /// A full k×k convolution (the stem): patches gathered into rows, then one matrix product.
    static func convolve(_ conv: PatchConv, _ x: [Float], size: Int) -> ([Float], Int) {
        let (out, before) = samePadding(size: size, kernel: conv.kernel, stride: conv.stride)
        let k = conv.kernel
        let patch = conv.linear.inputs
        var columns = [Float](repeating: 0, count: out * out * patch)
        for oy in 0..<out {
            for ox in 0..<out {
                let row = (oy * out + ox) * patch
                for c in 0..<conv.channels {
                    for ky in 0..<k {
                        let iy = oy * conv.stride + ky - before
                        guard iy >= 0 && iy < size else { continue }
                        for kx in 0..<k {
                            let ix = ox * conv.stride + kx - before
                            guard ix >= 0 && ix < size else { continue }
                            // PyTorch's weight order: [out][in][ky][kx].
                            columns[row + (c * k + ky) * k + kx] = x[(iy * size + ix) * conv.channels + c]
                        }
                    }
                }
            }
        }
        return (conv.linear.apply(columns, rows: out * out), out)
    }

    /// k×k depthwise convolution, channels-last: each output pixel sums its window eight
    /// channels at a time, contiguous in memory.
    static func depthwise(_ conv: DepthwiseConv, _ x: [Float], size: Int) -> ([Float], Int) {
        let (out, before) = samePadding(size: size, kernel: conv.kernel, stride: conv.stride)
        let k = conv.kernel
        let channels = conv.channels
        precondition(channels % 8 == 0)
        var y = [Float](repeating: 0, count: out * out * channels)
        x.withUnsafeBytes { xs in
            conv.weight.withUnsafeBytes { ws in
                conv.bias.withUnsafeBytes { bs in
                    y.withUnsafeMutableBytes { ys in
                        for oy in 0..<out {
                            for ox in 0..<out {
                                let o = (oy * out + ox) * channels
                                var c = 0
                                while c < channels {
                                    var acc = bs.loadUnaligned(fromByteOffset: c * 4, as: SIMD8<Float>.self)
                                    for ky in 0..<k {
                                        let iy = oy * conv.stride + ky - before
                                        guard iy >= 0 && iy < size else { continue }
                                        for kx in 0..<k {
                                            let ix = ox * conv.stride + kx - before
                                            guard ix >= 0 && ix < size else { continue }
                                            let i = ((iy * size + ix) * channels + c) * 4
                                            let t = ((ky * k + kx) * channels + c) * 4
                                            acc += xs.loadUnaligned(fromByteOffset: i, as: SIMD8<Float>.self)
                                                * ws.loadUnaligned(fromByteOffset: t, as: SIMD8<Float>.self)
                                        }
                                    }
                                    ys.storeBytes(of: acc, toByteOffset: (o + c) * 4, as: SIMD8<Float>.self)
                                    c += 8
                                }
                            }
                        }
                    }
                }
            }
        }
        return (y, out)
    }
}
