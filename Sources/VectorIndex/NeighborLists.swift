/// The HNSW graph's adjacency: every node's top level and its neighbour lists on each level.
///
/// Every list is laid out `[count, id₀, id₁, …]` as `Int32`, in fixed-size slots:
/// - level 0: one flat array with `level0Stride = 1 + 2·m` slots per node, node `i` at
///   `i · level0Stride`;
/// - upper levels: a side array of blocks of `upperStride = 1 + m` slots; a node whose top
///   level is `L ≥ 1` owns `L` consecutive blocks from `upperStart[i]`, its level-`l` list in
///   block `upperStart[i] + l − 1`. Only about one node in `m` has any, so the side array is small;
/// - `levels`: the top level of each node, one byte each.
///
/// That is 4·(1 + 2m) + 5 bytes per node plus the upper blocks, close to hnswlib's layout
/// without its per-node label and pointer.
///
/// A value over buffers it allocates; `HNSWIndex` owns the one live copy and calls `release()`.
/// Searches copy it into a local once per call. Who may read or write a list when is the
/// index's concern (see `HNSWIndex`).
struct NeighborLists {
    /// Neighbours kept per node on the upper levels; level 0 keeps `2·m`.
    let m: Int
    let level0Stride: Int
    let upperStride: Int
    private(set) var level0: UnsafeMutablePointer<Int32>
    private(set) var upper: UnsafeMutablePointer<Int32>
    private(set) var levels: UnsafeMutablePointer<UInt8>
    private(set) var upperStart: UnsafeMutablePointer<Int32>
    /// Nodes stored.
    private(set) var count = 0
    private(set) var capacity: Int
    private(set) var upperBlocks = 0
    private(set) var upperCapacity: Int

    /// Empty lists with room for `capacity` nodes and `upperBlocks` upper-level blocks.
    init(m: Int, capacity: Int, upperBlocks: Int) {
        self.m = m
        self.level0Stride = 1 + 2 * m
        self.upperStride = 1 + m
        self.capacity = max(capacity, 1)
        self.upperCapacity = max(upperBlocks, 1)
        self.level0 = AlignedMemory.allocate(Int32.self, count: self.capacity * level0Stride)
        self.upper = AlignedMemory.allocate(Int32.self, count: upperCapacity * upperStride)
        self.levels = AlignedMemory.allocate(UInt8.self, count: self.capacity)
        self.upperStart = AlignedMemory.allocate(Int32.self, count: self.capacity)
    }

    func release() {
        AlignedMemory.free(level0)
        AlignedMemory.free(upper)
        AlignedMemory.free(levels)
        AlignedMemory.free(upperStart)
    }

    /// The most neighbours a list on `level` holds.
    @inline(__always)
    func maxDegree(at level: Int) -> Int {
        level == 0 ? 2 &* m : m
    }

    @inline(__always)
    func level(of node: Int32) -> Int {
        Int(levels[Int(node)])
    }

    /// The list of `node` on `level` (which must be at most the node's level):
    /// slot 0 is the count, slots `1...count` the neighbour ids.
    @inline(__always)
    func list(of node: Int32, at level: Int) -> UnsafeMutablePointer<Int32> {
        if level == 0 { return level0 + Int(node) &* level0Stride }
        return upper + (Int(upperStart[Int(node)]) &+ level &- 1) &* upperStride
    }

    /// Appends a node whose top level is `level`, with all its lists empty, and returns its id.
    @discardableResult
    mutating func append(level: Int) -> Int32 {
        precondition(level <= Int(UInt8.max), "level too high")
        if count == capacity { reserveCapacity(nodes: capacity * 2) }
        if upperBlocks + level > upperCapacity { reserveCapacity(upperBlocks: max(upperBlocks + level, upperCapacity * 2)) }
        let node = count
        levels[node] = UInt8(level)
        upperStart[node] = Int32(upperBlocks)
        level0[node * level0Stride] = 0
        for block in upperBlocks..<(upperBlocks + level) { upper[block * upperStride] = 0 }
        upperBlocks += level
        count += 1
        return Int32(node)
    }

    /// Grows the node arrays to hold `nodes` nodes.
    mutating func reserveCapacity(nodes: Int) {
        guard nodes > capacity else { return }
        level0 = AlignedMemory.grow(level0, keeping: count * level0Stride, to: nodes * level0Stride)
        levels = AlignedMemory.grow(levels, keeping: count, to: nodes)
        upperStart = AlignedMemory.grow(upperStart, keeping: count, to: nodes)
        capacity = nodes
    }

    /// Grows the upper-level side array to hold `upperBlocks` blocks.
    mutating func reserveCapacity(upperBlocks blocks: Int) {
        guard blocks > upperCapacity else { return }
        upper = AlignedMemory.grow(upper, keeping: upperBlocks * upperStride, to: blocks * upperStride)
        upperCapacity = blocks
    }

    /// Bytes allocated for lists, levels and block offsets.
    var memoryBytes: Int {
        capacity * (level0Stride * 4 + 1 + 4) + upperCapacity * upperStride * 4
    }
}
