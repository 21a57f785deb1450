import Synchronization

/// Vectors under caller keys (ad ids) that change while they are searched. Searches never
/// wait for a writer: each takes the current `Snapshot` — one reference copied under a lock
/// held only for that copy — and searches it without locks. Writers never touch a published
/// snapshot; they publish a new one:
/// - an upsert adds the vector to the snapshot's fresh pool (scanned exactly by every search,
///   so a new ad is found from its first request) and hides the key's older vector;
/// - a remove hides the key;
/// - `rebuild` folds the fresh pool into a new graph and forgets hidden rows, off the lock;
///   writes made meanwhile are replayed onto the new snapshot before it is published.
/// Writers are serialized among themselves; a rebuild holds no lock while it builds.
public final class LiveVectorIndex: Sendable {
    public let dimension: Int
    public let m: Int
    public let efConstruction: Int

    /// One published state of the index; immutable.
    public final class Snapshot: Sendable {
        /// The graph and the key of each of its rows.
        let graph: HNSWIndex
        let graphKeys: [Int64]
        /// The keys in the graph, and those whose graph row no longer counts (removed or replaced).
        let inGraph: Set<Int64>
        let hidden: Set<Int64>
        /// Vectors written since the graph was built: keys and rows of `dimension` floats.
        let freshKeys: [Int64]
        let freshVectors: [Float]

        init(graph: HNSWIndex, graphKeys: [Int64], inGraph: Set<Int64>, hidden: Set<Int64>, freshKeys: [Int64], freshVectors: [Float]) {
            self.graph = graph
            self.graphKeys = graphKeys
            self.inGraph = inGraph
            self.hidden = hidden
            self.freshKeys = freshKeys
            self.freshVectors = freshVectors
        }

        /// Keys searchable in this snapshot.
        public var count: Int { graphKeys.count - hidden.count + freshKeys.count }
        /// Vectors waiting in the fresh pool for the next rebuild.
        public var freshCount: Int { freshKeys.count }
    }

    private enum Write {
        case upsert(Int64, [Float])
        case remove(Int64)
    }

    private struct Writer {
        /// Writes since a rebuild began, replayed onto its result; nil when none is running.
        var sinceRebuild: [Write]?
    }

    private let current: Mutex<Snapshot>
    private let writer = Mutex(Writer())

    public init(dimension: Int, m: Int = 16, efConstruction: Int = 200) {
        precondition(dimension > 0, "dimension must be positive")
        self.dimension = dimension
        self.m = m
        self.efConstruction = efConstruction
        current = Mutex(Snapshot(
            graph: HNSWIndex(dimension: dimension, m: m, efConstruction: efConstruction), graphKeys: [], inGraph: [], hidden: [],
            freshKeys: [], freshVectors: []))
    }

    /// The state searches see now.
    public var snapshot: Snapshot { current.withLock { $0 } }

    /// Adds `vector` under `key`, replacing the key's vector if it has one.
    public func upsert(_ key: Int64, _ vector: [Float]) {
        precondition(vector.count == dimension, "vector has \(vector.count) floats, expected \(dimension)")
        write(.upsert(key, vector))
    }

    /// Removes `key` (nothing if it is absent).
    public func remove(_ key: Int64) {
        write(.remove(key))
    }

    private func write(_ change: Write) {
        writer.withLock { writer in
            let next = Self.applying(change, to: snapshot, dimension: dimension)
            current.withLock { $0 = next }
            writer.sinceRebuild?.append(change)
        }
    }

    private static func applying(_ change: Write, to s: Snapshot, dimension: Int) -> Snapshot {
        var hidden = s.hidden
        var freshKeys = s.freshKeys
        var freshVectors = s.freshVectors
        let key: Int64
        switch change {
        case .upsert(let k, _), .remove(let k): key = k
        }
        if s.inGraph.contains(key) { hidden.insert(key) }
        if let i = freshKeys.firstIndex(of: key) {
            freshKeys.remove(at: i)
            freshVectors.removeSubrange((i * dimension)..<((i + 1) * dimension))
        }
        if case .upsert(_, let vector) = change {
            freshKeys.append(key)
            freshVectors += vector
        }
        return Snapshot(graph: s.graph, graphKeys: s.graphKeys, inGraph: s.inGraph, hidden: hidden, freshKeys: freshKeys, freshVectors: freshVectors)
    }

    /// Builds a new graph over every visible vector (the graph's and the fresh pool's) on
    /// `threads` threads, then publishes it with the writes made meanwhile replayed. Searches
    /// and writes go on while it builds. One rebuild at a time: returns false if one is running.
    @discardableResult
    public func rebuild(threads: Int = 1, seed: UInt64 = 1) -> Bool {
        guard let base = writer.withLock({ writer -> Snapshot? in
            guard writer.sinceRebuild == nil else { return nil }
            writer.sinceRebuild = []
            return snapshot
        }) else { return false }
        var keys: [Int64] = []
        var vectors: [Float] = []
        keys.reserveCapacity(base.count)
        vectors.reserveCapacity(base.count * dimension)
        for (row, key) in base.graphKeys.enumerated() where !base.hidden.contains(key) {
            keys.append(key)
            vectors += base.graph.vectors.vector(Int32(row))
        }
        keys += base.freshKeys
        vectors += base.freshVectors
        let graph = HNSWIndex.build(vectors: vectors, dimension: dimension, m: m, efConstruction: efConstruction, threads: threads, seed: seed)
        writer.withLock { writer in
            var next = Snapshot(graph: graph, graphKeys: keys, inGraph: Set(keys), hidden: [], freshKeys: [], freshVectors: [])
            for change in writer.sinceRebuild ?? [] { next = Self.applying(change, to: next, dimension: dimension) }
            current.withLock { $0 = next }
            writer.sinceRebuild = nil
        }
        return true
    }

    /// The `k` visible keys with the largest inner product with `query` that pass `filter`:
    /// the graph searched with effort `ef`, the fresh pool scanned exactly. Best first.
    public func search(_ query: [Float], k: Int, ef: Int, scratch: SearchScratch, filter: (Int64) -> Bool = { _ in true }) -> [(key: Int64, score: Float)] {
        let s = snapshot
        var hits: [(key: Int64, score: Float)] = []
        hits.reserveCapacity(k + s.freshKeys.count)
        let n = s.graph.search(query, k: k, ef: ef, scratch: scratch) { row in
            let key = s.graphKeys[Int(row)]
            return !s.hidden.contains(key) && filter(key)
        }
        for i in 0..<n { hits.append((s.graphKeys[Int(scratch.ids[i])], scratch.scores[i])) }
        s.freshVectors.withUnsafeBufferPointer { fresh in
            for (i, key) in s.freshKeys.enumerated() where filter(key) {
                var score: Float = 0
                for d in 0..<dimension { score += fresh[i * dimension + d] * query[d] }
                hits.append((key, score))
            }
        }
        hits.sort { $0.score > $1.score || ($0.score == $1.score && $0.key < $1.key) }
        return Array(hits.prefix(k))
    }
}
