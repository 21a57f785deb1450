import Domain

/// How much one group of inputs raised (or lowered) a prediction: P(click) with every input
/// minus P(click) with that group left out (leave-one-group-out, computed by the ranker itself).
public struct Contribution: Sendable, Equatable {
    public var inputs: String
    public var clickDelta: Double
}

extension Ranker {
    /// The groups of inputs that moved this ranker's P(click) for one candidate, largest first:
    /// the user's profile, their recent activity, the context, the ad's content, its click
    /// history and how often the user saw the campaign. A rule-based ranker moves only with
    /// the history; a learned one with whatever it learned to read.
    public func contributions(_ candidate: Candidate, user: UserProfile?, context: FeedContext) -> [Contribution] {
        let base = predict(candidate, user: user, context: context).click
        var variants: [(String, Candidate, UserProfile?, FeedContext)] = []
        if let user {
            var profile = user
            (profile.age, profile.gender, profile.country, profile.language, profile.interests) = (nil, nil, nil, nil, [])
            variants.append(("your profile (age, gender, country, language, interests)", candidate, profile, context))
            var activity = user
            (activity.activityVector, activity.activityVectorAt, activity.recentTopics) = (nil, nil, [:])
            variants.append(("your recent activity (what you viewed, liked and clicked)", candidate, activity, context))
        }
        variants.append(("the context (device, hour, place in the feed)", candidate, user, FeedContext(at: context.at)))
        var content = candidate
        content.ad.caption = ""
        content.ad.description = ""
        content.ad.embedding = nil
        content.ad.imageEmbedding = nil
        variants.append(("the ad's content (caption, description, picture)", content, user, context))
        var history = candidate
        (history.impressions, history.clicks, history.conversions) = (0, 0, 0)
        variants.append(("the ad's click history", history, user, context))
        var seen = candidate
        seen.userCampaignImpressions = 0
        variants.append(("how often you saw this campaign", seen, user, context))
        return variants
            .map { name, c, u, x in Contribution(inputs: name, clickDelta: base - predict(c, user: u, context: x).click) }
            .sorted { abs($0.clickDelta) > abs($1.clickDelta) }
    }
}

/// The user-facing answer to "why am I seeing this ad?", from the decision's trace.
public enum WhyThisAd {
    public static func text(trace: DecisionTrace, placed: DecisionTrace.Placed, campaign: Campaign?, contributions: [Contribution]) -> String {
        let ad = placed.candidate.ad
        let company = ad.company.isEmpty ? "the advertiser" : ad.company
        var reasons: [String] = []
        if placed.explored {
            reasons.append("it is new, and new ads are shown to a few people to learn who finds them useful")
        }
        guard trace.personalized else {
            reasons.append(
                "you turned off personalized ads, so it was chosen only from general information — your country, language and age — and the page you are on, not from your activity or interests")
            return sentence(company: company, reasons: reasons)
        }
        let profile = trace.profile
        if let targeting = campaign?.targeting {
            let shared = targeting.interests.filter { (profile?.interests ?? []).contains($0) }
            if !shared.isEmpty { reasons.append("\(company) wants to reach people interested in \(shared.joined(separator: ", "))") }
            if let country = profile?.country, targeting.countries.contains(country) { reasons.append("it is shown to people in \(country.uppercased())") }
            if targeting.ageMin != nil || targeting.ageMax != nil {
                reasons.append("it is for people aged \(targeting.ageMin.map(String.init) ?? "any")–\(targeting.ageMax.map(String.init) ?? "any")")
            }
        }
        let names = ActivityVector.names(of: ad)
        if let recent = profile?.recentTopics, let name = names.first(where: { (recent[$0] ?? 0) > 0 }) {
            reasons.append("you recently looked at \(name)")
        } else if let top = contributions.first, top.clickDelta > 0, top.inputs.hasPrefix("your") {
            reasons.append("it looks like what you have been engaging with lately")
        }
        if reasons.isEmpty { reasons.append("it matched the page you are on and who the ad is for") }
        return sentence(company: company, reasons: reasons)
    }

    private static func sentence(company: String, reasons: [String]) -> String {
        "You're seeing this ad because " + reasons.joined(separator: "; ")
            + ". \(company) paid to show it. You can hide this ad, hide all ads from \(company), or tell us it's not relevant."
    }
}
