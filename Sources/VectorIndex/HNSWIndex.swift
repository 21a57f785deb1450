import Synchronization

/// Approximate nearest-neighbour search by inner product (higher score is closer) over a
/// Hierarchical Navigable Small World graph (Malkov & Yashunin, 2016).
///
/// The index owns its vectors (`vectors`, ids `0..<count` in insertion order) and its graph
/// (`NeighborLists`: `2·m` neighbours per node on level 0, `m` on the levels above). Neighbours
/// are chosen with the HNSW heuristic, both when a node is inserted and when a full list
/// overflows and is pruned.
///
/// Thread safety (why `@unchecked Sendable` holds):
/// - **Searching**: once `build` has returned, or `add` has returned, the index is read-only.
///   Any number of threads may then call `search` at the same time, each with its own
///   `SearchScratch`. Searches take no locks.
/// - **`add`** mutates and may reallocate the vectors and lists, so it needs exclusive access:
///   no other `add` and no `search` may run on the index meanwhile. The caller provides that
///   exclusion (for instance build a new index and swap it in, or guard it with a lock).
/// - **`build` with several threads** is internally synchronized and exposes the index only
///   when done. Before the workers start, every vector, node level and upper-level block is
///   written; afterwards those are only read. A node's neighbour lists (all its levels) are
///   read and written only while holding that node's lock in `NodeLocks` (a 4-byte futex
///   `Mutex` per node); a worker holds at most one node lock at a time, so workers cannot
///   deadlock. Each worker has its own scratch. A worker that finds its own new node's list
///   already extended by another worker merges instead of overwriting, and a link is never
///   added twice. The entry point (id and top level) is one atomic word, read with acquire
///   ordering and raised by compare-and-swap once its node is fully linked.
public final class HNSWIndex: @unchecked Sendable {
    /// Floats per vector.
    public let dimension: Int
    /// Neighbours kept per node on the upper levels (level 0 keeps `2·m`).
    public let m: Int
    /// Size of the result set searched when inserting a node.
    public let efConstruction: Int
    /// Seed of the level draw; the same vectors, parameters and seed give the same graph
    /// when built with one thread.
    public let seed: UInt64
    /// The indexed vectors; the id of a search hit is its row here.
    public let vectors: VectorSet

    var graph: NeighborLists
    /// The entry point: 0 while empty, else `(topLevel + 1) << 32 | id`.
    private let entry = Atomic<UInt64>(0)
    /// Insertion buffers kept for `add`, made on first use.
    private var addScratch: InsertionScratch?

    /// An empty index. `m` ≥ 2; `efConstruction` ≥ `m` is clamped up if smaller.
    public convenience init(dimension: Int, m: Int = 16, efConstruction: Int = 200, seed: UInt64 = 1) {
        self.init(dimension: dimension, m: m, efConstruction: efConstruction, seed: seed, capacity: 0)
    }

    init(dimension: Int, m: Int, efConstruction: Int, seed: UInt64, capacity: Int) {
        precondition(m >= 2 && m <= 1024, "m must be in 2...1024")
        self.dimension = dimension
        self.m = m
        self.efConstruction = max(efConstruction, m)
        self.seed = seed
        self.vectors = VectorSet(dimension: dimension, capacity: capacity)
        self.graph = NeighborLists(m: m, capacity: capacity, upperBlocks: capacity / max(m - 1, 1) + 16)
    }

    deinit {
        graph.release()
    }

    /// Vectors indexed.
    public var count: Int { vectors.count }

    /// Bytes allocated for the vectors and the graph (lists, levels, block offsets).
    public var memoryBytes: Int { vectors.memoryBytes + graph.memoryBytes }

    /// Adds one vector of `dimension` floats and returns its id (the previous `count`).
    /// Needs exclusive access to the index: see the type's thread-safety rules.
    @discardableResult
    public func add(_ vector: [Float]) -> Int32 {
        let id = vector.withUnsafeBufferPointer { vectors.append($0) }
        graph.append(level: HNSWIndex.drawLevel(node: Int(id), seed: seed, m: m))
        let scratch = addScratch ?? InsertionScratch(m: m, efConstruction: efConstruction)
        addScratch = scratch
        insert(id, scratch: scratch, locks: nil)
        return id
    }

    /// Searches for the `k` vectors with the largest inner product with `query` (`dimension`
    /// floats), exploring a result set of `max(ef, k)` nodes on level 0: larger `ef` is slower
    /// and more accurate. The hits are left in `scratch` (`ids`, `scores`, best first); returns
    /// their number: `k`, or fewer when the index holds fewer vectors. Does not allocate once
    /// `scratch` has grown to fit this index, `ef` and `k`.
    @discardableResult
    public func search(_ query: UnsafeBufferPointer<Float>, k: Int, ef: Int, scratch: SearchScratch) -> Int {
        runSearch(query, k: k, ef: ef, scratch: scratch, filter: AcceptAll())
    }

    /// Like `search(_:k:ef:scratch:)`, keeping only hits for which `filter(id)` is true.
    /// Nodes that fail the filter are still walked through as hops of the graph, so a selective
    /// filter costs more time per query; fewer than `k` hits come back when fewer pass it among
    /// the nodes reached.
    @discardableResult
    public func search(
        _ query: UnsafeBufferPointer<Float>, k: Int, ef: Int, scratch: SearchScratch, filter: (Int32) -> Bool
    ) -> Int {
        search(query, k: k, ef: ef, scratch: scratch) { nodes, allowed in
            for j in nodes.indices { allowed[j] = filter(nodes[j]) }
        }
    }

    /// Like `search(_:k:ef:scratch:filter:)` with the filter asked for a batch of nodes at a
    /// time (writing `allowed[j]` for `nodes[j]`): the neighbours of one expanded node that
    /// could enter the results. A filter that reads memory of its own per node can start all
    /// of a batch's loads before it needs the first.
    @discardableResult
    public func search(
        _ query: UnsafeBufferPointer<Float>, k: Int, ef: Int, scratch: SearchScratch,
        batchFilter: (_ nodes: UnsafeBufferPointer<Int32>, _ allowed: UnsafeMutableBufferPointer<Bool>) -> Void
    ) -> Int {
        withoutActuallyEscaping(batchFilter) { predicate in
            runSearch(query, k: k, ef: ef, scratch: scratch, filter: PredicateFilter(predicate: predicate))
        }
    }

    /// `search(_:k:ef:scratch:)` for a query held in an array.
    @discardableResult
    public func search(_ query: [Float], k: Int, ef: Int, scratch: SearchScratch) -> Int {
        query.withUnsafeBufferPointer { search($0, k: k, ef: ef, scratch: scratch) }
    }

    /// `search(_:k:ef:scratch:filter:)` for a query held in an array.
    @discardableResult
    public func search(_ query: [Float], k: Int, ef: Int, scratch: SearchScratch, filter: (Int32) -> Bool) -> Int {
        query.withUnsafeBufferPointer { search($0, k: k, ef: ef, scratch: scratch, filter: filter) }
    }

    // MARK: Entry point

    /// The current entry point and its level, or nil while the index is empty.
    @inline(__always)
    func entryPoint() -> (node: Int32, level: Int)? {
        let word = entry.load(ordering: .acquiring)
        if word == 0 { return nil }
        return (Int32(truncatingIfNeeded: word & 0xFFFF_FFFF), Int(word >> 32) - 1)
    }

    /// Makes `node` the entry point if its `level` is above the current top level (or the
    /// index was empty). Returns whether it did.
    @discardableResult
    func raiseEntryPoint(to node: Int32, level: Int) -> Bool {
        let word = (UInt64(level) + 1) << 32 | UInt64(UInt32(bitPattern: node))
        var current = entry.load(ordering: .relaxed)
        while current == 0 || Int(current >> 32) - 1 < level {
            let (exchanged, original) = entry.compareExchange(
                expected: current, desired: word, successOrdering: .acquiringAndReleasing, failureOrdering: .relaxed)
            if exchanged { return true }
            current = original
        }
        return false
    }
}
