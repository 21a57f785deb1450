import Domain
import Synchronization

/// The traces of this node's latest decisions, at most `capacity` (the oldest go first): what
/// `explain` and `why` read. A trace is a few kilobytes (candidates, the profile it saw).
public final class DecisionTraces: Sendable {
    private struct Ring {
        var byID: [String: DecisionTrace] = [:]
        var order: [String] = []
        var next = 0
    }

    public let capacity: Int
    private let ring = Mutex(Ring())

    public init(capacity: Int) { self.capacity = max(0, capacity) }

    func record(_ trace: DecisionTrace) {
        guard capacity > 0 else { return }
        ring.withLock { r in
            if r.order.count < capacity {
                r.order.append(trace.decisionID)
            } else {
                r.byID[r.order[r.next]] = nil
                r.order[r.next] = trace.decisionID
                r.next = (r.next + 1) % capacity
            }
            r.byID[trace.decisionID] = trace
        }
    }

    public func trace(_ decisionID: String) -> DecisionTrace? { ring.withLock { $0.byID[decisionID] } }
}

/// Why each campaign lost, aggregated over the sampled decisions (`DecisionEngine.lossSampleRate`):
/// counts per reason, and the least bids that would have won when it was outbid among the
/// traced candidates (the latest `bidSamples`).
public final class LossTally: Sendable {
    public struct Counts: Sendable, Equatable {
        public var reasons: [LossReason: Int] = [:]
        public var minimumBidsToWin: [Micros] = []
        public var sampledDecisions: Int { reasons.values.reduce(0, +) }
    }

    public static let bidSamples = 101
    private let counts = Mutex<[CampaignID: Counts]>([:])

    public init() {}

    func record(_ losses: [CampaignLoss]) {
        guard !losses.isEmpty else { return }
        counts.withLock { all in
            for loss in losses {
                var c = all[loss.campaignID, default: Counts()]
                c.reasons[loss.reason, default: 0] += 1
                if let bid = loss.minimumBidToWinMicros {
                    if c.minimumBidsToWin.count >= Self.bidSamples { c.minimumBidsToWin.removeFirst() }
                    c.minimumBidsToWin.append(bid)
                }
                all[loss.campaignID] = c
            }
        }
    }

    public func counts(of campaign: CampaignID) -> Counts { counts.withLock { $0[campaign] ?? Counts() } }
}
