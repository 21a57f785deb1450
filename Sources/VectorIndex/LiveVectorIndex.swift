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
        /// Bytes of the graph, its vectors and the fresh pool (not the key tables).
        public var memoryBytes: Int { graph.memoryBytes + freshVectors.count * MemoryLayout<Float>.stride + graphKeys.count * MemoryLayout<Int64>.stride }
    }

    private enum Write {
        case upsert(Int64, [Float])
        case remove(Int64)
    }

    private struct Writer {
        /// Writes since a rebuild began, replayed onto its result; nil when none is running.
        var sinceRebuild: [Write]?
        /// Bumped by `load`: a rebuild that began before a load is discarded.
        var loads = 0
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

    /// Many writes published as one snapshot: `upserts` then `removals`.
    public func update(upserts: [(key: Int64, vector: [Float])], removals: [Int64]) {
        for upsert in upserts { precondition(upsert.vector.count == dimension, "vector has \(upsert.vector.count) floats, expected \(dimension)") }
        let changes = upserts.map { Write.upsert($0.key, $0.vector) } + removals.map { Write.remove($0) }
        guard !changes.isEmpty else { return }
        writer.withLock { writer in
            let next = Self.applying(changes, to: snapshot, dimension: dimension)
            current.withLock { $0 = next }
            writer.sinceRebuild?.append(contentsOf: changes)
        }
    }

    /// Replaces everything with `keys` and their `vectors` (row-major), built into a graph on
    /// `threads` threads before it is published; searches see the old contents meanwhile.
    /// Waits for a running rebuild to finish first.
    public func load(keys: [Int64], vectors: [Float], threads: Int = 1, seed: UInt64 = 1) {
        precondition(vectors.count == keys.count * dimension, "\(keys.count) keys need \(keys.count * dimension) floats, not \(vectors.count)")
        let graph = HNSWIndex.build(vectors: vectors, dimension: dimension, m: m, efConstruction: efConstruction, threads: threads, seed: seed)
        writer.withLock { writer in
            current.withLock { $0 = Snapshot(graph: graph, graphKeys: keys, inGraph: Set(keys), hidden: [], freshKeys: [], freshVectors: []) }
            writer.loads += 1
        }
    }

    private static func applying(_ change: Write, to s: Snapshot, dimension: Int) -> Snapshot {
        applying([change], to: s, dimension: dimension)
    }

    private static func applying(_ changes: [Write], to s: Snapshot, dimension: Int) -> Snapshot {
        var hidden = s.hidden
        var freshKeys = s.freshKeys
        var freshVectors = s.freshVectors
        for change in changes {
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
        }
        return Snapshot(graph: s.graph, graphKeys: s.graphKeys, inGraph: s.inGraph, hidden: hidden, freshKeys: freshKeys, freshVectors: freshVectors)
    }

    /// Builds a new graph over every visible vector (the graph's and the fresh pool's) on
    /// `threads` threads, then publishes it with the writes made meanwhile replayed. Searches
    /// and writes go on while it builds. One rebuild at a time: returns false if one is running.
    @discardableResult
    public func rebuild(threads: Int = 1, seed: UInt64 = 1) -> Bool {
        guard let started = writer.withLock({ writer -> (Snapshot, Int)? in
            guard writer.sinceRebuild == nil else { return nil }
            writer.sinceRebuild = []
            return (snapshot, writer.loads)
        }) else { return false }
        let (base, loads) = started
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
            defer { writer.sinceRebuild = nil }
            guard writer.loads == loads else { return }  // replaced by a load meanwhile
            let next = Self.applying(writer.sinceRebuild ?? [], to: Snapshot(graph: graph, graphKeys: keys, inGraph: Set(keys), hidden: [], freshKeys: [], freshVectors: []), dimension: dimension)
            current.withLock { $0 = next }
        }
        return true
    }

    /// `filter`'s verdict on one key.
    @inline(__always)
    static func admits(_ key: Int64, _ filter: KeyBatchFilter) -> Bool {
        var key = key
        var admitted = false
        withUnsafePointer(to: &key) { key in
            withUnsafeMutablePointer(to: &admitted) { admitted in
                filter(UnsafeBufferPointer(start: key, count: 1), UnsafeMutableBufferPointer(start: admitted, count: 1))
            }
        }
        return admitted
    }

    /// One search result: a key and its inner product with the query.
    public struct Hit: Sendable, Equatable {
        public var key: Int64
        public var score: Float
    }

    /// The `k` visible keys with the largest inner product with `query` that pass `filter`:
    /// the graph searched with effort `ef`, the fresh pool scanned exactly. Best first (ties:
    /// smaller key first).
    public func search(_ query: [Float], k: Int, ef: Int, scratch: SearchScratch, filter: (Int64) -> Bool = { _ in true }) -> [(key: Int64, score: Float)] {
        var hits: [Hit] = []
        query.withUnsafeBufferPointer { search($0, k: k, ef: ef, scratch: scratch, into: &hits, filter: filter) }
        return hits.map { ($0.key, $0.score) }
    }

    /// `search(_:k:ef:scratch:filter:)` into `hits`, which is emptied first and keeps its
    /// capacity: with a scratch and `hits` that have grown to fit, a search does not allocate.
    public func search(
        _ query: UnsafeBufferPointer<Float>, k: Int, ef: Int, scratch: SearchScratch, into hits: inout [Hit], filter: (Int64) -> Bool
    ) {
        search(query, k: k, ef: ef, scratch: scratch, into: &hits) { keys, admitted in
            for j in keys.indices { admitted[j] = filter(keys[j]) }
        }
    }

    /// Judges keys a batch at a time: writes `admitted[j]` for `keys[j]`.
    public typealias KeyBatchFilter = (_ keys: UnsafeBufferPointer<Int64>, _ admitted: UnsafeMutableBufferPointer<Bool>) -> Void

    /// `search(_:k:ef:scratch:into:filter:)` with the filter asked for a batch of keys at a time
    /// (the neighbours of one expanded node that could enter the results; fresh keys one by
    /// one), so that a filter reading memory of its own per key starts those loads together.
    public func search(
        _ query: UnsafeBufferPointer<Float>, k: Int, ef: Int, scratch: SearchScratch, into hits: inout [Hit], batchFilter filter: KeyBatchFilter
    ) {
        precondition(query.count == dimension, "query has \(query.count) floats, expected \(dimension)")
        hits.removeAll(keepingCapacity: true)
        guard k > 0 else { return }
        let s = snapshot
        let n = withUnsafeTemporaryAllocation(of: Int64.self, capacity: s.graph.graph.maxDegree(at: 0)) { keys in
            s.graph.search(query, k: k, ef: ef, scratch: scratch) { rows, admitted in
                // The rows' keys gathered in one pass: their loads overlap.
                for j in rows.indices { keys[j] = s.graphKeys[Int(rows[j])] }
                filter(UnsafeBufferPointer(rebasing: keys[..<rows.count]), admitted)
                guard !s.hidden.isEmpty else { return }
                for j in rows.indices where admitted[j] && s.hidden.contains(keys[j]) { admitted[j] = false }
            }
        }
        for i in 0..<n { hits.append(Hit(key: s.graphKeys[Int(scratch.ids[i])], score: scratch.scores[i])) }
        // Ties among graph hits: smaller key first, as among fresh ones.
        var i = 1
        while i < hits.count {
            var j = i
            while j > 0 && Self.before(hits[j], hits[j - 1]) {
                hits.swapAt(j, j - 1)
                j -= 1
            }
            i += 1
        }
        s.freshVectors.withUnsafeBufferPointer { fresh in
            for (row, key) in s.freshKeys.enumerated() {
                var score: Float = 0
                let base = row * dimension
                for d in 0..<dimension { score += fresh[base + d] * query[d] }
                let hit = Hit(key: key, score: score)
                if hits.count == k, let last = hits.last, !Self.before(hit, last) { continue }
                guard Self.admits(key, filter) else { continue }
                // Insert in order, dropping the worst beyond k.
                if hits.count == k { hits.removeLast() }
                hits.append(hit)
                var j = hits.count - 1
                while j > 0 && Self.before(hits[j], hits[j - 1]) {
                    hits.swapAt(j, j - 1)
                    j -= 1
                }
            }
        }
    }

    @inline(__always)
    static func before(_ a: Hit, _ b: Hit) -> Bool { a.score > b.score || (a.score == b.score && a.key < b.key) }
}
