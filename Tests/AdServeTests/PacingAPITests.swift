import API
import Domain
import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

@Suite struct PacingAPITests {
    @Test func pacingModeIsSetReadAndChangedAndBadValuesNameTheField() async throws {
        try await APITests().withAPI { api, _ in
            let (advertiser, key) = try await api.advertiser()
            let standard = try await api.campaign(advertiser, key: key)
            #expect(try await api.call(.get, "/v1/campaigns/\(standard)", key: key)["pacing"] as? String == "standard")
            let accelerated = try await api.campaign(advertiser, key: key, extra: #","pacing":"accelerated""#)
            #expect(try await api.call(.get, "/v1/campaigns/\(accelerated)", key: key)["pacing"] as? String == "accelerated")
            let patched = try await api.call(.patch, "/v1/campaigns/\(accelerated)", key: key, json: #"{"pacing":"standard"}"#)
            #expect(patched.status == 200 && patched["pacing"] as? String == "standard")
            let bad = try await api.call(.patch, "/v1/campaigns/\(accelerated)", key: key, json: #"{"pacing":"asap"}"#)
            #expect(bad.status == 400 && bad.errorField == "pacing")
        }
    }

    /// The pacing report: 24 hours, spend summed to each elapsed hour, none for hours to come;
    /// another advertiser's campaign is not found; a malformed day names the field.
    @Test func pacingReportGivesTargetAndSpendByHour() async throws {
        try await APITests().withAPI { api, world in
            let (advertiser, key) = try await api.advertiser()
            let campaign = try await api.campaign(advertiser, key: key)
            _ = try await api.ad(campaign, key: key)
            let decision = try await api.decideUntilServed("alice")
            let token = try #require((decision["ads"] as? [[String: Any]])?.first?["impression_token"] as? String)
            world.clock.advance(milliseconds: 5_000)
            #expect(try await api.call(.post, "/v1/events", key: APITests.feed, json: #"{"type":"click","impression_token":"\#(token)"}"#).status == 200)
            let report = try await api.call(.get, "/v1/reports/campaigns/\(campaign)/pacing", key: key)
            #expect(report.status == 200, "\(report.text)")
            let hours = try #require(report["hours"] as? [[String: Any]])
            #expect(hours.count == 24)
            // The world's clock is at noon: the campaign was created then, and clicked at once.
            #expect(hours[11]["target_micros"] as? Int == 0)
            #expect(hours[12]["spend_micros"] as? Int == 500_000)
            #expect(hours[13]["spend_micros"] == nil)
            #expect(report["daily_budget_micros"] as? Int == 50_000_000)
            #expect(report["day"] as? String == Timestamp.isoDate(day: world.clock.now().day))
            let yesterday = Timestamp.isoDate(day: world.clock.now().day - 1)
            let earlier = try await api.call(.get, "/v1/reports/campaigns/\(campaign)/pacing?day=\(yesterday)", key: key)
            #expect((earlier["hours"] as? [[String: Any]])?.allSatisfy { ($0["spend_micros"] as? Int) == 0 && ($0["target_micros"] as? Int) == 0 } == true)
            #expect(try await api.call(.get, "/v1/reports/campaigns/\(campaign)/pacing?day=tomorrow", key: key).errorField == "day")
            let (_, otherKey) = try await api.advertiser("Other")
            #expect(try await api.call(.get, "/v1/reports/campaigns/\(campaign)/pacing", key: otherKey).status == 404)
        }
    }
}
