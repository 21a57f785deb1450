import Domain
import Foundation
import Models
import Serving
import Synchronization
import VectorIndex

/// The candidate stage's retrieval model in the decision path: a two-tower model
/// (`TwoTowerModel`) and a live HNSW index (`LiveVectorIndex`) of its vector of every active
/// ad, keyed by the ad's `RetrievalKey`. A request's user vector is searched for its top K eligible
/// ads; ads created in the last `freshHours` are always offered as well (up to `freshLimit`,
/// newest first, after the others), so a new ad reaches the ranker before the model has seen it
/// clicked.
///
/// Installing a model builds the index of its ad vectors before it serves, so the model and the
/// index it searches always match; until then the previous pair serves. Catalog changes go in
/// as upserts and removals, searchable at once (the index's fresh pool); when they grow past
/// `rebuildFraction` of the index it is rebuilt off the request path.
public final class TwoTowerRetriever: CandidateRetriever {
    public struct Settings: Sendable {
        /// Search effort; the search uses `max(ef, k)`. At K 100 a larger effort found as much
        /// value (500: 0.896 of the full ranking's kept against 0.895 at 100, one 100k world)
        /// at 60% of the decisions per second.
        public var ef = 100
        public var m = 16
        public var efConstruction = 100
        /// Threads that build the index (1 keeps a simulation reproducible).
        public var buildThreads = 1
        public var freshHours: Int64 = 24
        public var freshLimit = 50
        public var rebuildFraction = 0.05
        public init() {}

        /// The effort a search for the top `k` uses: never less than `k`.
        public func effort(k: Int) -> Int { max(ef, k) }

        /// The efforts the commands accept (`--search-effort` of serve, bench and simulate).
        public static let efforts = 1...100_000
        /// What a command says of an effort outside `efforts`.
        public static let effortProblem = "--search-effort must be between \(efforts.lowerBound) and \(efforts.upperBound)"
    }

    /// A model with the index of its ad vectors and what the index holds.
    final class Generation: Sendable {
        let model: TwoTowerModel
        let index: LiveVectorIndex
        /// By ad state slot: what the index holds for it, and its vector in bytes.
        let indexed: Mutex<IndexedAds>

        init(model: TwoTowerModel, index: LiveVectorIndex, indexed: IndexedAds) {
            self.model = model
            self.index = index
            self.indexed = Mutex(indexed)
        }
    }

    /// By ad state slot: the key its vector is indexed under and the ad version it was made
    /// from (24 bytes a slot; a dictionary by key took about 50), and the vector as `dimension`
    /// signed bytes of a scale (`QuantizedVector`; 36 bytes a slot at 32 dimensions): what
    /// `affinities` reads for each candidate, by slot, where the index would need a lookup by
    /// key and two lines of floats.
    struct IndexedAds {
        var entries: [Indexed]
        var codes: [Int8]
        var scales: [Float]
        let dimension: Int

        /// Nothing indexed, room for `slots`.
        init(slots: Int, dimension: Int) {
            self.dimension = dimension
            entries = [Indexed](repeating: Indexed(), count: slots)
            codes = [Int8](repeating: 0, count: slots * dimension)
            scales = [Float](repeating: 0, count: slots)
        }

        /// Room for `slots` (never less than now), at an exact capacity: slots grow only as
        /// the catalog does.
        mutating func reserve(slots: Int) {
            guard slots > entries.count else { return }
            func grown<T>(_ array: [T], _ count: Int, _ zero: T) -> [T] {
                var out: [T] = []
                out.reserveCapacity(count)
                out += array
                out += repeatElement(zero, count: count - array.count)
                return out
            }
            entries = grown(entries, slots, Indexed())
            codes = grown(codes, slots * dimension, 0)
            scales = grown(scales, slots, 0)
        }

        /// Records `entry` at `slot` with its vector.
        mutating func set(_ entry: Indexed, slot: Int, vector: [Float]) {
            entries[slot] = entry
            let quantized = QuantizedVector(vector)
            codes.replaceSubrange((slot * dimension)..<((slot + 1) * dimension), with: quantized.codes)
            scales[slot] = quantized.scale
        }
    }

    /// What the index holds for one ad state slot; `key` -1: nothing. Arrays of them are sized
    /// by the snapshot's `adSlotCount`, which every active ad's slot is below.
    struct Indexed: Equatable {
        var key: Int64 = -1
        var id: Int64 = 0
        var revision: Int64 = 0

        init() {}

        init(_ active: CatalogSnapshot.ActiveAd) {
            key = active.key.rawValue
            id = active.ad.id.rawValue
            revision = active.ad.revision
        }
    }

    public let settings: Settings
    private let generation = Mutex<Generation?>(nil)
    /// Serializes `sync` and an install's publishing; holds the snapshot last synced.
    private let syncState = Mutex(SyncState())
    /// Held by an install for its whole build: one install at a time.
    private let installing = Mutex(())
    /// Called by `install` once it has taken the snapshot it builds from, before building (tests).
    let willBuild: (@Sendable () -> Void)?
    private let fresh = Mutex<[(key: Int64, createdAt: Int64)]>([])
    private let scratches = Mutex<[SearchScratch]>([])
    private let sketches: AdSketches

    struct SyncState {
        var snapshot: CatalogSnapshot?
        var syncedVersion: UInt64?
        var rebuilding = false
    }

    public convenience init(settings: Settings = Settings(), sketches: AdSketches = .shared) {
        self.init(settings: settings, sketches: sketches, willBuild: nil)
    }

    init(settings: Settings, sketches: AdSketches, willBuild: (@Sendable () -> Void)?) {
        self.settings = settings
        self.sketches = sketches
        self.willBuild = willBuild
    }

    /// Bytes of the index serving now.
    public var indexMemoryBytes: Int { generation.withLock { $0?.index.snapshot.memoryBytes } ?? 0 }

    /// The model serving now, if any.
    public var model: TwoTowerModel? { generation.withLock { $0?.model } }

    /// Makes `model` the retrieval model: every active ad of the last synced snapshot (or of
    /// `snapshot`) gets its vector and the index is built before the model serves. The build
    /// (minutes at a million ads) holds no lock `sync` or `retrieve` wait on: the previous
    /// model serves and the catalog keeps syncing meanwhile, and the snapshots synced during the
    /// build are brought into the new index before it is published. Installs run one at a time.
    public func install(_ model: TwoTowerModel, snapshot: CatalogSnapshot? = nil) {
        installing.withLock { _ in
            let base = syncState.withLock { state in
                if let snapshot { state.snapshot = snapshot }
                return state.snapshot
            }
            willBuild?()
            var keys: [Int64] = []
            var vectors: [Float] = []
            var indexed = IndexedAds(slots: base?.adSlotCount ?? 0, dimension: model.dimension)
            base?.forEachActiveAd { active in
                let adVector = vector(of: active, model)
                keys.append(active.key.rawValue)
                vectors += adVector
                indexed.set(Indexed(active), slot: Int(active.key.adSlot), vector: adVector)
            }
            let index = LiveVectorIndex(dimension: model.dimension, m: settings.m, efConstruction: settings.efConstruction)
            if !keys.isEmpty { index.load(keys: keys, vectors: vectors, threads: settings.buildThreads) }
            let built = Generation(model: model, index: index, indexed: indexed)
            syncState.withLock { state in
                // A snapshot synced while the index was built: its changes go in first.
                if let latest = state.snapshot, latest !== base { catchUp(built, to: latest, &state) }
                generation.withLock { $0 = built }
                state.syncedVersion = state.snapshot?.version
            }
        }
    }

    public func sync(_ snapshot: CatalogSnapshot, at now: Timestamp) {
        syncState.withLock { state in
            guard state.syncedVersion != snapshot.version || state.snapshot == nil else { return }
            state.snapshot = snapshot
            state.syncedVersion = snapshot.version
            var newest: [(key: Int64, createdAt: Int64)] = []
            let since = now.milliseconds - settings.freshHours * Timestamp.millisecondsPerHour
            snapshot.forEachActiveAd { active in
                if active.ad.createdAt.milliseconds >= since { newest.append((active.key.rawValue, active.ad.createdAt.milliseconds)) }
            }
            newest.sort { $0.createdAt != $1.createdAt ? $0.createdAt > $1.createdAt : $0.key < $1.key }
            fresh.withLock { $0 = Array(newest.prefix(settings.freshLimit)) }
            guard let current = generation.withLock({ $0 }) else { return }
            catchUp(current, to: snapshot, &state)
        }
    }

    /// Brings `current`'s index to `snapshot`: new and changed ads in, ads no longer active (or
    /// indexed under another key) out; past `rebuildFraction` of pending changes, a rebuild on
    /// a thread of its own.
    private func catchUp(_ current: Generation, to snapshot: CatalogSnapshot, _ state: inout SyncState) {
        var upserts: [(key: Int64, vector: [Float])] = []
        var ads = current.indexed.withLock { $0 }
        let indexed = ads.entries
        var next = [Indexed](repeating: Indexed(), count: max(indexed.count, snapshot.adSlotCount))
        ads.reserve(slots: next.count)
        snapshot.forEachActiveAd { ad in
            let entry = Indexed(ad)
            let slot = Int(ad.key.adSlot)
            if slot >= indexed.count || indexed[slot] != entry {
                let adVector = vector(of: ad, current.model)
                upserts.append((entry.key, adVector))
                ads.set(entry, slot: slot, vector: adVector)
            }
            next[slot] = entry
        }
        // Gone from the active ads, or indexed under another key (its campaign's slot).
        let removals = indexed.indices.compactMap { slot in
            indexed[slot].key >= 0 && indexed[slot].key != next[slot].key ? indexed[slot].key : nil
        }
        current.index.update(upserts: upserts, removals: removals)
        ads.entries = next
        current.indexed.withLock { $0 = ads }
        let pending = current.index.snapshot.freshCount
        if !state.rebuilding, pending > 64, Double(pending) > settings.rebuildFraction * Double(max(1, snapshot.activeAdCount)) {
            state.rebuilding = true
            let threads = settings.buildThreads
            // A thread of its own: a rebuild blocks for seconds to minutes, which would
            // starve the cooperative pool.
            Thread.detachNewThread { [self] in
                current.index.rebuild(threads: threads)
                syncState.withLock { $0.rebuilding = false }
            }
        }
    }

    public func retrieve(
        user: UserProfile?, context: FeedContext, k: Int, now: Timestamp, admits: RetrievalFilter, into keys: inout [Int64], scores: inout [Float]
    ) -> Int? {
        keys.removeAll(keepingCapacity: true)
        scores.removeAll(keepingCapacity: true)
        guard let current = generation.withLock({ $0 }) else { return nil }
        let model = current.model
        let scratch = scratches.withLock { $0.popLast() } ?? SearchScratch()
        defer { scratches.withLock { $0.append(scratch) } }
        var hits: [LiveVectorIndex.Hit] = []
        hits.reserveCapacity(k)
        let side = model.userSide(user, device: context.device)
        withUnsafeTemporaryAllocation(of: Float.self, capacity: model.dimension) { query in
            model.userVector(side, into: query)
            current.index.search(UnsafeBufferPointer(query), k: k, ef: settings.effort(k: k), scratch: scratch, into: &hits, batchFilter: admits)
        }
        let since = now.milliseconds - settings.freshHours * Timestamp.millisecondsPerHour
        let newest = fresh.withLock { $0 }
        func inWindow(_ ad: (key: Int64, createdAt: Int64)) -> Bool { ad.createdAt >= since && ad.createdAt <= now.milliseconds }
        func isFresh(_ key: Int64) -> Bool { newest.contains { $0.key == key && inWindow($0) } }
        var freshHits: [LiveVectorIndex.Hit] = []
        for hit in hits {
            if !newest.isEmpty && isFresh(hit.key) {
                freshHits.append(hit)
            } else {
                keys.append(hit.key)
                scores.append(hit.score)
            }
        }
        let best = keys.count
        // The fresh ads the search found, with their scores (admitted already), then the others.
        for hit in freshHits {
            keys.append(hit.key)
            scores.append(hit.score)
        }
        let found = keys.count
        for ad in newest where inWindow(ad) {
            if !keys[best..<found].contains(ad.key) { keys.append(ad.key) }
        }
        // Those judged together; the refused ones dropped, the order kept. The search did not
        // score them.
        scores += repeatElement(.nan, count: keys.count - found)
        guard keys.count > found else { return best }
        var kept = found
        withUnsafeTemporaryAllocation(of: Bool.self, capacity: keys.count - found) { admitted in
            admitted.initialize(repeating: false)
            keys[found...].withUnsafeBufferPointer { admits($0, admitted) }
            for offset in admitted.indices where admitted[offset] {
                keys[kept] = keys[found + offset]
                kept += 1
            }
        }
        keys.removeLast(keys.count - kept)
        scores.removeLast(scores.count - kept)
        return best
    }

    /// The inner products of the user's vector with the ads' vectors of the model serving now,
    /// from their bytes (`IndexedAds`); NaN for a key not indexed (under that key) at its slot.
    public func affinities(user: UserProfile?, context: FeedContext, keys: UnsafeBufferPointer<Int64>, into affinities: UnsafeMutableBufferPointer<Float>) -> Bool {
        guard let current = generation.withLock({ $0 }) else { return false }
        let model = current.model
        let ads = current.indexed.withLock { $0 }
        let side = model.userSide(user, device: context.device)
        let d = model.dimension
        withUnsafeTemporaryAllocation(of: Float.self, capacity: d) { query in
            model.userVector(side, into: query)
            ads.entries.withUnsafeBufferPointer { entries in
                ads.codes.withUnsafeBufferPointer { codes in
                    for j in keys.indices {
                        let slot = Int(RetrievalKey(rawValue: keys[j]).adSlot)
                        guard slot < entries.count, entries[slot].key == keys[j] else {
                            affinities[j] = .nan
                            continue
                        }
                        let ad = UnsafeBufferPointer(rebasing: codes[(slot * d)..<((slot + 1) * d)])
                        affinities[j] = Float(QuantizedVector.dot(ad, scale: ads.scales[slot], UnsafeBufferPointer(query)))
                    }
                }
            }
        }
        return true
    }

    /// The model's vector of one active ad.
    private func vector(of active: CatalogSnapshot.ActiveAd, _ model: TwoTowerModel) -> [Float] {
        let ad = active.ad
        return model.adVector(model.adSide(
            sketch: sketches.sketch(of: ad), adID: ad.id.rawValue, campaignID: ad.campaignID.rawValue, advertiserID: active.advertiserID.rawValue,
            format: ad.format.rawValue, objective: active.objective.rawValue, caption: ad.caption))
    }
}
