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
///
/// A sampled decision records every active campaign (100,000 at the design's scale), on the
/// request's path: each campaign's tally is found once and updated in place — a count per
/// reason in a fixed array, not a dictionary copied out, changed and written back.
public final class LossTally: Sendable {
    public struct Counts: Sendable, Equatable {
        public var reasons: [LossReason: Int] = [:]
        public var minimumBidsToWin: [Micros] = []
        public var sampledDecisions: Int { reasons.values.reduce(0, +) }
    }

    /// One campaign's tally as kept: `counts[reason.tallyIndex]`.
    private struct Tally {
        var counts = [Int](repeating: 0, count: LossReason.tallied.count)
        var minimumBidsToWin: [Micros] = []

        mutating func add(_ loss: CampaignLoss) {
            counts[loss.reason.tallyIndex] += 1
            if let bid = loss.minimumBidToWinMicros {
                if minimumBidsToWin.count >= LossTally.bidSamples { minimumBidsToWin.removeFirst() }
                minimumBidsToWin.append(bid)
            }
        }
    }

    public static let bidSamples = 101
    private let tallies = Mutex<[CampaignID: Tally]>([:])

    public init() {}

    func record(_ losses: [CampaignLoss]) {
        guard !losses.isEmpty else { return }
        tallies.withLock { all in
            for loss in losses { all[loss.campaignID, default: Tally()].add(loss) }
        }
    }

    public func counts(of campaign: CampaignID) -> Counts {
        guard let tally = tallies.withLock({ $0[campaign] }) else { return Counts() }
        var counts = Counts(minimumBidsToWin: tally.minimumBidsToWin)
        for (reason, count) in zip(LossReason.tallied, tally.counts) where count > 0 { counts.reasons[reason] = count }
        return counts
    }
}

extension LossReason {
    /// Every reason, in the order a tally counts them (`allCases` made once: the synthesized
    /// property builds a new array on every call).
    static let tallied = allCases

    /// Where a tally counts this reason (`tallied[tallyIndex] == self`): a scan of nine cases,
    /// no hashing.
    var tallyIndex: Int { Self.tallied.firstIndex(of: self)! }
}
