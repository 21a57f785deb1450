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
            // Malformed, and impossible days once read as the next month's (2026-02-30 as 2026-03-02).
            for day in ["tomorrow", "2026-02-30", "1900-02-29", "0000-01-01", "-001-01-01"] {
                let reply = try await api.call(.get, "/v1/reports/campaigns/\(campaign)/pacing?day=\(day)", key: key)
                #expect(reply.status == 400 && reply.errorField == "day", "\(day): \(reply.text)")
            }
            // A path id is digits alone: "+1" once named campaign 1.
            let signed = try await api.call(.get, "/v1/reports/campaigns/+\(campaign)/pacing", key: key)
            #expect(signed.status == 400 && signed.errorField == "id", "\(signed.text)")
            // A blank name and a five-digit year, once stored (the year as 2026), name their fields.
            let blank = try await api.call(.post, "/v1/campaigns", key: key, json: """
                {"advertiser_id":\(advertiser),"name":"   ","objective":"traffic","bid_micros":500000,
                 "daily_budget_micros":50000000,"total_budget_micros":100000000}
                """)
            #expect(blank.status == 400 && blank.errorField == "name", "\(blank.text)")
            let renamed = try await api.call(.patch, "/v1/campaigns/\(campaign)", key: key, json: #"{"name":"  "}"#)
            #expect(renamed.status == 400 && renamed.errorField == "name", "\(renamed.text)")
            let year = try await api.call(.patch, "/v1/campaigns/\(campaign)", key: key, json: #"{"start_at":"12026-11-29T10:00:00Z"}"#)
            #expect(year.status == 400 && year.errorField == "start_at", "\(year.text)")
            let (_, otherKey) = try await api.advertiser("Other")
            #expect(try await api.call(.get, "/v1/reports/campaigns/\(campaign)/pacing", key: otherKey).status == 404)
        }
    }
}
