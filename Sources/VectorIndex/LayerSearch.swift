/// Which nodes a search may return (every node is still usable as a hop), judged a batch at a
/// time: the neighbours of one expanded node that could enter the results, so that the misses
/// a filter takes on its own data (keys, campaigns) overlap instead of queuing one node after
/// another. A generic parameter, so the unfiltered search compiles with the test folded away.
protocol NodeFilter {
    /// True when every node may be returned: the search then never asks.
    static var acceptsAll: Bool { get }
    /// Writes to `allowed[j]` whether `nodes[j]` may be returned, for `j < count`.
    func allows(_ nodes: UnsafePointer<Int32>, count: Int, into allowed: UnsafeMutablePointer<Bool>)
}

/// No filter.
struct AcceptAll: NodeFilter {
    static var acceptsAll: Bool { true }
    @inline(__always) func allows(_: UnsafePointer<Int32>, count: Int, into allowed: UnsafeMutablePointer<Bool>) {
        allowed.update(repeating: true, count: count)
    }
}

/// The caller's predicate over a batch, for the duration of one search.
struct PredicateFilter: NodeFilter {
    static var acceptsAll: Bool { false }
    let predicate: (UnsafeBufferPointer<Int32>, UnsafeMutableBufferPointer<Bool>) -> Void
    @inline(__always) func allows(_ nodes: UnsafePointer<Int32>, count: Int, into allowed: UnsafeMutablePointer<Bool>) {
        predicate(UnsafeBufferPointer(start: nodes, count: count), UnsafeMutableBufferPointer(start: allowed, count: count))
    }
}

/// The graph walks shared by queries and insertions. With `locks` (a multi-threaded build) every
/// list is copied out under its node's lock; without (a built index, or a single builder) lists
/// are read in place. Either way a list is only read during a short gather step, and the vectors
/// it names are scored afterwards from the copy.
extension HNSWIndex {
    func runSearch<Filter: NodeFilter>(
        _ query: UnsafeBufferPointer<Float>, k: Int, ef: Int, scratch: SearchScratch, filter: Filter
    ) -> Int {
        precondition(query.count == dimension, "query has \(query.count) floats, expected \(dimension)")
        guard k > 0, let (entryNode, topLevel) = entryPoint() else {
            scratch.clearHits()
            return 0
        }
        let graph = self.graph
        let ef = max(ef, k)
        let stride = vectors.stride
        scratch.prepare(nodes: graph.count, maxDegree: graph.maxDegree(at: 0), stride: stride, ef: ef, k: k)
        VectorSet.copyPadded(query, to: scratch.query, stride: stride)
        let padded = UnsafePointer(scratch.query)
        let start = ScoredNode(score: dotProduct(padded, vectors.row(entryNode), blocks: vectors.blocks), id: entryNode)
        let closest = greedyDescent(padded, from: start, fromLevel: topLevel, toLevel: 1, graph: graph, scratch: scratch, locks: nil)
        searchLayer(padded, entry: closest.id, level: 0, ef: ef, graph: graph, scratch: scratch, filter: filter, locks: nil)
        scratch.takeHits(k: k)
        return scratch.count
    }

    /// Greedy walk on each level from `fromLevel` down to `toLevel` (both included): move to
    /// the best-scoring neighbour while one beats the current node. Returns the node reached.
    @inline(__always)
    func greedyDescent(
        _ query: UnsafePointer<Float>, from start: ScoredNode, fromLevel: Int, toLevel: Int,
        graph: NeighborLists, scratch: SearchScratch, locks: NodeLocks?
    ) -> ScoredNode {
        let base = UnsafePointer(vectors.base)
        let stride = vectors.stride
        let blocks = vectors.blocks
        let ids = scratch.fresh
        let scores = scratch.freshScores
        var current = start
        var level = fromLevel
        while level >= toLevel {
            var moved = true
            while moved {
                moved = false
                let degree = locks.withLock(current.id) {
                    let list = graph.list(of: current.id, at: level)
                    let degree = Int(list[0])
                    for j in 0..<degree { ids[j] = list[j &+ 1] }
                    return degree
                }
                for j in 0..<degree { scores[j] = dotProduct(query, base + Int(ids[j]) &* stride, blocks: blocks) }
                for j in 0..<degree where scores[j] > current.score {
                    current = ScoredNode(score: scores[j], id: ids[j])
                    moved = true
                }
            }
            level -= 1
        }
        return current
    }

    /// Best-first search of one level from `entry`, keeping the `ef` best nodes that pass
    /// `filter` (left in `scratch.results`). Stops when the best unexpanded candidate scores
    /// below the worst of a full result set; while the set is not full every reached node is
    /// a candidate.
    ///
    /// Expanding a node runs in passes so that memory loads overlap instead of queuing behind
    /// unpredictable branches: gather the unvisited neighbours (branch-free), touch their rows
    /// and the list of the likely next node to start every cache miss at once, score them all,
    /// then offer the scores to the heaps.
    @inline(__always)
    func searchLayer<Filter: NodeFilter>(
        _ query: UnsafePointer<Float>, entry: Int32, level: Int, ef: Int,
        graph: NeighborLists, scratch: SearchScratch, filter: Filter, locks: NodeLocks?
    ) {
        let base = UnsafePointer(vectors.base)
        let stride = vectors.stride
        let blocks = vectors.blocks
        let visited = scratch.visited
        scratch.clearVisited()
        let fresh = scratch.fresh
        let freshScores = scratch.freshScores
        let allowed = scratch.allowed
        var candidates = scratch.candidates
        var results = scratch.results
        candidates.removeAll()
        results.removeAll()

        fresh[0] = entry
        visited[Int(entry) &>> 6] |= 1 &<< UInt64(entry & 63)
        scratch.logMarks(fresh, count: 1)
        let entryScore = dotProduct(query, base + Int(entry) &* stride, blocks: blocks)
        candidates.push(ScoredNode(score: entryScore, id: entry))
        if !Filter.acceptsAll { filter.allows(fresh, count: 1, into: allowed) }
        if Filter.acceptsAll || allowed[0] { results.push(ScoredNode(score: entryScore, id: entry)) }
        // The score a node must beat to enter the results: -∞ until they hold `ef` nodes.
        var bound = results.count == ef ? results.top.score : -Float.infinity
        // Touching the first 256 bytes of a row is enough: the hardware prefetcher follows
        // the rest of a longer one.
        let rowBytes = min(stride &* 4, 256)
        let listBytes = (1 &+ graph.maxDegree(at: level)) &* 4
        var touched: UInt32 = 0

        while !candidates.isEmpty {
            let candidate = candidates.pop()
            if candidate.score < bound { break }

            let node = candidate.id
            let unvisited = locks.withLock(node) {
                let list = graph.list(of: node, at: level)
                let degree = Int(list[0])
                var unvisited = 0
                for j in 0..<degree {
                    let neighbour = list[j &+ 1]
                    let word = Int(neighbour) &>> 6
                    let bit: UInt64 = 1 &<< UInt64(neighbour & 63)
                    let marks = visited[word]
                    fresh[unvisited] = neighbour
                    unvisited &+= marks & bit == 0 ? 1 : 0
                    visited[word] = marks | bit
                }
                return unvisited
            }
            scratch.logMarks(fresh, count: unvisited)

            for j in 0..<unvisited {
                touched ^= touchLines(base + Int(fresh[j]) &* stride, bytes: rowBytes)
            }
            if !candidates.isEmpty {
                // Likely the next node to expand: start loading its list too.
                let next = candidates.top.id
                touched ^= locks.withLock(next) { touchLines(graph.list(of: next, at: level), bytes: listBytes) }
            }
            for j in 0..<unvisited {
                freshScores[j] = dotProduct(query, base + Int(fresh[j]) &* stride, blocks: blocks)
            }

            // Only the neighbours that beat the bound may enter: kept in place, in order, and
            // judged by the filter together.
            var passing = 0
            for j in 0..<unvisited where freshScores[j] > bound {
                fresh[passing] = fresh[j]
                freshScores[passing] = freshScores[j]
                passing &+= 1
            }
            if !Filter.acceptsAll && passing > 0 { filter.allows(fresh, count: passing, into: allowed) }
            for j in 0..<passing {
                let score = freshScores[j]
                // The bound rises as nodes enter: a later one may no longer beat it.
                if score <= bound { continue }
                let hit = ScoredNode(score: score, id: fresh[j])
                candidates.push(hit)
                if !Filter.acceptsAll && !allowed[j] { continue }
                if results.count < ef {
                    results.push(hit)
                    if results.count == ef { bound = results.top.score }
                } else {
                    results.replaceTop(with: hit)
                    bound = results.top.score
                }
            }
        }
        scratch.candidates = candidates
        scratch.results = results
        scratch.touched = touched
    }
}

/// Loads one word from each 64-byte cache line of `bytes` bytes at `start` and returns their
/// XOR. Swift has no prefetch instruction; these plain loads, issued back to back for every
/// row about to be scored, let the CPU fetch all those lines at once instead of one row at a
/// time inside the dot products. Callers fold the result into `SearchScratch.touched` so that
/// the loads are not optimized away.
@inline(__always)
func touchLines<T>(_ start: UnsafePointer<T>, bytes: Int) -> UInt32 {
    let raw = UnsafeRawPointer(start)
    var folded: UInt32 = 0
    var offset = 0
    while offset < bytes {
        folded ^= raw.load(fromByteOffset: offset, as: UInt32.self)
        offset &+= 64
    }
    return folded
}
