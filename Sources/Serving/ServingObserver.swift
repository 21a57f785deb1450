import Domain
import Storage
import Synchronization

/// Hears what serving did: the decisions it made and the events it recorded durably. Online
/// learning and the serve log listen here; serving knows neither.
public protocol ServingObserver: Sendable {
    /// A decision and what its ranker saw (`Placement.candidate`), for the user and context.
    func decided(_ decision: Decision, profile: UserProfile?, context: FeedContext, at time: Timestamp)
    /// A valid event recorded for the first time (duplicates and invalid clicks are not
    /// reported), with its user, ad and impression's `placementKey`.
    func recorded(_ event: EventRecord)
}

/// The observers of one serving stack, shared by its variants.
public final class ServingObservers: Sendable {
    private let list = Mutex<[any ServingObserver]>([])
    public init() {}

    public func add(_ observer: any ServingObserver) { list.withLock { $0.append(observer) } }

    public var all: [any ServingObserver] { list.withLock { $0 } }
}
