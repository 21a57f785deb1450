/// A node with its inner product against the vector of the current search (higher is closer).
struct ScoredNode {
    var score: Float
    var id: Int32
}

/// Which end of the score order a `ScoreHeap` keeps on top.
protocol HeapOrder {
    /// Whether a node scoring `a` belongs above one scoring `b`.
    static func isAbove(_ a: Float, _ b: Float) -> Bool
}

/// Max-heap: the best-scoring node on top (the candidates still to expand).
enum BestOnTop: HeapOrder {
    @inline(__always) static func isAbove(_ a: Float, _ b: Float) -> Bool { a > b }
}

/// Min-heap: the worst-scoring node on top (a bounded set of results, evicting its worst).
enum WorstOnTop: HeapOrder {
    @inline(__always) static func isAbove(_ a: Float, _ b: Float) -> Bool { a < b }
}

/// A binary heap of `ScoredNode` in a buffer from `AlignedMemory`, with no allocation once
/// it has grown to its working size. It is a plain value over that buffer, so copies alias it:
/// the owner (a `SearchScratch`, or a local in `VectorSet.exactSearch`) keeps exactly one live
/// copy and calls `release()` once. A search loads the heap into a local, works on it and stores
/// it back, which keeps class-property access out of the inner loop.
struct ScoreHeap<Order: HeapOrder> {
    private(set) var storage: UnsafeMutablePointer<ScoredNode>
    private(set) var capacity: Int
    private(set) var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        self.storage = AlignedMemory.allocate(ScoredNode.self, count: self.capacity)
    }

    /// Frees the buffer; the heap must not be used afterwards.
    func release() {
        AlignedMemory.free(storage)
    }

    var isEmpty: Bool { count == 0 }

    /// The node on top; the heap must not be empty.
    var top: ScoredNode {
        @inline(__always) get { storage[0] }
    }

    mutating func removeAll() {
        count = 0
    }

    /// Makes room for `minimumCapacity` nodes without further allocation.
    mutating func reserveCapacity(_ minimumCapacity: Int) {
        guard minimumCapacity > capacity else { return }
        storage = AlignedMemory.grow(storage, keeping: count, to: minimumCapacity)
        capacity = minimumCapacity
    }

    @inline(__always)
    mutating func push(_ node: ScoredNode) {
        if count == capacity { growForPush() }
        var hole = count
        count &+= 1
        while hole > 0 {
            let parent = (hole &- 1) >> 1
            let above = storage[parent]
            if !Order.isAbove(node.score, above.score) { break }
            storage[hole] = above
            hole = parent
        }
        storage[hole] = node
    }

    /// Removes and returns the top node; the heap must not be empty.
    @inline(__always)
    mutating func pop() -> ScoredNode {
        let top = storage[0]
        count &-= 1
        if count > 0 { siftDownFromRoot(storage[count]) }
        return top
    }

    /// Replaces the top node with `node` (one sift instead of a pop and a push).
    @inline(__always)
    mutating func replaceTop(with node: ScoredNode) {
        siftDownFromRoot(node)
    }

    @inline(never)
    private mutating func growForPush() {
        reserveCapacity(capacity * 2)
    }

    /// Fills the hole at the root with `node`, moving it down to where it belongs.
    @inline(__always)
    private mutating func siftDownFromRoot(_ node: ScoredNode) {
        var hole = 0
        while true {
            var child = 2 &* hole &+ 1
            if child >= count { break }
            let right = child &+ 1
            if right < count && Order.isAbove(storage[right].score, storage[child].score) { child = right }
            let below = storage[child]
            if !Order.isAbove(below.score, node.score) { break }
            storage[hole] = below
            hole = child
        }
        storage[hole] = node
    }
}
