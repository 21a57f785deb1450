import Domain
import Storage
import Synchronization

/// Hands what serving did to slower observers (online learning, the serve log) through a
/// bounded buffer, so a decision or an event never waits on them: `decided` and `recorded`
/// only append, and `drain` — called by a service off the request path — passes the work on,
/// in order. When the buffer is full the oldest work is dropped and counted: what is lost is
/// learning input and log lines, never a decision or an event (the event is already durable in
/// the store, and the decision already answered).
public final class ObserverBuffer: ServingObserver {
    enum Work: Sendable {
        case decided(Decision, UserProfile?, FeedContext, Timestamp)
        case recorded(EventRecord)
    }

    private struct Ring {
        var slots: [Work?]
        var head = 0
        var count = 0
        var dropped = 0

        mutating func push(_ work: Work) {
            if count == slots.count {
                // Full: the oldest goes.
                slots[head] = work
                head = (head + 1) % slots.count
                dropped += 1
            } else {
                slots[(head + count) % slots.count] = work
                count += 1
            }
        }

        mutating func takeAll() -> [Work] {
            var out: [Work] = []
            out.reserveCapacity(count)
            for i in 0..<count {
                let index = (head + i) % slots.count
                if let work = slots[index] { out.append(work) }
                slots[index] = nil
            }
            head = 0
            count = 0
            return out
        }
    }

    private let ring: Mutex<Ring>
    /// Serializes drains, so the observers hear the work in the order it was buffered.
    private let draining = Mutex(())
    private let observers: [any ServingObserver]
    public let capacity: Int

    public init(capacity: Int, observers: [any ServingObserver]) {
        self.capacity = max(1, capacity)
        self.observers = observers
        ring = Mutex(Ring(slots: Array(repeating: nil, count: self.capacity)))
    }

    /// Decisions without placements tell the observers nothing and are not buffered; nor are
    /// traces and loss tallies (the observers read placements).
    public func decided(_ decision: Decision, profile: UserProfile?, context: FeedContext, at time: Timestamp) {
        guard !decision.placements.isEmpty else { return }
        var light = decision
        light.trace = nil
        light.losses = []
        ring.withLock { $0.push(.decided(light, profile, context, time)) }
    }

    public func recorded(_ event: EventRecord) {
        ring.withLock { $0.push(.recorded(event)) }
    }

    /// Passes everything buffered so far to the observers; returns how much.
    @discardableResult
    public func drain() -> Int {
        draining.withLock { _ in
            let work = ring.withLock { $0.takeAll() }
            for item in work {
                switch item {
                case .decided(let decision, let profile, let context, let time):
                    for observer in observers { observer.decided(decision, profile: profile, context: context, at: time) }
                case .recorded(let event):
                    for observer in observers { observer.recorded(event) }
                }
            }
            return work.count
        }
    }

    /// Work waiting now, and work dropped since start because the buffer was full.
    public var counts: (waiting: Int, dropped: Int) {
        ring.withLock { ($0.count, $0.dropped) }
    }
}
