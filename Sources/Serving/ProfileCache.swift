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
    }

    private let state = Mutex(State())
    private let capacity: Int

    init(capacity: Int) { self.capacity = max(1, capacity) }

    /// `.some(nil)` is a remembered miss; `nil` means "not cached".
    func lookup(_ id: UserID) -> UserProfile?? { state.withLock { $0.entries[id] } }

    func store(_ profile: UserProfile?, for id: UserID) {
        state.withLock { s in
            if s.entries.updateValue(profile, forKey: id) != nil { return }
            if s.order.count < capacity {
                s.order.append(id)
            } else {
                s.entries.removeValue(forKey: s.order[s.head])
                s.order[s.head] = id
                s.head = (s.head + 1) % capacity
            }
        }
    }
}
