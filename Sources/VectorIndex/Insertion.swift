/// Buffers for linking nodes into the graph: one per builder thread, and one kept by the index
/// for `add`. Not thread-safe.
final class InsertionScratch {
    /// The layer searches' own scratch.
    let search = SearchScratch()
    /// Neighbour candidates of one list, best first: a layer search's results, or a list
    /// being merged or pruned.
    let pool: UnsafeMutablePointer<ScoredNode>
    /// The neighbours chosen for the node being inserted, on the level being linked.
    let chosen: UnsafeMutablePointer<ScoredNode>
    /// The survivors of a merge or a prune.
    let kept: UnsafeMutablePointer<ScoredNode>

    init(m: Int, efConstruction: Int) {
        pool = AlignedMemory.allocate(ScoredNode.self, count: max(efConstruction, 3 * m) + 1)
        chosen = AlignedMemory.allocate(ScoredNode.self, count: m)
        kept = AlignedMemory.allocate(ScoredNode.self, count: 2 * m)
    }

    deinit {
        AlignedMemory.free(pool)
        AlignedMemory.free(chosen)
        AlignedMemory.free(kept)
    }
}

/// Insertion: how one node is linked into the graph (used by `build` and `add`).
extension HNSWIndex {
    /// The top level of `node`: the HNSW draw `⌊−ln(u) / ln(m)⌋` for `u` uniform in (0, 1],
    /// taken from a hash of `(seed, node)` so that it does not depend on insertion order or
    /// threads. A node reaches level `L` with probability `m^−L`.
    static func drawLevel(node: Int, seed: UInt64, m: Int) -> Int {
        // SplitMix64 finalizer over a Weyl sequence step.
        var z = seed &+ (UInt64(node) &+ 1) &* 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        let u = Double((z >> 11) + 1) * 0x1p-53
        var level = 0
        var threshold = 1 / Double(m)
        while u <= threshold && level < 64 {
            level += 1
            threshold /= Double(m)
        }
        return level
    }

    /// Links `node`, whose vector and level are stored and whose lists are empty, into the
    /// graph: greedy descent to its top level, then on each level down to 0 a search for
    /// `efConstruction` candidates, the heuristic choice of `m` of them, and links both ways.
    /// With `locks`, several threads may insert different nodes at once (see `HNSWIndex`).
    func insert(_ node: Int32, scratch: InsertionScratch, locks: NodeLocks?) {
        let graph = self.graph
        let level = graph.level(of: node)
        guard let (entryNode, topLevel) = entryPoint() else {
            // The first node becomes the entry point; nothing to link to.
            if !raiseEntryPoint(to: node, level: level) { insert(node, scratch: scratch, locks: locks) }
            return
        }
        let search = scratch.search
        search.prepare(nodes: graph.count, maxDegree: graph.maxDegree(at: 0), stride: vectors.stride, ef: efConstruction, k: 0)
        let query = vectors.row(node)
        var closest = ScoredNode(score: dotProduct(query, vectors.row(entryNode), blocks: vectors.blocks), id: entryNode)
        if level < topLevel {
            closest = greedyDescent(
                query, from: closest, fromLevel: topLevel, toLevel: level + 1, graph: graph, scratch: search, locks: locks)
        }
        var linkLevel = min(level, topLevel)
        while linkLevel >= 0 {
            searchLayer(
                query, entry: closest.id, level: linkLevel, ef: efConstruction,
                graph: graph, scratch: search, filter: AcceptAll(), locks: locks)
            let found = drainResults(of: search, into: scratch.pool, excluding: node)
            let chosen = selectNeighbours(from: scratch.pool, count: found, limit: m, into: scratch.chosen)
            setNeighbours(of: node, level: linkLevel, to: scratch.chosen, count: chosen, graph: graph, scratch: scratch, locks: locks)
            for j in 0..<chosen {
                link(scratch.chosen[j], to: node, level: linkLevel, graph: graph, scratch: scratch, locks: locks)
            }
            if chosen > 0 { closest = scratch.chosen[0] }
            linkLevel -= 1
        }
        if level > topLevel { raiseEntryPoint(to: node, level: level) }
    }

    /// Moves a layer search's results into `pool`, best first, leaving out `node` itself
    /// (which a concurrent builder may have made reachable already). Returns how many.
    private func drainResults(of search: SearchScratch, into pool: UnsafeMutablePointer<ScoredNode>, excluding node: Int32) -> Int {
        var results = search.results
        let total = results.count
        var slot = total
        while slot > 0 {
            slot -= 1
            pool[slot] = results.pop()
        }
        search.results = results
        var found = 0
        for j in 0..<total where pool[j].id != node {
            pool[found] = pool[j]
            found += 1
        }
        return found
    }

    /// The HNSW neighbour heuristic: walks `pool` (best first, scored against the node whose
    /// list is being filled) and keeps a candidate only if it is closer to that node than to
    /// every candidate already kept, up to `limit`. It spreads a list over directions instead
    /// of crowding it into one cluster. A pool no larger than `limit` is kept whole.
    /// Writes the kept nodes, best first, to `output`; returns how many.
    private func selectNeighbours(
        from pool: UnsafeMutablePointer<ScoredNode>, count: Int, limit: Int, into output: UnsafeMutablePointer<ScoredNode>
    ) -> Int {
        if count <= limit {
            output.update(from: pool, count: count)
            return count
        }
        let base = UnsafePointer(vectors.base)
        let stride = vectors.stride
        let blocks = vectors.blocks
        var kept = 0
        for i in 0..<count {
            let candidate = pool[i]
            let row = base + Int(candidate.id) &* stride
            var diverse = true
            for j in 0..<kept where dotProduct(row, base + Int(output[j].id) &* stride, blocks: blocks) > candidate.score {
                diverse = false
                break
            }
            if diverse {
                output[kept] = candidate
                kept += 1
                if kept == limit { break }
            }
        }
        return kept
    }

    /// Sets `node`'s list on `level` to the `count` nodes in `chosen`. If another builder has
    /// linked to `node` meanwhile, the list is not empty: the two sets are merged, and pruned
    /// with the heuristic if they overflow.
    private func setNeighbours(
        of node: Int32, level: Int, to chosen: UnsafeMutablePointer<ScoredNode>, count: Int,
        graph: NeighborLists, scratch: InsertionScratch, locks: NodeLocks?
    ) {
        locks.withLock(node) {
            let list = graph.list(of: node, at: level)
            let existing = Int(list[0])
            if existing == 0 {
                for j in 0..<count { list[j + 1] = chosen[j].id }
                list[0] = Int32(count)
                return
            }
            let pool = scratch.pool
            pool.update(from: chosen, count: count)
            var merged = count
            let row = vectors.row(node)
            for j in 1...existing {
                let other = list[j]
                var known = false
                for i in 0..<count where chosen[i].id == other {
                    known = true
                    break
                }
                if known { continue }
                pool[merged] = ScoredNode(score: dotProduct(row, vectors.row(other), blocks: vectors.blocks), id: other)
                merged += 1
            }
            storeList(list, from: pool, count: merged, limit: graph.maxDegree(at: level), scratch: scratch)
        }
    }

    /// Adds `node` to the list of `neighbour.id` on `level` (`neighbour.score` is their inner
    /// product). A full list is pruned with the heuristic over its members plus `node`.
    private func link(
        _ neighbour: ScoredNode, to node: Int32, level: Int,
        graph: NeighborLists, scratch: InsertionScratch, locks: NodeLocks?
    ) {
        let owner = neighbour.id
        locks.withLock(owner) {
            let list = graph.list(of: owner, at: level)
            let degree = Int(list[0])
            for j in 0..<degree where list[j + 1] == node { return }
            if degree < graph.maxDegree(at: level) {
                list[degree + 1] = node
                list[0] = Int32(degree + 1)
                return
            }
            let pool = scratch.pool
            pool[0] = ScoredNode(score: neighbour.score, id: node)
            let row = vectors.row(owner)
            for j in 0..<degree {
                let other = list[j + 1]
                pool[j + 1] = ScoredNode(score: dotProduct(row, vectors.row(other), blocks: vectors.blocks), id: other)
            }
            storeList(list, from: pool, count: degree + 1, limit: graph.maxDegree(at: level), scratch: scratch)
        }
    }

    /// Writes the best of `count` scored candidates in `pool` (any order) to `list`: all of
    /// them if they fit in `limit`, else the heuristic's choice.
    private func storeList(
        _ list: UnsafeMutablePointer<Int32>, from pool: UnsafeMutablePointer<ScoredNode>, count: Int, limit: Int,
        scratch: InsertionScratch
    ) {
        sortBestFirst(pool, count: count)
        let kept = selectNeighbours(from: pool, count: count, limit: limit, into: scratch.kept)
        for j in 0..<kept { list[j + 1] = scratch.kept[j].id }
        list[0] = Int32(kept)
    }

    /// Insertion sort by descending score: lists hold at most 3·m entries.
    private func sortBestFirst(_ nodes: UnsafeMutablePointer<ScoredNode>, count: Int) {
        guard count > 1 else { return }
        for i in 1..<count {
            let moving = nodes[i]
            var j = i
            while j > 0 && nodes[j - 1].score < moving.score {
                nodes[j] = nodes[j - 1]
                j -= 1
            }
            nodes[j] = moving
        }
    }
}
