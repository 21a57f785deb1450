import API
import Domain
import Foundation
import Hummingbird
import HummingbirdTesting
import Serving
import Services
import TestSupport
import Testing

/// The HTTP contract, through Hummingbird's router test client: routes, JSON field names,
/// auth scoping and error bodies.
@Suite struct APITests {
    static let admin = "test-admin-key-0123456789"
    static let feed = "test-feed-key-0123456789"
    static let metrics = "test-metrics-key-0123456789"

    struct Reply {
        var status: Int
        var json: [String: Any]
        var text: String

        subscript(_ key: String) -> Any? { json[key] }
        var error: [String: Any]? { json["error"] as? [String: Any] }
        var errorField: String? { error?["field"] as? String }
    }

    struct Client {
        let client: any TestClientProtocol

        func call(_ method: HTTPRequest.Method, _ path: String, key: String? = APITests.admin, json body: String? = nil) async throws -> Reply {
            var headers = HTTPFields()
            if let key { headers[.authorization] = "Bearer \(key)" }
            headers[.contentType] = "application/json"
            return try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) { response in
                let text = String(buffer: response.body)
                let json = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
                return Reply(status: Int(response.status.code), json: json, text: text)
            }
        }

        /// Creates an advertiser and returns (id, key).
        func advertiser(_ name: String = "Acme") async throws -> (Int, String) {
            let reply = try await call(.post, "/v1/advertisers", json: #"{"name":"\#(name)"}"#)
            #expect(reply.status == 201)
            return (try #require(reply["id"] as? Int), try #require(reply["api_key"] as? String))
        }

        func campaign(_ advertiser: Int, key: String = APITests.admin, objective: String = "traffic", extra: String = "") async throws -> Int {
            let reply = try await call(.post, "/v1/campaigns", key: key, json: """
                {"advertiser_id":\(advertiser),"name":"Spring","objective":"\(objective)","bid_micros":500000,
                 "daily_budget_micros":50000000,"total_budget_micros":100000000\(extra)}
                """)
            #expect(reply.status == 201, "\(reply.text)")
            return try #require(reply["id"] as? Int)
        }

        func ad(_ campaign: Int, key: String = APITests.admin) async throws -> Int {
            let reply = try await call(.post, "/v1/ads", key: key, json: """
                {"campaign_id":\(campaign),"format":"video","media_urls":["https://cdn.example/v.mp4"],"caption":"Run faster",
                 "company":"Acme","product":"Shoe","description":"A fast shoe","embedding":[0.1,0.2,0.3\(String(repeating: ",0", count: 381))]}
                """)
            #expect(reply.status == 201, "\(reply.text)")
            return try #require(reply["id"] as? Int)
        }

        /// Asks for decisions until one is non-empty: catalog changes publish within 100 ms, but on
        /// a loaded 2-core machine (the simulator tests run in parallel) a refresh can be seconds
        /// late, so the wait is generous; it ends as soon as ads come.
        func decideUntilServed(_ user: String, within seconds: Double = 10.0) async throws -> Reply {
            let deadline = ContinuousClock.now + .milliseconds(Int(seconds * 1000))
            while true {
                let reply = try await call(.post, "/v1/decisions", key: APITests.feed, json: #"{"user_id":"\#(user)","organic_count":10}"#)
                if !((reply["ads"] as? [Any]) ?? []).isEmpty || ContinuousClock.now > deadline { return reply }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
    }

    func withAPI(
        clock: ManualClock = ManualClock(TestWorld.start), serving: ServingConfiguration = .payingBids, metricsKey: String? = nil,
        configure: (inout APIConfiguration) -> Void = { _ in }, _ test: @escaping @Sendable (Client, TestWorld) async throws -> Void
    ) async throws {
        let world = try await TestWorld.make(clock: clock, configuration: serving)
        var configuration = APIConfiguration(adminKey: Self.admin, feedKey: Self.feed, metricsKey: metricsKey)
        configure(&configuration)
        try configuration.validate()
        let api = AdServeAPI(serving: world.serving, telemetry: Telemetry(), configuration: configuration)
        let app = Application(router: api.router(), services: [ServingRefresherService(serving: world.serving)])
        try await app.test(.router) { client in try await test(Client(client: client), world) }
    }

    @Test func createDecideReportWalkthrough() async throws {
        try await withAPI { api, world in
            let (advertiserID, key) = try await api.advertiser()
            let campaignID = try await api.campaign(advertiserID, key: key, extra: #","targeting":{"countries":["US"],"age_min":18},"frequency_cap":{"impressions":3,"per_hours":24}"#)
            let adID = try await api.ad(campaignID, key: key)

            let user = try await api.call(.put, "/v1/users/alice", key: Self.feed, json: #"{"age":30,"gender":"female","country":"us","language":"en","interests":["running"]}"#)
            #expect(user.status == 200)
            let activity = try await api.call(.post, "/v1/users/alice/activity", key: Self.feed, json: #"{"type":"like","topics":["running"]}"#)
            #expect(activity.status == 202)

            let decision = try await api.decideUntilServed("alice")
            #expect(decision.status == 200)
            #expect(decision["decision_id"] is String)
            let slot = try #require((decision["ads"] as? [[String: Any]])?.first)
            #expect(slot["after_post"] as? Int == 3)
            #expect(slot["ad_id"] as? Int == adID)
            #expect(slot["campaign_id"] as? Int == campaignID)
            #expect(slot["advertiser_id"] as? Int == advertiserID)
            #expect(slot["format"] as? String == "video")
            #expect(slot["caption"] as? String == "Run faster")
            #expect(slot["media_urls"] as? [String] == ["https://cdn.example/v.mp4"])
            let token = try #require(slot["impression_token"] as? String)

            // Someone else in another country: not targeted.
            let bob = try await api.call(.post, "/v1/decisions", key: Self.feed, json: #"{"user_id":"bob","context":{"device":"ios","hour":9,"session_position":4},"organic_count":10}"#)
            #expect((bob["ads"] as? [Any])?.isEmpty == true)

            world.clock.advance(milliseconds: 3_000)  // alice sees the ad, then taps it
            for (type, duplicate) in [("impression", false), ("click", false), ("click", true)] {
                let event = try await api.call(.post, "/v1/events", key: Self.feed, json: #"{"type":"\#(type)","impression_token":"\#(token)"}"#)
                #expect(event.status == 200)
                #expect(event["accepted"] as? Bool == true)
                #expect(event["duplicate"] as? Bool == duplicate)
            }

            let report = try await api.call(.get, "/v1/reports/campaigns/\(campaignID)", key: key)
            #expect(report.status == 200)
            #expect(report["campaign_id"] as? Int == campaignID)
            #expect(report["impressions"] as? Int == 1)
            #expect(report["clicks"] as? Int == 1)
            #expect(report["conversions"] as? Int == 0)
            #expect(report["spend_micros"] as? Int == 500_000)
            #expect(report["ctr"] as? Double == 1.0)
            // What was paid per click and per 1,000 impressions; no conversion, no CPA.
            #expect(report["cpc_micros"] as? Int == 500_000)
            #expect(report["ecpm_micros"] as? Int == 500_000_000)
            #expect(report["cpa_micros"] == nil)
            let day = try #require((report["by_day"] as? [[String: Any]])?.first)
            #expect(day["day"] as? String == "2026-06-01")
            #expect(day["spend_micros"] as? Int == 500_000)
            let adReport = try await api.call(.get, "/v1/reports/ads/\(adID)", key: key)
            #expect(adReport["ad_id"] as? Int == adID)
            #expect(adReport["clicks"] as? Int == 1)

            let campaign = try await api.call(.get, "/v1/campaigns/\(campaignID)", key: key)
            #expect(campaign["billing"] as? String == "cpc")
            #expect(campaign["spent_today_micros"] as? Int == 500_000)
            #expect((campaign["targeting"] as? [String: Any])?["countries"] as? [String] == ["us"])
            #expect((campaign["frequency_cap"] as? [String: Any])?["per_hours"] as? Int == 24)
            let list = try await api.call(.get, "/v1/advertisers/\(advertiserID)/campaigns", key: key)
            #expect((list["campaigns"] as? [[String: Any]])?.map { $0["id"] as? Int } == [campaignID])
            let ad = try await api.call(.get, "/v1/ads/\(adID)", key: key)
            #expect((ad["embedding"] as? [Double])?.prefix(3) == [0.1, 0.2, 0.3])
            #expect((ad["embedding"] as? [Double])?.count == 384 && ad["embedding_status"] as? String == "ready")
        }
    }

    /// A change is in the catalog when the API answers; the next refresh (every 100 ms in the
    /// server) publishes it, so the test publishes it directly instead of waiting.
    @Test func pausingThroughTheAPIStopsServingAtTheNextRefresh() async throws {
        try await withAPI { api, world in
            let (advertiserID, key) = try await api.advertiser()
            let campaignID = try await api.campaign(advertiserID, key: key)
            let adID = try await api.ad(campaignID, key: key)
            #expect(((try await api.decideUntilServed("u1"))["ads"] as? [Any])?.count == 1)

            let paused = try await api.call(.patch, "/v1/ads/\(adID)", key: key, json: #"{"status":"paused"}"#)
            #expect(paused["status"] as? String == "paused")
            world.serving.refresh()
            let none = try await api.call(.post, "/v1/decisions", key: Self.feed, json: #"{"user_id":"u1","organic_count":10}"#)
            #expect((none["ads"] as? [Any])?.isEmpty == true)

            _ = try await api.call(.patch, "/v1/ads/\(adID)", key: key, json: #"{"status":"active"}"#)
            #expect(((try await api.decideUntilServed("u1"))["ads"] as? [Any])?.count == 1)
            let patched = try await api.call(.patch, "/v1/campaigns/\(campaignID)", key: key, json: #"{"status":"paused","bid_micros":900000,"targeting":{"countries":["fr"]}}"#)
            #expect(patched.status == 200)
            #expect(patched["bid_micros"] as? Int == 900_000)
            world.serving.refresh()
            let stopped = try await api.call(.post, "/v1/decisions", key: Self.feed, json: #"{"user_id":"u1","organic_count":10}"#)
            #expect((stopped["ads"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func keysReachOnlyWhatTheyOwn() async throws {
        try await withAPI { api, _ in
            let (acme, acmeKey) = try await api.advertiser("Acme")
            let (beta, betaKey) = try await api.advertiser("Beta")
            let acmeCampaign = try await api.campaign(acme, key: acmeKey)
            let acmeAd = try await api.ad(acmeCampaign, key: acmeKey)
            _ = try await api.campaign(beta, key: betaKey)

            #expect(try await api.call(.get, "/v1/campaigns/\(acmeCampaign)", key: nil).status == 401)
            #expect(try await api.call(.get, "/v1/campaigns/\(acmeCampaign)", key: "wrong").status == 401)
            // Another advertiser's objects answer exactly as objects that do not exist.
            func sameAsMissing(_ method: HTTPRequest.Method, _ path: String, _ missing: String, json: String? = nil) async throws {
                let foreign = try await api.call(method, path, key: betaKey, json: json)
                let absent = try await api.call(method, missing, key: betaKey, json: json)
                #expect(foreign.status == 404 && absent.status == 404, "\(path): \(foreign.text)")
                #expect(foreign.errorField == absent.errorField)
                let strip = { (text: String?) in text?.filter { !$0.isNumber } }
                #expect(strip(foreign.error?["message"] as? String) == strip(absent.error?["message"] as? String), "\(foreign.text) vs \(absent.text)")
            }
            try await sameAsMissing(.get, "/v1/campaigns/\(acmeCampaign)", "/v1/campaigns/999")
            try await sameAsMissing(.patch, "/v1/campaigns/\(acmeCampaign)", "/v1/campaigns/999", json: #"{"status":"paused"}"#)
            try await sameAsMissing(.get, "/v1/ads/\(acmeAd)", "/v1/ads/999")
            try await sameAsMissing(.get, "/v1/reports/campaigns/\(acmeCampaign)", "/v1/reports/campaigns/999")
            try await sameAsMissing(.get, "/v1/reports/ads/\(acmeAd)", "/v1/reports/ads/999")
            try await sameAsMissing(.get, "/v1/advertisers/\(acme)/campaigns", "/v1/advertisers/999/campaigns")
            let foreign = #"{"advertiser_id":\#(acme),"name":"x","objective":"traffic","bid_micros":1,"daily_budget_micros":1,"total_budget_micros":1}"#
            let nobody = #"{"advertiser_id":999,"name":"x","objective":"traffic","bid_micros":1,"daily_budget_micros":1,"total_budget_micros":1}"#
            #expect(try await api.call(.post, "/v1/campaigns", key: betaKey, json: foreign).status == 404)
            #expect(try await api.call(.post, "/v1/campaigns", key: betaKey, json: nobody).errorField == "advertiser_id")
            let foreignAd = #"{"campaign_id":\#(acmeCampaign),"format":"image","media_urls":["https://cdn.example/u.jpg"],"caption":"","company":"B","product":"","description":""}"#
            let foreignReply = try await api.call(.post, "/v1/ads", key: betaKey, json: foreignAd)
            #expect(foreignReply.status == 404 && foreignReply.errorField == "campaign_id")
            // Advertisers cannot act as the feed, and the feed cannot manage the catalog.
            #expect(try await api.call(.post, "/v1/decisions", key: acmeKey, json: #"{"user_id":"u","organic_count":5}"#).status == 403)
            #expect(try await api.call(.put, "/v1/users/u", key: acmeKey, json: #"{"age":20}"#).status == 403)
            #expect(try await api.call(.post, "/v1/advertisers", key: Self.feed, json: #"{"name":"x"}"#).status == 403)
            #expect(try await api.call(.post, "/v1/advertisers", key: acmeKey, json: #"{"name":"x"}"#).status == 403)
            // The owner and the admin get through.
            #expect(try await api.call(.get, "/v1/campaigns/\(acmeCampaign)", key: acmeKey).status == 200)
            #expect(try await api.call(.get, "/v1/campaigns/\(acmeCampaign)", key: Self.admin).status == 200)
            #expect(try await api.call(.post, "/v1/decisions", key: Self.admin, json: #"{"user_id":"u","organic_count":5}"#).status == 200)
        }
    }

    /// method, path, body, expected status, expected field named in the error (nil: none).
    static let badInputs: [(HTTPRequest.Method, String, String, Int, String?)] = [
        (.post, "/v1/advertisers", #"{"name":"#, 400, nil),
        (.post, "/v1/advertisers", #"{"name":""}"#, 400, "name"),
        (.post, "/v1/advertisers", #"{"nom":"x"}"#, 400, "name"),
        (.post, "/v1/advertisers", #"[1,2]"#, 400, nil),
        (.post, "/v1/advertisers", "", 400, nil),
        (.post, "/v1/campaigns", #"{"advertiser_id":1,"name":"c","objective":"traffic","bid_micros":-1,"daily_budget_micros":1,"total_budget_micros":1}"#, 400, "bid_micros"),
        (.post, "/v1/campaigns", #"{"advertiser_id":1,"name":"c","objective":"traffic","bid_micros":1,"daily_budget_micros":1e30,"total_budget_micros":1}"#, 400, "daily_budget_micros"),
        (.post, "/v1/campaigns", #"{"advertiser_id":1,"name":"c","objective":"traffic","bid_micros":1,"daily_budget_micros":1,"total_budget_micros":2000000000000000000}"#, 400, "total_budget_micros"),
        (.post, "/v1/campaigns", #"{"advertiser_id":1,"name":"c","objective":"traffic","bid_micros":1.5,"daily_budget_micros":1,"total_budget_micros":1}"#, 400, "bid_micros"),
        (.post, "/v1/campaigns", #"{"advertiser_id":1,"name":"c","objective":"awareness","bid_micros":1500,"daily_budget_micros":1,"total_budget_micros":1}"#, 400, "bid_micros"),
        (.post, "/v1/campaigns", #"{"advertiser_id":1,"name":"c","objective":"fame","bid_micros":1,"daily_budget_micros":1,"total_budget_micros":1}"#, 400, "objective"),
        (.post, "/v1/campaigns", #"{"advertiser_id":1,"name":"c","objective":"traffic","bid_micros":"1","daily_budget_micros":1,"total_budget_micros":1}"#, 400, "bid_micros"),
        (.post, "/v1/campaigns", #"{"advertiser_id":1,"name":"c","objective":"traffic","daily_budget_micros":1,"total_budget_micros":1}"#, 400, "bid_micros"),
        (.post, "/v1/campaigns", #"{"advertiser_id":1,"name":"c","objective":"traffic","bid_micros":1,"daily_budget_micros":1,"total_budget_micros":1,"targeting":{"age_min":50,"age_max":20}}"#, 400, "targeting.age_min"),
        (.post, "/v1/campaigns", #"{"advertiser_id":1,"name":"c","objective":"traffic","bid_micros":1,"daily_budget_micros":1,"total_budget_micros":1,"targeting":{"age_min":99999999999}}"#, 400, "targeting.age_min"),
        (.post, "/v1/campaigns", #"{"advertiser_id":1,"name":"c","objective":"traffic","bid_micros":1,"daily_budget_micros":1,"total_budget_micros":1,"targeting":{"countries":"us"}}"#, 400, "targeting.countries"),
        (.post, "/v1/campaigns", #"{"advertiser_id":1,"name":"c","objective":"traffic","bid_micros":1,"daily_budget_micros":1,"total_budget_micros":1,"start_at":"yesterday"}"#, 400, "start_at"),
        (.post, "/v1/campaigns", #"{"advertiser_id":1,"name":"c","objective":"traffic","bid_micros":1,"daily_budget_micros":1,"total_budget_micros":1,"start_at":"2026-06-02T00:00:00Z","end_at":"2026-06-01T00:00:00Z"}"#, 400, "end_at"),
        (.post, "/v1/campaigns", #"{"advertiser_id":1,"name":"c","objective":"traffic","bid_micros":1,"daily_budget_micros":1,"total_budget_micros":1,"frequency_cap":{"impressions":0,"per_hours":1}}"#, 400, "frequency_cap.impressions"),
        (.post, "/v1/campaigns", #"{"advertiser_id":999,"name":"c","objective":"traffic","bid_micros":1,"daily_budget_micros":1,"total_budget_micros":1}"#, 404, "advertiser_id"),
        (.post, "/v1/ads", #"{"campaign_id":1,"format":"gif","media_urls":["https://cdn.example/u.jpg"],"caption":"","company":"A","product":"","description":""}"#, 400, "format"),
        (.post, "/v1/ads", #"{"campaign_id":1,"format":"image","media_urls":[],"caption":"","company":"A","product":"","description":""}"#, 400, "media_urls"),
        (.post, "/v1/ads", #"{"campaign_id":1,"format":"image","media_urls":["https://cdn.example/u.jpg"],"caption":"","company":"A","product":"","description":"","embedding":[1,"x"]}"#, 400, "embedding[1]"),
        (.post, "/v1/ads", #"{"campaign_id":1,"format":"image","media_urls":["https://cdn.example/u.jpg"],"caption":"","company":"A","product":"","description":"","embedding":[1e60]}"#, 400, "embedding[0]"),
        (.post, "/v1/ads", #"{"campaign_id":1,"format":"image","media_urls":["https://cdn.example/u.jpg"],"caption":"","company":"A","product":"","description":"","embedding":[0.5,0.25]}"#, 400, "embedding"),
        (.post, "/v1/ads", #"{"campaign_id":424242,"format":"image","media_urls":["https://cdn.example/u.jpg"],"caption":"","company":"A","product":"","description":""}"#, 404, "campaign_id"),
        (.post, "/v1/ads", #"{"campaign_id":1,"format":"image","media_urls":["javascript:alert(1)"],"caption":"","company":"A","product":"","description":""}"#, 400, "media_urls[0]"),
        (.post, "/v1/ads", #"{"campaign_id":1,"format":"image","media_urls":["https://a/x.jpg","ftp://b/y.jpg"],"caption":"","company":"A","product":"","description":""}"#, 400, "media_urls[1]"),
        (.post, "/v1/ads", #"{"campaign_id":1,"format":"image","media_urls":["https://cdn.example/u.jpg"],"caption":"buy\u0000now","company":"A","product":"","description":""}"#, 400, "caption"),
        (.post, "/v1/ads", #"{"campaign_id":1,"format":"image","media_urls":["https://cdn.example/u.jpg"],"caption":"","company":"A\u001b[31m","product":"","description":""}"#, 400, "company"),
        (.post, "/v1/ads", #"{"campaign_id":1,"format":"image","media_urls":["https://cdn.example/u.jpg"],"caption":"","company":"A","product":"","description":"x\u202Ey"}"#, 400, "description"),
        (.post, "/v1/campaigns", #"{"advertiser_id":1,"name":"c\u0000d","objective":"traffic","bid_micros":1,"daily_budget_micros":1,"total_budget_micros":1}"#, 400, "name"),
        (.put, "/v1/users/bad%20id", #"{"age":20}"#, 400, "user_id"),
        (.put, "/v1/users/u1", #"{"age":-3}"#, 400, "age"),
        (.put, "/v1/users/u1", #"{"age":"old"}"#, 400, "age"),
        (.post, "/v1/users/u1/activity", #"{"type":"dance"}"#, 400, "type"),
        (.post, "/v1/users/u1/activity", #"{"type":"view","seconds":-1}"#, 400, "seconds"),
        (.post, "/v1/decisions", #"{"user_id":"u1","organic_count":-1}"#, 400, "organic_count"),
        (.post, "/v1/decisions", #"{"user_id":"u1"}"#, 400, "organic_count"),
        (.post, "/v1/decisions", #"{"user_id":"","organic_count":5}"#, 400, "user_id"),
        (.post, "/v1/decisions", #"{"user_id":"u1","organic_count":5,"context":{"hour":25}}"#, 400, "context.hour"),
        (.post, "/v1/events", #"{"type":"purchase","impression_token":"x"}"#, 400, "type"),
        (.post, "/v1/events", #"{"type":"click","impression_token":"forged.token"}"#, 400, "impression_token"),
        (.post, "/v1/events", #"{"type":"click"}"#, 400, "impression_token"),
        (.get, "/v1/campaigns/12345", "", 404, nil),
        (.get, "/v1/campaigns/abc", "", 400, "id"),
        (.get, "/v1/ads/777", "", 404, nil),
        (.get, "/v1/reports/campaigns/999", "", 404, nil),
        (.patch, "/v1/campaigns/1", #"{"daily_budget_micros":0}"#, 400, "daily_budget_micros"),
        (.patch, "/v1/campaigns/1", #"{"status":"deleted"}"#, 400, "status"),
    ]

    /// The user's side through the API: several caps on a campaign, "hide advertiser" and "not
    /// relevant" as event types, and the opt-out of personalization on the profile.
    @Test func capsFeedbackAndOptOutThroughTheAPI() async throws {
        try await withAPI { api, _ in
            let (advertiserID, key) = try await api.advertiser()
            let caps = #","frequency_caps":[{"impressions":2,"per_hours":24,"per":"ad"},{"impressions":5}]"#
            let campaignID = try await api.campaign(advertiserID, key: key, extra: caps)
            let campaign = try await api.call(.get, "/v1/campaigns/\(campaignID)", key: key)
            let listed = try #require(campaign["frequency_caps"] as? [[String: Any]])
            #expect(listed.count == 2)
            #expect(listed[0]["per"] as? String == "ad" && listed[0]["per_hours"] as? Int == 24)
            #expect(listed[1]["per"] as? String == "campaign" && listed[1]["per_hours"] == nil && listed[1]["impressions"] as? Int == 5)
            #expect(campaign["frequency_cap"] == nil)
            let both = try await api.call(.patch, "/v1/campaigns/\(campaignID)", key: key, json: #"{"frequency_cap":{"impressions":1,"per_hours":1},"frequency_caps":[]}"#)
            #expect(both.status == 400 && both.errorField == "frequency_caps")
            let badHours = try await api.call(.patch, "/v1/campaigns/\(campaignID)", key: key, json: #"{"frequency_caps":[{"impressions":1},{"impressions":1,"per_hours":0}]}"#)
            #expect(badHours.status == 400 && badHours.errorField == "frequency_caps[1].per_hours", "\(badHours.text)")

            let optOut = try await api.call(.put, "/v1/users/bob", key: Self.feed, json: #"{"country":"us","interests":["running"],"personalization":false}"#)
            #expect(optOut.status == 200 && optOut["personalization"] as? Bool == false)
            #expect(try await api.call(.get, "/v1/users/bob", key: Self.feed)["personalization"] as? Bool == false)
            #expect(try await api.call(.put, "/v1/users/carol", key: Self.feed, json: #"{"country":"us"}"#)["personalization"] as? Bool == true)
            // Updating the profile without the field keeps the user's opt-out.
            #expect(try await api.call(.put, "/v1/users/bob", key: Self.feed, json: #"{"country":"us","interests":["running"]}"#)["personalization"] as? Bool == false)
            let lifetimeSingle = try await api.call(.patch, "/v1/campaigns/\(campaignID)", key: key, json: #"{"frequency_cap":{"impressions":1}}"#)
            #expect(lifetimeSingle.status == 400 && lifetimeSingle.errorField == "frequency_cap")

            _ = try await api.ad(campaignID, key: key)
            let decision = try await api.decideUntilServed("bob")
            let ads = try #require(decision["ads"] as? [[String: Any]])
            #expect(ads.first?["explored"] as? Bool == false)
            let token = try #require(ads.first?["impression_token"] as? String)
            for type in ["hide_advertiser", "not_relevant"] {
                let event = try await api.call(.post, "/v1/events", key: Self.feed, json: #"{"type":"\#(type)","impression_token":"\#(token)"}"#)
                #expect(event.status == 200 || event.status == 201, "\(event.text)")
            }
            let again = try await api.call(.post, "/v1/decisions", key: Self.feed, json: #"{"user_id":"bob","organic_count":10}"#)
            #expect((again["ads"] as? [Any])?.isEmpty == true)
        }
    }

    /// The explanation routes on a real decision: operators get the trace, the feed gets the
    /// user's sentence, the advertiser its loss reasons; each refuses what it should.
    @Test func explanationsOfARealDecision() async throws {
        var serving = ServingConfiguration.payingBids
        serving.lossSampleRate = 1
        try await withAPI(serving: serving) { api, _ in
            let (advertiserID, key) = try await api.advertiser()
            let knitting = try await api.campaign(advertiserID, key: key, extra: #","targeting":{"interests":["knitting"]}"#)
            _ = try await api.ad(knitting, key: key)
            let campaignID = try await api.campaign(advertiserID, key: key, extra: #","targeting":{"interests":["running"]}"#)
            let adID = try await api.ad(campaignID, key: key)
            _ = try await api.call(.put, "/v1/users/alice", key: Self.feed, json: #"{"country":"us","interests":["running"]}"#)
            let decision = try await api.decideUntilServed("alice")
            let decisionID = try #require(decision["decision_id"] as? String)

            let explain = try await api.call(.get, "/v1/decisions/\(decisionID)/explain")
            #expect(explain.status == 200, "\(explain.text)")
            let placements = try #require(explain["placements"] as? [[String: Any]])
            #expect((placements.first?["ad"] as? [String: Any])?["ad_id"] as? Int == adID)
            #expect((placements.first?["auction"] as? String)?.isEmpty == false)
            #expect((placements.first?["contributions"] as? [Any])?.isEmpty == false)
            #expect((explain["candidates"] as? [[String: Any]])?.first?["outcome"] as? String == "placed")
            // The knitting campaign is among the best ads for anyone, and kept out by targeting.
            let losers = try #require(explain["notable_losers"] as? [[String: Any]], "\(explain.text)")
            #expect(losers.contains { $0["campaign_id"] as? Int == knitting && $0["reason"] as? String == "targeting" }, "\(explain.text)")
            #expect(try await api.call(.get, "/v1/decisions/\(decisionID)/explain", key: Self.feed).status == 403)
            #expect(try await api.call(.get, "/v1/decisions/nope/explain").status == 404)

            let why = try await api.call(.get, "/v1/decisions/\(decisionID)/why?ad_id=\(adID)", key: Self.feed)
            #expect(why.status == 200)
            #expect((why["text"] as? String)?.contains("interested in running") == true, "\(why.text)")
            #expect(try await api.call(.get, "/v1/decisions/\(decisionID)/why", key: Self.feed).errorField == "ad_id")
            #expect(try await api.call(.get, "/v1/decisions/\(decisionID)/why?ad_id=x", key: Self.feed).errorField == "ad_id")
            #expect(try await api.call(.get, "/v1/decisions/\(decisionID)/why?ad_id=999", key: Self.feed).status == 404)

            // Every decision is sampled here: the placed campaign won, the other was out by targeting.
            let losses = try await api.call(.get, "/v1/reports/campaigns/\(campaignID)/losses", key: key)
            #expect(losses.status == 200 && losses["sample_rate"] as? Double == 1, "\(losses.text)")
            #expect(((losses["reasons"] as? [String: Any])?["won"] as? Int ?? 0) >= 1, "\(losses.text)")
            let knittingLosses = try await api.call(.get, "/v1/reports/campaigns/\(knitting)/losses", key: key)
            #expect(((knittingLosses["reasons"] as? [String: Any])?["targeting"] as? Int ?? 0) >= 1, "\(knittingLosses.text)")
            let (_, otherKey) = try await api.advertiser("Other")
            #expect(try await api.call(.get, "/v1/reports/campaigns/\(campaignID)/losses", key: otherKey).status == 404)
        }
    }

    @Test func badInputGetsAClearError() async throws {
        try await withAPI { api, _ in
            let (advertiserID, _) = try await api.advertiser()
            let campaignID = try await api.campaign(advertiserID)
            #expect(campaignID == 1)
            for (method, path, body, status, field) in Self.badInputs {
                let reply = try await api.call(method, path, json: body.isEmpty && method == .get ? nil : body)
                #expect(reply.status == status, "\(method) \(path) \(body): \(reply.text)")
                #expect(reply.error?["message"] is String, "\(path) \(body): \(reply.text)")
                #expect(reply.errorField == field, "\(path) \(body): \(reply.text)")
            }
            // Nothing was half-applied: still exactly one campaign and no ads.
            let list = try await api.call(.get, "/v1/advertisers/\(advertiserID)/campaigns")
            #expect((list["campaigns"] as? [Any])?.count == 1)
            #expect(try await api.call(.get, "/v1/ads/1").status == 404)
        }
    }

    /// A hostile body full of numbers no field can hold is refused naming a field at fault, and
    /// deep nesting is refused before any parser recurses into it. (Timings are in the abuse
    /// script's figures, not here.)
    @Test func hostileBodiesAreRefusedNamingTheField() async throws {
        try await withAPI { api, _ in
            let (advertiserID, _) = try await api.advertiser()
            let numbers = Array(repeating: "0.5", count: 4_000).joined(separator: ",")
            let body = #"{"advertiser_id":\#(advertiserID),"name":"x","objective":"traffic","bid_micros":1.5,"daily_budget_micros":1.5,"#
                + #""total_budget_micros":1000000,"padding":[\#(numbers)]}"#
            let reply = try await api.call(.post, "/v1/campaigns", json: body)
            #expect(reply.status == 400)
            #expect(["bid_micros", "daily_budget_micros"].contains(reply.errorField ?? ""), "\(reply.text)")

            let one = #"{"advertiser_id":\#(advertiserID),"name":"x","objective":"traffic","bid_micros":1000000,"daily_budget_micros":1e30,"total_budget_micros":1000000}"#
            #expect(try await api.call(.post, "/v1/campaigns", json: one).errorField == "daily_budget_micros")

            let deep = String(repeating: "[", count: 200_000) + String(repeating: "]", count: 200_000)
            let nested = try await api.call(.post, "/v1/campaigns", json: deep)
            #expect(nested.status == 400)
            #expect((nested.error?["message"] as? String)?.contains("nested deeper") == true, "\(nested.text)")
            let inString = #"{"name":"\#(String(repeating: "[", count: 100))"}"#  // brackets inside a string are text
            #expect(try await api.call(.post, "/v1/advertisers", json: inString).status == 201)
        }
    }

    @Test func oversizedBodyIsRefused() async throws {
        try await withAPI { api, _ in
            let huge = #"{"name":""# + String(repeating: "x", count: 2 << 20) + #""}"#
            let reply = try await api.call(.post, "/v1/advertisers", json: huge)
            #expect(reply.status == 413)
            #expect(reply.error?["message"] is String)
        }
    }

    @Test func expiredTokenIsGone() async throws {
        let clock = ManualClock(TestWorld.start)
        try await withAPI(clock: clock) { api, _ in
            let (advertiserID, _) = try await api.advertiser()
            _ = try await api.ad(try await api.campaign(advertiserID))
            let decision = try await api.decideUntilServed("u1")
            let token = try #require((decision["ads"] as? [[String: Any]])?.first?["impression_token"] as? String)
            clock.advance(hours: 24 * 8)
            let reply = try await api.call(.post, "/v1/events", key: Self.feed, json: #"{"type":"impression","impression_token":"\#(token)"}"#)
            #expect(reply.status == 410)
            #expect(reply.errorField == "impression_token")
        }
    }

    /// With a metrics key, /metrics answers only to it or the admin key; configured keys must
    /// be long and distinct.
    @Test func metricsCanHaveTheirOwnKeyAndShortKeysAreRefused() async throws {
        try await withAPI(metricsKey: Self.metrics) { (api: Client, _: TestWorld) async throws in
            #expect(try await api.call(.get, "/metrics", key: nil).status == 401)
            #expect(try await api.call(.get, "/metrics", key: Self.feed).status == 401)
            #expect(try await api.call(.get, "/metrics", key: Self.metrics).status == 200)
            #expect(try await api.call(.get, "/metrics", key: Self.admin).status == 200)
            #expect(try await api.call(.get, "/healthz", key: nil).status == 200)
        }
        #expect(throws: AdServeError.invalid("ADSERVE_ADMIN_KEY", "must be at least 16 characters")) {
            try APIConfiguration(adminKey: "short").validate()
        }
        #expect(throws: AdServeError.invalid("ADSERVE_FEED_KEY", "must differ from the admin key")) {
            try APIConfiguration(adminKey: Self.admin, feedKey: Self.admin).validate()
        }
        #expect(throws: AdServeError.self) { try APIConfiguration(adminKey: Self.admin, feedKey: Self.feed, metricsKey: "tiny").validate() }
    }

    @Test func healthAndMetrics() async throws {
        try await withAPI { api, _ in
            let health = try await api.call(.get, "/healthz", key: nil)
            #expect(health.status == 200 && health["status"] as? String == "ok")
            _ = try await api.call(.post, "/v1/decisions", key: Self.feed, json: #"{"user_id":"u1","organic_count":10}"#)
            _ = try await api.call(.post, "/v1/events", key: Self.feed, json: #"{"type":"boom","impression_token":"x"}"#)
            let metrics = try await api.call(.get, "/metrics", key: nil)
            #expect(metrics.status == 200)
            #expect(metrics.text.contains("adserve_decisions_total 1"))
            #expect(metrics.text.contains(#"adserve_http_requests_total{route="/v1/decisions",method="POST",status="200"} 1"#))
            #expect(metrics.text.contains(#"adserve_http_requests_total{route="/v1/events",method="POST",status="400"} 1"#))
            #expect(metrics.text.contains(#"adserve_http_request_duration_seconds_bucket{route="/v1/decisions",method="POST""#))
        }
    }
}
