/// Vectors of one dimension, stored row-major in one aligned block that this object owns.
/// Ids are the row numbers `0..<count`. Each row is padded with zeros to `stride` floats, a
/// multiple of 8, so every inner product runs whole `SIMD8<Float>` blocks with no tail loop;
/// for dimensions that are already a multiple of 8 (64, 128, …) there is no padding.
///
/// Thread safety: reads (`vector(_:)`, `exactSearch`) may run on any number of threads at once
/// while nothing appends. Appending happens only through `HNSWIndex` (its `build` before any
/// reader exists, its `add` under the index's exclusive-access rule), because it may move the
/// storage.
public final class VectorSet: @unchecked Sendable {
    /// Floats per vector as given by the caller.
    public let dimension: Int
    /// Floats per stored row: `dimension` rounded up to a multiple of 8.
    let stride: Int
    /// Rows stored.
    public private(set) var count = 0
    /// Rows the current allocation holds.
    private(set) var capacity: Int
    /// Row `i` starts at `base + i * stride`.
    private(set) var base: UnsafeMutablePointer<Float>

    /// `stride / 8`: the `blocks` argument of `dotProduct`.
    var blocks: Int { stride / 8 }

    /// An empty set with room for `capacity` rows.
    init(dimension: Int, capacity: Int) {
        precondition(dimension > 0, "dimension must be positive")
        self.dimension = dimension
        self.stride = (dimension + 7) / 8 * 8
        self.capacity = max(capacity, 1)
        self.base = AlignedMemory.allocate(Float.self, count: self.capacity * stride)
    }

    /// A set holding `flat.count / dimension` vectors given row after row.
    public convenience init(_ flat: [Float], dimension: Int) {
        precondition(dimension > 0 && flat.count % dimension == 0, "flat.count must be a multiple of dimension")
        self.init(dimension: dimension, capacity: flat.count / dimension)
        flat.withUnsafeBufferPointer { all in
            for row in 0..<(flat.count / dimension) {
                append(UnsafeBufferPointer(rebasing: all[(row * dimension)..<((row + 1) * dimension)]))
            }
        }
    }

    deinit {
        AlignedMemory.free(base)
    }

    /// Grows the allocation to at least `rows` rows (doubling, so appends stay amortized O(1)).
    func reserveCapacity(_ rows: Int) {
        guard rows > capacity else { return }
        let newCapacity = max(rows, capacity * 2)
        base = AlignedMemory.grow(base, keeping: count * stride, to: newCapacity * stride)
        capacity = newCapacity
    }

    /// Appends one vector of `dimension` floats and returns its id.
    @discardableResult
    func append(_ vector: UnsafeBufferPointer<Float>) -> Int32 {
        precondition(vector.count == dimension, "vector has \(vector.count) floats, expected \(dimension)")
        precondition(count < Int(Int32.max), "VectorSet holds at most Int32.max vectors")
        reserveCapacity(count + 1)
        VectorSet.copyPadded(vector, to: base + count * stride, stride: stride)
        count += 1
        return Int32(count - 1)
    }

    /// Copies `vector` to `destination` and zero-fills it up to `stride` floats.
    static func copyPadded(_ vector: UnsafeBufferPointer<Float>, to destination: UnsafeMutablePointer<Float>, stride: Int) {
        if let source = vector.baseAddress { destination.update(from: source, count: vector.count) }
        (destination + vector.count).update(repeating: 0, count: stride - vector.count)
    }

    /// The stored row of `id` (padded to `stride` floats).
    @inline(__always)
    func row(_ id: Int32) -> UnsafePointer<Float> {
        UnsafePointer(base + Int(id) &* stride)
    }

    /// The `dimension` floats of vector `id`; valid until the owning index next grows.
    public func vector(_ id: Int32) -> UnsafeBufferPointer<Float> {
        precondition(id >= 0 && Int(id) < count, "id \(id) out of range 0..<\(count)")
        return UnsafeBufferPointer(start: row(id), count: dimension)
    }

    /// Bytes allocated for the rows.
    public var memoryBytes: Int { capacity * stride * MemoryLayout<Float>.stride }

    /// The `k` vectors with the largest inner product with `query`, best first, by scanning
    /// every row: the ground truth that recall is measured against. Allocates; not for the
    /// serving path.
    public func exactSearch(_ query: [Float], k: Int) -> [(id: Int32, score: Float)] {
        precondition(query.count == dimension, "query has \(query.count) floats, expected \(dimension)")
        let k = min(k, count)
        guard k > 0 else { return [] }
        let padded = AlignedMemory.allocate(Float.self, count: stride)
        var best = ScoreHeap<WorstOnTop>(capacity: k)
        defer {
            AlignedMemory.free(padded)
            best.release()
        }
        query.withUnsafeBufferPointer { VectorSet.copyPadded($0, to: padded, stride: stride) }
        for id in 0..<Int32(count) {
            let score = dotProduct(padded, row(id), blocks: blocks)
            if best.count < k {
                best.push(ScoredNode(score: score, id: id))
            } else if score > best.top.score {
                best.replaceTop(with: ScoredNode(score: score, id: id))
            }
        }
        var hits = [(id: Int32, score: Float)](repeating: (0, 0), count: best.count)
        for slot in hits.indices.reversed() {
            let hit = best.pop()
            hits[slot] = (hit.id, hit.score)
        }
        return hits
    }
}
