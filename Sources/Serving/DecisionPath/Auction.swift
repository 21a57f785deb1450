import Domain

/// How winners are priced, and the least price of a billed event.
public struct AuctionRules: Sendable, Equatable {
    public enum Pricing: String, Sendable, Equatable, CaseIterable {
        /// Generalized second price: each winner pays the least bid that would have kept its
        /// slot given the others' bids and predictions.
        case secondPrice = "second"
        /// The winner pays its bid (what AdServe did before the auction; kept for comparisons).
        case firstPrice = "first"
    }

    public var pricing = Pricing.secondPrice
    /// The reserve of each billing type, in the bid's units: per 1,000 impressions (awareness),
    /// per click (traffic), per conversion (conversions). A campaign bidding less is not
    /// eligible; no winner pays less.
    public var reserveCPMMicros: Micros = 0
    public var reserveCPCMicros: Micros = 0
    public var reserveCPAMicros: Micros = 0

    public init(pricing: Pricing = .secondPrice, reserveCPMMicros: Micros = 0, reserveCPCMicros: Micros = 0, reserveCPAMicros: Micros = 0) {
        self.pricing = pricing
        self.reserveCPMMicros = reserveCPMMicros
        self.reserveCPCMicros = reserveCPCMicros
        self.reserveCPAMicros = reserveCPAMicros
    }

    @inline(__always)
    public func reserve(_ objective: Objective) -> Micros {
        switch objective {
        case .awareness: reserveCPMMicros
        case .traffic: reserveCPCMicros
        case .conversions: reserveCPAMicros
        }
    }

    /// Whether any billing type has a reserve (eligibility checks bids only then).
    public var hasReserve: Bool { reserveCPMMicros > 0 || reserveCPCMicros > 0 || reserveCPAMicros > 0 }
}

/// The pricing of stage 4 (placement): what each winner pays, in its bid's units — the
/// generalized second price of sponsored search (Edelman, Ostrovsky and Schwarz, "Internet
/// Advertising and the Generalized Second-Price Auction", 2007; Varian, "Position Auctions",
/// 2007), ranked by expected value per impression instead of by bid.
///
/// Slots are filled best first by expected value per impression, v = bid × q, where q is the
/// predicted number of billed events per impression in the bid's units (awareness: 1/1000;
/// traffic: P(click); conversions: P(click) × P(conversion | click)). Under generalized second
/// price the winner of slot i keeps it as long as its value is at least that of the next
/// candidate in the order — the winner of slot i + 1, or for the last slot the best candidate
/// left out (of an advertiser not already placed) — so it pays that value divided by its own q,
/// rounded up to a micro: never above its bid, never below its billing type's reserve, and with
/// one slot and two bidders of equal q exactly the other's bid (the truthful single-slot case).
/// No competitor: the reserve.
public enum Auction {
    /// One bidder as the pricing sees it: its bid and the value it was ranked by.
    public struct Bid: Sendable, Equatable {
        public var objective: Objective
        public var bidMicros: Micros
        /// Total value of one impression in micros: bid × q less `cost`.
        public var value: Double
        /// The engagement cost already taken from `value` (`EngagementCost`); 0 when off.
        public var cost: Double

        public init(objective: Objective, bidMicros: Micros, value: Double, cost: Double = 0) {
            self.objective = objective
            self.bidMicros = bidMicros
            self.value = value
            self.cost = cost
        }
    }

    /// Prices of `winners` (best first), in their bids' units, given `runnerUp`, the best
    /// candidate left out (nil: none).
    public static func prices(_ winners: [Bid], runnerUp: Bid?, rules: AuctionRules) -> [Micros] {
        winners.indices.map { i in
            let winner = winners[i]
            let reserve = rules.reserve(winner.objective)
            guard rules.pricing == .secondPrice else { return winner.bidMicros }
            let next = i + 1 < winners.count ? winners[i + 1].value : runnerUp?.value ?? 0
            // The least bid b with b × q − cost ≥ next, where q = (value + cost) / bid: with an
            // engagement cost a winner pays for it too, as a competitor's value would.
            let advertiserValue = winner.value + winner.cost
            guard advertiserValue > 0, winner.bidMicros > 0, next + winner.cost > 0 else { return min(winner.bidMicros, reserve) }
            // Relative slack of 1e-12 so that floating-point error never rounds an exact price up
            // by a micro.
            let needed = ((next + winner.cost) * Double(winner.bidMicros) / advertiserValue * (1 - 1e-12)).rounded(.up)
            guard needed.isFinite, needed < Double(winner.bidMicros) else { return winner.bidMicros }
            return max(reserve, min(winner.bidMicros, Micros(needed)))
        }
    }
}
