import Domain
import Synchronization

/// Hot user profiles in front of the store (users are too many for one node, so the store is
/// the truth). Remembers misses too, so unknown users cost one lookup. Bounded: when full,
/// the oldest inserted entry goes first.
final class ProfileCache: Sendable {
    private struct State {
        var entries: [UserID: UserProfile?] = [:]
        var order: [UserID] = []
        var head = 0

        mutating func insert(_ profile: UserProfile?, for id: UserID, capacity: Int) {
            if entries.updateValue(profile, forKey: id) != nil { return }
            if order.count < capacity {
                order.append(id)
            } else {
                entries.removeValue(forKey: order[head])
                order[head] = id
                head = (head + 1) % capacity
            }
        }
    }

    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// `.some(nil)` is a remembered miss; `nil` means "not cached".
    func lookup(_ id: UserID) -> UserProfile?? { state.withLock { $0.entries[id] } }

    /// Caches what a decision loaded, unless a newer write got there first.
    func insertIfAbsent(_ profile: UserProfile?, for id: UserID) {
        state.withLock { s in
            guard s.entries[id] == nil else { return }
            s.insert(profile, for: id, capacity: capacity)
        }
    }

    /// Caches a profile just written to the store.
    func store(_ profile: UserProfile?, for id: UserID) {
        state.withLock { s in s.insert(profile, for: id, capacity: capacity) }
    }
}
