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
/// request's path: each campaign's tally sits at its state slot (`CampaignLoss.slot`), so a
/// record is an array read, not a hash of the campaign's id; a count per reason sits in a fixed
/// array. A slot another campaign held before starts over; a loss without a slot (made outside
/// a catalog) is kept by id.
public final class LossTally: Sendable {
    public struct Counts: Sendable, Equatable {
        public var reasons: [LossReason: Int] = [:]
        public var minimumBidsToWin: [Micros] = []
        public var sampledDecisions: Int { reasons.values.reduce(0, +) }
    }

    /// One campaign's tally as kept: `counts[reason.tallyIndex]`.
    private struct Tally {
        var campaign: CampaignID
        var counts = [Int](repeating: 0, count: LossReason.tallied.count)
        var minimumBidsToWin: [Micros] = []

        init(_ campaign: CampaignID) { self.campaign = campaign }

        mutating func add(_ loss: CampaignLoss) {
            counts[loss.reason.tallyIndex] += 1
            if let bid = loss.minimumBidToWinMicros {
                if minimumBidsToWin.count >= LossTally.bidSamples { minimumBidsToWin.removeFirst() }
                minimumBidsToWin.append(bid)
            }
        }
    }

    private struct Tallies {
        /// By campaign state slot; nil where no campaign has been tallied.
        var bySlot: [Tally?] = []
        /// Where each campaign's tally is: changed only when a slot gets a campaign.
        var slots: [CampaignID: Int] = [:]
        /// Losses without a slot.
        var loose: [CampaignID: Tally] = [:]
    }

    public static let bidSamples = 101
    private let tallies = Mutex(Tallies())

    public init() {}

    func record(_ losses: [CampaignLoss]) {
        guard !losses.isEmpty else { return }
        tallies.withLock { all in
            for loss in losses {
                let slot = Int(loss.slot)
                guard slot >= 0 else {
                    all.loose[loss.campaignID, default: Tally(loss.campaignID)].add(loss)
                    continue
                }
                if slot >= all.bySlot.count { all.bySlot += repeatElement(nil, count: slot + 1 - all.bySlot.count) }
                if all.bySlot[slot]?.campaign != loss.campaignID {
                    if let previous = all.bySlot[slot]?.campaign { all.slots[previous] = nil }
                    all.bySlot[slot] = Tally(loss.campaignID)
                    all.slots[loss.campaignID] = slot
                }
                all.bySlot[slot]!.add(loss)
            }
        }
    }

    public func counts(of campaign: CampaignID) -> Counts {
        let found = tallies.withLock { all in all.slots[campaign].flatMap { all.bySlot[$0] } ?? all.loose[campaign] }
        guard let tally = found else { return Counts() }
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
