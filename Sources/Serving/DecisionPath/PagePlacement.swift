import Domain

/// Stage 4 of a decision: the winners, best first, go into the page's ad positions in order,
/// each with its price (`Auction`, in the bid's units), and stage 5 signs a token for each.
enum PagePlacement {
    static func place(_ picks: [Pick], prices: [Micros], positions: [Int], request: DecisionRequest, signer: TokenSigner) -> [Placement] {
        var placements: [Placement] = []
        placements.reserveCapacity(picks.count)
        for ((pick, bidPrice), afterPost) in zip(zip(picks, prices), positions) {
            let candidate = pick.candidate
            let price = candidate.objective.pricePerBilledEvent(bid: bidPrice)
            let token = ImpressionToken(
                decisionID: request.decisionID, afterPost: afterPost, userID: request.userID, adID: candidate.adID, campaignID: candidate.campaignID,
                objective: candidate.objective, priceMicros: price, issuedAt: request.now)
            placements.append(Placement(
                afterPost: afterPost, candidate: candidate, prediction: pick.prediction, expectedValueMicros: pick.value,
                propensity: pick.propensity, explored: pick.explored, priceMicros: price, impressionToken: signer.sign(token)))
        }
        return placements
    }
}
