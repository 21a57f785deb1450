import Domain

/// Stage 4 of a decision: the winners, best first, go into the page's ad positions in order,
/// each with its price, and stage 5 signs a token for each.
enum PagePlacement {
    static func place(_ picks: [Pick], positions: [Int], request: DecisionRequest, signer: TokenSigner) -> [Placement] {
        var placements: [Placement] = []
        placements.reserveCapacity(picks.count)
        for (pick, afterPost) in zip(picks, positions) {
            let candidate = pick.candidate
            // First price for now: the bid, per billed event. The auction (GSP) replaces this.
            let price = candidate.objective.pricePerBilledEvent(bid: candidate.bidMicros)
            let token = ImpressionToken(
                decisionID: request.decisionID, afterPost: afterPost, userID: request.userID, adID: candidate.adID, campaignID: candidate.campaignID,
                objective: candidate.objective, priceMicros: price, issuedAt: request.now)
            placements.append(Placement(
                afterPost: afterPost, candidate: candidate, prediction: pick.prediction, expectedValueMicros: pick.value,
                propensity: pick.propensity, priceMicros: price, impressionToken: signer.sign(token)))
        }
        return placements
    }
}
