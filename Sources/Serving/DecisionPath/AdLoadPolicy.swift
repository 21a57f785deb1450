/// Where ads may go in a page of organic posts: none before post `firstAfterPost`, at least
/// `minOrganicBetween` organic posts between two ads, at most `maxAdsPerPage`. (One ad per
/// advertiser per page is enforced by the selection.)
public struct AdLoadPolicy: Sendable, Equatable {
    public var firstAfterPost: Int
    public var minOrganicBetween: Int
    public var maxAdsPerPage: Int

    public init(firstAfterPost: Int = 3, minOrganicBetween: Int = 4, maxAdsPerPage: Int = 10) {
        self.firstAfterPost = max(1, firstAfterPost)
        self.minOrganicBetween = max(1, minOrganicBetween)
        self.maxAdsPerPage = max(0, maxAdsPerPage)
    }

    /// The `after_post` positions (1-based) open to ads in a page of `organicCount` posts.
    public func positions(organicCount: Int) -> [Int] {
        var positions: [Int] = []
        var position = firstAfterPost
        while position <= organicCount && positions.count < maxAdsPerPage {
            positions.append(position)
            position += minOrganicBetween
        }
        return positions
    }
}
