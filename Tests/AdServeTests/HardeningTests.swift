@testable import API
import Domain
import Events
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Hummingbird
import HummingbirdTesting
@testable import SQLiteStorage
import Serving
import Storage
import Synchronization
import TestSupport
import Testing

/// Invalid traffic, billing abuse and secrets, at the ingestion layer.
@Suite struct InvalidTrafficTests {
    /// A world with `advertisers` one-campaign advertisers, so one decision places several ads.
    func world(advertisers: Int = 1, objective: Objective = .traffic) async throws -> (TestWorld, [Campaign]) {
        let world = try await TestWorld.make(configuration: .payingBids)
        var campaigns: [Campaign] = []
        for i in 0..<advertisers {
            let campaign = try await world.campaign(try await world.advertiser("A\(i)"), objective: objective, bid: 1_000_000)
            try await world.ad(campaign)
            campaigns.append(campaign)
        }
        world.publish()
        return (world, campaigns)
    }

    func ingest(_ world: TestWorld, _ type: EventType, _ placement: Placement, rules: EventRules = EventRules()) async throws -> IngestedEvent {
        try await EventIngestor(serving: world.serving, rules: rules).ingest(IncomingEvent(type: type, impressionToken: placement.impressionToken))
    }

    @Test func aClickFasterThanAPersonIsRecordedInvalidAndNotCharged() async throws {
        let (world, campaigns) = try await world()
        let placement = try #require(try await world.decide("u").placements.first)
        world.clock.advance(milliseconds: 300)
        let click = try await ingest(world, .click, placement)
        #expect(click.invalidReason == .tooFast)
        #expect(click.outcome == EventOutcome(duplicate: false, chargedMicros: 0))
        // Sent again, it is a duplicate — not a second invalid click, and still not charged.
        world.clock.advance(milliseconds: 5_000)
        let again = try await ingest(world, .click, placement)
        #expect(again.duplicate && again.outcome.chargedMicros == 0 && again.invalidReason == nil)
        let report = try await Reports(store: world.store).campaign(campaigns[0].id)
        #expect(report.totals == DeliveryCounters(impressions: 1, clicks: 0, spendMicros: 0, invalidClicks: 1))
        #expect(report.days.map(\.counters.invalidClicks) == [1])
        // The rule-based ranking learns nothing from it: the ad has no click.
        #expect(try await world.store.adCounters().values.map(\.clicks) == [0])
    }

    @Test func aUserClickingMoreThanAPersonDoesIsInvalidPastTheHourlyLimit() async throws {
        let (world, _) = try await world(advertisers: 3)
        var rules = EventRules()
        rules.maxClicksPerUserPerHour = 2
        var reasons: [InvalidClickReason?] = []
        var charged: [Micros] = []
        for _ in 0..<2 {
            let decision = try await world.decide("bot", organicCount: 40)
            world.clock.advance(milliseconds: 2_000)
            for placement in decision.placements {
                let click = try await ingest(world, .click, placement, rules: rules)
                reasons.append(click.invalidReason)
                charged.append(click.outcome.chargedMicros)
            }
        }
        #expect(reasons.count == 6)
        #expect(reasons.prefix(2).allSatisfy { $0 == nil })
        #expect(reasons.dropFirst(2).allSatisfy { $0 == .userClickRate })
        #expect(charged == [1_000_000, 1_000_000, 0, 0, 0, 0])
        // An hour later the user is a person again.
        world.clock.advance(hours: 1)
        let later = try #require(try await world.decide("bot", organicCount: 40).placements.first)
        world.clock.advance(milliseconds: 2_000)
        #expect(try await ingest(world, .click, later, rules: rules).invalidReason == nil)
    }

    @Test func theSameUserClickingOneCampaignAgainAndAgainIsInvalid() async throws {
        let (world, campaigns) = try await world()
        var reasons: [InvalidClickReason?] = []
        for _ in 0..<5 {
            let placement = try #require(try await world.decide("fan").placements.first)
            world.clock.advance(minutes: 10)
            reasons.append(try await ingest(world, .click, placement).invalidReason)
        }
        #expect(reasons == [nil, nil, nil, .repeatedCampaign, .repeatedCampaign])
        let report = try await Reports(store: world.store).campaign(campaigns[0].id)
        #expect(report.totals.clicks == 3 && report.totals.invalidClicks == 2 && report.totals.spendMicros == 3_000_000)
        // Another user is not affected.
        let other = try #require(try await world.decide("someone-else").placements.first)
        world.clock.advance(milliseconds: 2_000)
        #expect(try await ingest(world, .click, other).invalidReason == nil)
    }

    @Test func aPausedCampaignIsChargedOnlyWithinTheGrace() async throws {
        let (world, campaigns) = try await world(objective: .awareness)
        let early = try #require(try await world.decide("u1").placements.first)
        let late = try #require(try await world.decide("u2").placements.first)
        let paused = try await world.catalog.updateCampaign(campaigns[0].id) { $0.status = .paused }
        #expect(paused.pausedAt == world.clock.now())
        world.clock.advance(minutes: 4)
        #expect(try await ingest(world, .impression, early).outcome.chargedMicros == 1_000)
        world.clock.advance(minutes: 2)
        let after = try await ingest(world, .impression, late)
        #expect(!after.duplicate && after.outcome.chargedMicros == 0)
        let report = try await Reports(store: world.store).campaign(campaigns[0].id)
        #expect(report.totals.impressions == 2 && report.totals.spendMicros == 1_000)
        // Resumed, it is charged again and the pause time is cleared.
        let resumed = try await world.catalog.updateCampaign(campaigns[0].id) { $0.status = .active }
        #expect(resumed.pausedAt == nil)
    }

    @Test func aConversionValueAboveTheCampaignsMaximumIsRefused() async throws {
        let world = try await TestWorld.make(configuration: .payingBids)
        var draft = Campaign(
            id: CampaignID(0), advertiserID: try await world.advertiser().id, name: "c", objective: .conversions, bidMicros: 1_000_000,
            dailyBudgetMicros: 100_000_000, totalBudgetMicros: 100_000_000, createdAt: world.clock.now())
        draft.maxConversionValueMicros = 50_000_000
        let campaign = try await world.catalog.createCampaign(draft)
        try await world.ad(campaign)
        world.publish()
        let placement = try #require(try await world.decide("u").placements.first)
        world.clock.advance(milliseconds: 2_000)
        _ = try await ingest(world, .click, placement)
        let ingestor = EventIngestor(serving: world.serving)
        let tooMuch = IncomingEvent(type: .conversion, impressionToken: placement.impressionToken, valueMicros: 50_000_001)
        let error = await #expect(throws: AdServeError.self) { try await ingestor.ingest(tooMuch) }
        #expect(error?.field == "value_micros")
        let fine = IncomingEvent(type: .conversion, impressionToken: placement.impressionToken, valueMicros: 50_000_000)
        #expect(try await ingestor.ingest(fine).outcome.chargedMicros == 1_000_000)
    }

    @Test func aRotatedTokenSecretKeepsOldTokensOnlyThroughItsGraceAlsoAfterARestart() async throws {
        let (world, _) = try await world()
        let old = try #require(try await world.decide("u").placements.first)
        let until = try await world.serving.rotateTokenSecret(graceMilliseconds: Timestamp.millisecondsPerHour)
        #expect(until.milliseconds == world.clock.now().milliseconds + Timestamp.millisecondsPerHour)
        let new = try #require(try await world.decide("v").placements.first)
        #expect(old.impressionToken.split(separator: ".")[1] != new.impressionToken.split(separator: ".")[1])
        for world in [world, try await world.reopened()] {
            #expect(throws: Never.self) { try world.serving.signer.verify(old.impressionToken, now: world.clock.now()) }
            #expect(throws: Never.self) { try world.serving.signer.verify(new.impressionToken, now: world.clock.now()) }
        }
        world.clock.advance(minutes: 61)
        for world in [world, try await world.reopened()] {
            let error = #expect(throws: AdServeError.self) { try world.serving.signer.verify(old.impressionToken, now: world.clock.now()) }
            #expect(error?.field == "impression_token")
            #expect(throws: Never.self) { try world.serving.signer.verify(new.impressionToken, now: world.clock.now()) }
        }
    }

    @Test func aFullDiskRefusesEventsWithoutAcknowledgingAndDecisionsGoOn() async throws {
        let (world, campaigns) = try await world()
        try await world.store.simulateFullDisk()
        // Impressions until the store has no page left for the next one.
        var acknowledged = 0
        var refused: AdServeError?
        for i in 0..<5_000 where refused == nil {
            let placement = try #require(try await world.decide("user-\(i)").placements.first)
            do {
                _ = try await ingest(world, .impression, placement)
                acknowledged += 1
            } catch let error as AdServeError {
                refused = error
            }
        }
        #expect(refused?.code == .unavailable)
        // Everything acknowledged is there; the refused one is not half-recorded.
        #expect(try await Reports(store: world.store).campaign(campaigns[0].id).totals.impressions == Int64(acknowledged))
        #expect(!(try await world.decide("w").placements.isEmpty))
    }
}

extension ManualClock {
    func advance(minutes: Int64) { advance(milliseconds: minutes * 60_000) }
}

/// Keys, limits and quotas through the HTTP API.
extension APITests {
    @Test func advertiserKeysRotateAndRevokedOnesStopWorking() async throws {
        try await withAPI { api, _ in
            let (id, first) = try await api.advertiser()
            let (otherID, otherKey) = try await api.advertiser("Other")
            let made = try await api.call(.post, "/v1/advertisers/\(id)/keys", key: first)
            #expect(made.status == 201)
            let second = try #require(made["api_key"] as? String)
            let secondID = try #require(made["key_id"] as? Int)
            #expect(try await api.call(.get, "/v1/advertisers/\(id)/campaigns", key: second).status == 200)
            let list = try await api.call(.get, "/v1/advertisers/\(id)/keys", key: second)
            let keys = try #require(list["keys"] as? [[String: Any]])
            #expect(keys.count == 2 && keys.allSatisfy { $0["api_key"] == nil && $0["revoked_at"] == nil })
            let firstID = try #require(keys.first?["key_id"] as? Int)
            // Another advertiser learns nothing and can revoke nothing.
            #expect(try await api.call(.post, "/v1/advertisers/\(id)/keys", key: otherKey).status == 404)
            #expect(try await api.call(.delete, "/v1/advertisers/\(id)/keys/\(firstID)", key: otherKey).status == 404)
            #expect(try await api.call(.delete, "/v1/advertisers/\(otherID)/keys/\(firstID)", key: otherKey).status == 404)
            let revoked = try await api.call(.delete, "/v1/advertisers/\(id)/keys/\(firstID)", key: second)
            #expect(revoked.status == 200 && revoked["revoked_at"] is String)
            #expect(try await api.call(.get, "/v1/advertisers/\(id)/campaigns", key: first).status == 401)
            #expect(try await api.call(.get, "/v1/advertisers/\(id)/campaigns", key: second).status == 200)
            #expect(try await api.call(.delete, "/v1/advertisers/\(id)/keys/\(firstID)", key: second).status == 404)
            let bad = try await api.call(.delete, "/v1/advertisers/\(id)/keys/x", key: second)
            #expect(bad.status == 400 && bad.errorField == "key_id")
            _ = secondID
        }
    }

    @Test func wrongKeysFromOneAddressAreLimitedEvenWithARightKeyAfterwards() async throws {
        let clock = ManualClock(TestWorld.start)
        try await withAPI(clock: clock, configure: { $0.failedAuthPerMinute = 3 }) { api, _ in
            for _ in 0..<3 {
                #expect(try await api.call(.get, "/v1/campaigns/1", key: "guess-0123456789abcdef").status == 401)
            }
            let limited = try await api.call(.get, "/v1/advertisers/1/campaigns", key: APITests.admin)
            #expect(limited.status == 429)
            #expect(limited.error?["code"] as? String == "too_many_requests")
            clock.advance(milliseconds: 61_000)
            #expect(try await api.call(.post, "/v1/advertisers", json: #"{"name":"Back"}"#).status == 201)
        }
    }

    /// A `file:` medium would have the content encoder read the server's own disk: refused
    /// from the API (create and update) unless the operator allows it.
    @Test func fileMediaAreRefusedUnlessTheOperatorAllowsThem() async throws {
        for allowed in [false, true] {
            try await withAPI(configure: { $0.allowsFileMedia = allowed }) { api, _ in
                let (id, key) = try await api.advertiser()
                let campaign = try await api.campaign(id, key: key)
                let created = try await api.call(.post, "/v1/ads", key: key, json: """
                    {"campaign_id":\(campaign),"format":"image","media_urls":["https://cdn.example/a.jpg","FILE:///etc/passwd"],"caption":"","company":"Acme","product":"","description":""}
                    """)
                let ad = try await api.ad(campaign, key: key)
                let patched = try await api.call(.patch, "/v1/ads/\(ad)", key: key, json: #"{"media_urls":["file:///etc/hostname"]}"#)
                if allowed {
                    #expect(created.status == 201 && patched.status == 200)
                } else {
                    #expect(created.status == 400 && created.errorField == "media_urls[1]", "\(created.text)")
                    #expect(patched.status == 400 && patched.errorField == "media_urls[0]", "\(patched.text)")
                    #expect(try await api.call(.get, "/v1/ads/\(ad)", key: key)["media_urls"] as? [String] != ["file:///etc/hostname"])
                }
            }
        }
    }

    @Test func quotasPerAdvertiserAreClear4xx() async throws {
        try await withAPI(configure: { $0.quotas.campaignsPerAdvertiser = 2; $0.quotas.adsPerAdvertiser = 1 }) { api, _ in
            let (id, key) = try await api.advertiser()
            let campaign = try await api.campaign(id, key: key)
            _ = try await api.campaign(id, key: key)
            let third = try await api.call(.post, "/v1/campaigns", key: key, json: """
                {"advertiser_id":\(id),"name":"Three","objective":"traffic","bid_micros":500000,"daily_budget_micros":50000000,"total_budget_micros":100000000}
                """)
            #expect(third.status == 409 && third.errorField == "advertiser_id")
            #expect(third.error?["code"] as? String == "quota_exceeded")
            _ = try await api.ad(campaign, key: key)
            let second = try await api.call(.post, "/v1/ads", key: key, json: """
                {"campaign_id":\(campaign),"format":"image","media_urls":["https://cdn.example/a.jpg"],"caption":"","company":"Acme","product":"","description":""}
                """)
            #expect(second.status == 409 && second.errorField == "campaign_id", "\(second.text)")
            // Another advertiser has its own quota.
            let (other, otherKey) = try await api.advertiser("Other")
            _ = try await api.campaign(other, key: otherKey)
        }
    }

    @Test func invalidClicksAndTheRotationRouteReachTheReportsAndMetrics() async throws {
        try await withAPI { api, world in
            let (id, key) = try await api.advertiser()
            let campaign = try await api.campaign(id, key: key)
            _ = try await api.ad(campaign, key: key)
            let decision = try await api.decideUntilServed("alice")
            let token = try #require((decision["ads"] as? [[String: Any]])?.first?["impression_token"] as? String)
            let click = try await api.call(.post, "/v1/events", key: APITests.feed, json: #"{"type":"click","impression_token":"\#(token)"}"#)
            #expect(click.status == 200 && click["invalid"] as? String == "too_fast")
            let report = try await api.call(.get, "/v1/reports/campaigns/\(campaign)", key: key)
            #expect(report["invalid_clicks"] as? Int == 1 && report["clicks"] as? Int == 0 && report["spend_micros"] as? Int == 0)
            #expect((report["by_day"] as? [[String: Any]])?.first?["invalid_clicks"] as? Int == 1)
            let metrics = try await api.call(.get, "/metrics", key: nil)
            #expect(metrics.text.contains(#"adserve_invalid_clicks_total{reason="too_fast"} 1"#))

            #expect(try await api.call(.post, "/v1/token-secret/rotate", key: key, json: "{}").status == 403)
            let badGrace = try await api.call(.post, "/v1/token-secret/rotate", json: #"{"grace_seconds":-1}"#)
            #expect(badGrace.status == 400 && badGrace.errorField == "grace_seconds")
            let rotated = try await api.call(.post, "/v1/token-secret/rotate", json: #"{"grace_seconds":60}"#)
            #expect(rotated.status == 200 && rotated["previous_valid_until"] as? String == "2026-06-01T12:01:00Z")
            world.clock.advance(milliseconds: 61_000)
            let stale = try await api.call(.post, "/v1/events", key: APITests.feed, json: #"{"type":"hide","impression_token":"\#(token)"}"#)
            #expect(stale.status == 400 && stale.errorField == "impression_token")
        }
    }
}

/// The limit on requests in flight, on a router of its own with a handler that waits.
@Suite struct ConcurrencyLimitTests {
    /// Lets the test hold requests inside the handler until it says so.
    final class Gate: Sendable {
        private let counts = Mutex((entered: 0, released: 0))

        func enter() async throws {
            counts.withLock { $0.entered += 1 }
            while !takeRelease() { try await Task.sleep(for: .milliseconds(2)) }
        }

        private func takeRelease() -> Bool {
            counts.withLock { c in
                guard c.released > 0 else { return false }
                c.released -= 1
                return true
            }
        }

        func waitUntilInside(_ n: Int) async throws {
            while counts.withLock({ $0.entered }) < n { try await Task.sleep(for: .milliseconds(2)) }
        }

        func release(_ n: Int) { counts.withLock { $0.released += n } }
    }

    /// A body the HTTP parser cannot read (a chunk size that is not hex) is the client's fault:
    /// 400 and the connection closed, as Hummingbird answers its other parser errors. Through
    /// the error middleware it once came back as a 500 on a connection left open.
    @Test(.timeLimit(.minutes(1))) func anUnreadableChunkedBodyIs400AndClosesTheConnection() async throws {
        let router = Router(context: AdServeRequestContext.self)
        router.add(middleware: ErrorAndMetricsMiddleware(telemetry: Telemetry()))
        router.post("/echo") { request, _ in String(try await request.body.collect(upTo: 1024).readableBytes) }
        try await Application(router: router).test(.live) { client in
            let port = try #require(client.port)
            let good = try RawHTTP.exchange(port: port, "POST /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
            #expect(good.hasPrefix("HTTP/1.1 200") && good.hasSuffix("\r\n\r\n2"), "\(good)")
            // Read until the server closes: a connection left open would time out instead.
            let bad = try RawHTTP.exchange(port: port, "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n")
            #expect(bad.hasPrefix("HTTP/1.1 400"), "\(bad)")
            #expect(bad.components(separatedBy: "HTTP/1.1 ").count == 2, "one response, not two: \(bad)")
        }
    }

    @Test(.timeLimit(.minutes(1))) func requestsPastTheLimitAre503AndTheRestAreServed() async throws {
        let gate = Gate()
        let router = Router(context: AdServeRequestContext.self)
        router.add(middleware: ErrorAndMetricsMiddleware(telemetry: Telemetry()))
        router.add(middleware: ConcurrencyLimitMiddleware(limit: 2))
        router.get("/slow") { _, _ in
            try await gate.enter()
            return "done"
        }
        router.get("/healthz") { _, _ in "ok" }
        try await Application(router: router).test(.router) { client in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<2 {
                    group.addTask { try await client.execute(uri: "/slow", method: .get) { Int($0.status.code) } }
                }
                try await gate.waitUntilInside(2)
                // Two are in flight: a third is turned away at once, with a retry hint; health answers.
                let third = try await client.execute(uri: "/slow", method: .get) { ($0.status.code, $0.headers[.retryAfter]) }
                #expect(third.0 == 503 && third.1 == "1")
                #expect(try await client.execute(uri: "/healthz", method: .get) { $0.status.code } == 200)
                gate.release(2)
                var statuses: [Int] = []
                for try await status in group { statuses.append(status) }
                #expect(statuses == [200, 200])
                // Once they are done, the next is served.
                gate.release(1)
                #expect(try await client.execute(uri: "/slow", method: .get) { $0.status.code } == 200)
            }
        }
    }
}

/// One HTTP/1.1 exchange over a plain socket, for what an HTTP client will not send: writes
/// `request` and reads until the server closes the connection (or 10 s pass).
enum RawHTTP {
    struct Failure: Error { let step: String }

    static func exchange(port: Int, _ request: String) throws -> String {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Failure(step: "socket") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Failure(step: "connect") }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        let sent = Array(request.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        guard sent == request.utf8.count else { throw Failure(step: "send") }
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            guard n > 0 else { break }
            received += buffer[0..<n]
        }
        return String(decoding: received, as: UTF8.self)
    }
}
