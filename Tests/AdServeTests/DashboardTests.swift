@testable import API
import Foundation
import Hummingbird
import HummingbirdTesting
import Domain
import Events
import Learning
import Models
import Signing
import TestSupport
import Testing
import Training

/// What the dashboard stands on: the page itself, who a key is, and a campaign's ads. (The page
/// in a real browser is `scripts/dashboard-browser-test.py`, in CI.)
@Suite struct DashboardTests {
    @Test func thePageIsServedWithAPolicyThatRunsOnlyItsOwnScript() async throws {
        let script = try #require(AdServeAPI.dashboardPage.components(separatedBy: "<script>").last?.components(separatedBy: "</script>").first)
        let hash = Data(SHA256.hash(Array(script.utf8))).base64EncodedString()
        #expect(AdServeAPI.dashboardPolicy.contains("script-src 'sha256-\(hash)';"))
        #expect(!AdServeAPI.dashboardPolicy.contains("script-src 'unsafe-inline'"))
        try await APITests().withAPI { api, _ in
            let page = try await api.call(.get, "/dashboard", key: nil)
            #expect(page.status == 200)
            #expect(page.text.contains("<title>AdServe dashboard</title>"))
        }
    }

    @Test func whoamiNamesTheKeysRoleAndTheAdvertiser() async throws {
        try await APITests().withAPI { api, _ in
            let (id, key) = try await api.advertiser("Acme")
            let advertiser = try await api.call(.get, "/v1/whoami", key: key)
            #expect(advertiser["role"] as? String == "advertiser")
            #expect(advertiser["advertiser_id"] as? Int == id && advertiser["advertiser_name"] as? String == "Acme")
            #expect(try await api.call(.get, "/v1/whoami")["role"] as? String == "admin")
            #expect(try await api.call(.get, "/v1/whoami", key: APITests.feed)["role"] as? String == "feed")
            #expect(try await api.call(.get, "/v1/whoami", key: "adv_not-a-key-at-all-000").status == 401)
        }
    }

    /// `adserve report campaign ID --json` prints `ReportDocument`: the API's own bytes.
    @Test func theCommandLinesReportDocumentIsTheAPIs() async throws {
        try await APITests().withAPI { api, world in
            let (id, key) = try await api.advertiser("Acme")
            let campaign = try await api.campaign(id, key: key)
            _ = try await api.ad(campaign, key: key)
            let decision = try await api.decideUntilServed("u1")
            let token = try #require((decision["ads"] as? [[String: Any]])?.first?["impression_token"] as? String)
            #expect(try await api.call(.post, "/v1/events", key: APITests.feed, json: #"{"type":"impression","impression_token":"\#(token)"}"#).status == 200)
            world.clock.advance(milliseconds: 5_000)
            #expect(try await api.call(.post, "/v1/events", key: APITests.feed, json: #"{"type":"click","impression_token":"\#(token)"}"#).status == 200)
            let served = try await api.call(.get, "/v1/reports/campaigns/\(campaign)", key: key)
            #expect(served["clicks"] as? Int == 1)
            let report = try await Reports(store: world.store).campaign(CampaignID(Int64(campaign)))
            #expect(try ReportDocument.campaign(CampaignID(Int64(campaign)), report, pretty: false) == served.text)
        }
    }

    @Test func aCampaignsAdsAreListedForItsOwnerAndTheAdminOnly() async throws {
        try await APITests().withAPI { api, _ in
            let (id, key) = try await api.advertiser("Acme")
            let campaign = try await api.campaign(id, key: key)
            let first = try await api.ad(campaign, key: key)
            let second = try await api.ad(campaign, key: key)
            let owned = try await api.call(.get, "/v1/campaigns/\(campaign)/ads", key: key)
            #expect(owned.status == 200)
            #expect((owned["ads"] as? [[String: Any]])?.compactMap { $0["id"] as? Int } == [first, second])
            #expect(try await api.call(.get, "/v1/campaigns/\(campaign)/ads").status == 200)
            // Another advertiser learns nothing, not even that the campaign exists.
            let (_, other) = try await api.advertiser("Other")
            let foreign = try await api.call(.get, "/v1/campaigns/\(campaign)/ads", key: other)
            #expect(foreign.status == 404 && foreign.text.contains("campaign \(campaign)"))
            #expect(try await api.call(.get, "/v1/campaigns/\(campaign)/ads", key: APITests.feed).status == 404)
        }
    }

    @Test func modelsAreListedPromotedAndRolledBackByTheAdminOnly() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("models-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let repository = try ModelRepository(directory: directory)
        let first = try repository.save(ModelFileTests.model(seed: 1), meta: ModelFileTests.meta)
        let second = try repository.save(ModelFileTests.model(seed: 2), meta: ModelFileTests.meta)
        try repository.promote(first.version)
        let world = try await TestWorld.make()
        let configuration = APIConfiguration(adminKey: APITests.admin, feedKey: APITests.feed)
        let api = AdServeAPI(
            serving: world.serving, telemetry: Telemetry(), configuration: configuration, models: try RepositoryAdministration(directory: directory))
        try await Application(router: api.router()).test(.router) { client in
            let api = APITests.Client(client: client)
            func listed() async throws -> [(version: Int, serving: Bool)] {
                let models = try #require(try await api.call(.get, "/v1/models")["models"] as? [[String: Any]])
                return models.compactMap { m in (m["version"] as? Int).map { ($0, m["serving"] as? Bool ?? false) } }
            }
            #expect(try await listed().map(\.version) == [second.version, first.version])
            #expect(try await listed().map(\.serving) == [false, true])
            #expect(try await api.call(.get, "/v1/models", key: APITests.feed).status == 403)

            let promoted = try await api.call(.post, "/v1/models/\(second.version)/promote")
            #expect(promoted.status == 200 && promoted["serving"] as? Bool == true && promoted["target"] as? String == "click", "\(promoted.text)")
            #expect(repository.promoted(.click) == second.version)
            #expect(try await listed().map(\.serving) == [true, false])

            let back = try await api.call(.post, "/v1/models/rollback", json: #"{"target":"click"}"#)
            #expect(back.status == 200 && back["version"] as? Int == first.version, "\(back.text)")
            #expect(repository.promoted(.click) == first.version)
            #expect(try await api.call(.post, "/v1/models/rollback", json: #"{"target":"click"}"#).status == 409)
            #expect(try await api.call(.post, "/v1/models/rollback", json: #"{"target":"clicks"}"#).errorField == "target")
            #expect(try await api.call(.post, "/v1/models/99/promote").status == 404)
            #expect(try await api.call(.post, "/v1/models/abc/promote").errorField == "version")
            #expect(try await api.call(.post, "/v1/models/\(second.version)/promote", key: APITests.feed).status == 403)
        }
    }

    @Test func aServerWithoutARepositoryListsNoModelsAndRefusesChanges() async throws {
        try await APITests().withAPI { api, world in
            let listed = try await api.call(.get, "/v1/models")
            #expect(listed.status == 200 && (listed["models"] as? [Any])?.isEmpty == true)
            let promoted = try await api.call(.post, "/v1/models/1/promote")
            #expect(promoted.status == 409)
        }
    }

    @Test func theSimulationShownIsReadFromItsFolderAndOnlyItsChartsAreServed() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("simulation-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data(#"{"arms":{},"days":2,"seed":7,"users":10}"#.utf8).write(to: directory.appendingPathComponent("report.json"))
        try Data("<svg xmlns=\"http://www.w3.org/2000/svg\"></svg>".utf8).write(to: directory.appendingPathComponent("ctr.svg"))
        try Data("secret".utf8).write(to: directory.appendingPathComponent("serve-log.jsonl"))
        let world = try await TestWorld.make()
        let api = AdServeAPI(
            serving: world.serving, telemetry: Telemetry(), configuration: APIConfiguration(adminKey: APITests.admin, feedKey: APITests.feed),
            simulation: SimulationFolder(directory: directory.path))
        try await Application(router: api.router()).test(.router) { client in
            let api = APITests.Client(client: client)
            let report = try await api.call(.get, "/v1/simulation")
            #expect(report.status == 200 && report["seed"] as? Int == 7)
            #expect(try await api.call(.get, "/v1/simulation", key: APITests.feed).status == 403)
            #expect(try await api.call(.get, "/v1/simulation/charts")["charts"] as? [String] == ["ctr.svg"])
            let chart = try await api.call(.get, "/v1/simulation/charts/ctr.svg")
            #expect(chart.status == 200 && chart.text.hasPrefix("<svg"))
            // Nothing but a chart in the folder itself: not the serve log, not a path out of it.
            #expect(try await api.call(.get, "/v1/simulation/charts/serve-log.jsonl").errorField == "name")
            #expect(try await api.call(.get, "/v1/simulation/charts/..%2Freport.json").status == 400)
            #expect(try await api.call(.get, "/v1/simulation/charts/missing.svg").status == 404)
        }
        try await APITests().withAPI { api, world in
            #expect(try await api.call(.get, "/v1/simulation").status == 404)
            let charts = try await api.call(.get, "/v1/simulation/charts")
            #expect((charts["charts"] as? [String])?.isEmpty == true)
        }
    }
}
