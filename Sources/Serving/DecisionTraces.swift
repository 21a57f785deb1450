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
/// request's path: each campaign's counts sit at its state slot (`CampaignLoss.slot`) in flat
/// arrays, so a record is an array write, with no hash of the campaign's id and no tally copied
/// (retained) out of its slot and back. A slot another campaign held before starts over.
public final class LossTally: Sendable {
    public struct Counts: Sendable, Equatable {
        public var reasons: [LossReason: Int] = [:]
        public var minimumBidsToWin: [Micros] = []
        public var sampledDecisions: Int { reasons.values.reduce(0, +) }
    }

    private static let reasons = LossReason.tallied.count
    private static let none = Int64.min

    private struct Tallies {
        /// By campaign state slot: the campaign counted there (`none`: no campaign yet), its
        /// count per reason at `counts[slot * reasons + reason.tallyIndex]`, and its latest least
        /// bids to win (only campaigns outbid among the traced candidates have any).
        var campaigns: [Int64] = []
        var counts: [Int] = []
        var bids: [Int: [Micros]] = [:]
        /// Where each campaign's counts are: changed only when a slot gets a campaign.
        var slots: [CampaignID: Int] = [:]
    }

    public static let bidSamples = 101
    private let tallies = Mutex(Tallies())

    public init() {}

    private static func keep(_ bid: Micros, in bids: inout [Micros]) {
        if bids.count >= bidSamples { bids.removeFirst() }
        bids.append(bid)
    }

    func record(_ losses: [CampaignLoss]) {
        guard !losses.isEmpty else { return }
        tallies.withLock { all in
            for loss in losses {
                let slot = Int(loss.slot)
                precondition(slot >= 0, "a campaign's state slot is not negative")
                if slot >= all.campaigns.count {
                    all.campaigns += repeatElement(Self.none, count: slot + 1 - all.campaigns.count)
                    all.counts += repeatElement(0, count: all.campaigns.count * Self.reasons - all.counts.count)
                }
                if all.campaigns[slot] != loss.campaignID.rawValue {
                    // The campaign counted here before no longer has its counts here (unless
                    // they moved with it to another slot).
                    if all.campaigns[slot] != Self.none, all.slots[CampaignID(all.campaigns[slot])] == slot {
                        all.slots[CampaignID(all.campaigns[slot])] = nil
                    }
                    all.campaigns[slot] = loss.campaignID.rawValue
                    all.slots[loss.campaignID] = slot
                    for i in (slot * Self.reasons)..<((slot + 1) * Self.reasons) { all.counts[i] = 0 }
                    all.bids[slot] = nil
                }
                all.counts[slot * Self.reasons + loss.reason.tallyIndex] += 1
                if let bid = loss.minimumBidToWinMicros { Self.keep(bid, in: &all.bids[slot, default: []]) }
            }
        }
    }

    public func counts(of campaign: CampaignID) -> Counts {
        let found: (counts: [Int], bids: [Micros])? = tallies.withLock { all in
            all.slots[campaign].map { slot in (Array(all.counts[(slot * Self.reasons)..<((slot + 1) * Self.reasons)]), all.bids[slot] ?? []) }
        }
        guard let found else { return Counts() }
        var counts = Counts(minimumBidsToWin: found.bids)
        for (reason, count) in zip(LossReason.tallied, found.counts) where count > 0 { counts.reasons[reason] = count }
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
