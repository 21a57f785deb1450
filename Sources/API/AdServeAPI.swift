import Domain
import Events
import Foundation
import Hummingbird
import Serving
import Signing
import Storage

/// Configuration of the HTTP API, with a default for every field.
public struct APIConfiguration: Sendable {
    public var adminKey: String
    /// The feed backend's key. Without one, feed routes accept only the admin key.
    public var feedKey: String?
    /// If set, `/metrics` needs this key (or the admin key); otherwise it is open.
    public var metricsKey: String?
    public var maxBodyBytes = defaultMaxBodyBytes
    public static let defaultMaxBodyBytes = 1 << 20
    /// Wrong keys one client address may send per minute before it gets 429 for the rest of it.
    public var failedAuthPerMinute = 20
    /// Requests in flight past which the server answers 503 at once.
    public var maxConcurrentRequests = 512
    public var quotas = CatalogQuotas()
    public var eventRules = EventRules()
    /// Whether ads may name `file:` media. Such a URL is read from this server's own disk by the
    /// content encoder, so from advertisers on the internet it would be a way to probe the
    /// server's files: refused unless the operator allows it (a local demo, a trusted importer).
    public var allowsFileMedia = false
    /// Configured keys shorter than this are refused: a short key can be guessed.
    public static let minimumKeyLength = 16

    public init(adminKey: String, feedKey: String? = nil, metricsKey: String? = nil) {
        self.adminKey = adminKey
        self.feedKey = feedKey
        self.metricsKey = metricsKey
    }

    /// Every configured key long enough and distinct from the others; the error names the
    /// environment variable to fix.
    public func validate() throws(AdServeError) {
        for (name, key) in [("ADSERVE_ADMIN_KEY", adminKey), ("ADSERVE_FEED_KEY", feedKey), ("ADSERVE_METRICS_KEY", metricsKey)] {
            guard let key else { continue }
            if key.count < Self.minimumKeyLength {
                throw AdServeError.invalid(name, "must be at least \(Self.minimumKeyLength) characters")
            }
        }
        if feedKey == adminKey { throw AdServeError.invalid("ADSERVE_FEED_KEY", "must differ from the admin key") }
        if metricsKey != nil && (metricsKey == adminKey || metricsKey == feedKey) {
            throw AdServeError.invalid("ADSERVE_METRICS_KEY", "must differ from the admin and feed keys")
        }
    }
}

/// The HTTP JSON API. Handlers parse, check the caller, call the serving layer and encode;
/// business rules live below them.
public struct AdServeAPI: Sendable {
    let serving: DecisionService
    let catalog: CatalogService
    let events: EventIngestor
    let reports: Reports
    let auth: Authenticator
    let telemetry: Telemetry
    let configuration: APIConfiguration
    /// The model repository the server serves from, if it has one (`GET /v1/models` lists none without).
    let models: (any ModelAdministration)?
    /// The simulation shown on the dashboard (`serve --simulation DIR`), if any.
    let simulation: SimulationFolder?

    public init(
        serving: DecisionService, telemetry: Telemetry, configuration: APIConfiguration, models: (any ModelAdministration)? = nil,
        simulation: SimulationFolder? = nil
    ) {
        self.serving = serving
        self.models = models
        self.simulation = simulation
        self.catalog = CatalogService(store: serving.store, catalog: serving.catalog, clock: serving.clock, quotas: configuration.quotas)
        self.events = EventIngestor(serving: serving, rules: configuration.eventRules)
        self.reports = Reports(store: serving.store)
        self.auth = Authenticator(
            adminKey: configuration.adminKey, feedKey: configuration.feedKey, metricsKey: configuration.metricsKey, store: serving.store,
            limiter: FailedAuthLimiter(limit: configuration.failedAuthPerMinute, clock: serving.clock))
        self.telemetry = telemetry
        self.configuration = configuration
    }

    public func router() -> Router<AdServeRequestContext> {
        let router = Router(context: AdServeRequestContext.self)
        router.add(middleware: LogRequestsMiddleware(.info))
        router.add(middleware: ErrorAndMetricsMiddleware(telemetry: telemetry))
        router.add(middleware: ConcurrencyLimitMiddleware(limit: configuration.maxConcurrentRequests))
        let table = RouteTable()
        router.add(middleware: MethodNotAllowedMiddleware(table: table))
        router.add(middleware: BodyLimitMiddleware(limit: configuration.maxBodyBytes))
        addOperationRoutes(to: router)
        // Everything under /v1 needs a key: the middleware puts its principal in the context.
        let v1 = router.group("v1").add(middleware: AuthenticationMiddleware(auth: auth))
        addCatalogRoutes(to: v1)
        addServingRoutes(to: v1)
        addReportRoutes(to: v1)
        addExplanationRoutes(to: v1)
        addModelRoutes(to: v1)
        addSimulationRoutes(to: v1)
        table.fill(router.routes.map { ("\($0.path)", $0.method.rawValue) })
        return router
    }

    /// The routes under /v1: on the group that authenticates.
    typealias V1 = RouterGroup<AdServeRequestContext>

    /// The OpenAPI description served at GET /openapi.yaml: the repo's `openapi.yaml`, compiled in.
    public static let openAPIDocument = String(decoding: PackageResources.openapi_yaml, as: UTF8.self)
    /// The web dashboard (`dashboard.html`, compiled in): one page whose script reads the JSON API
    /// with the key its user gives, which stays in the browser tab's session storage.
    static let dashboardPage = String(decoding: PackageResources.dashboard_html, as: UTF8.self)
    /// The two files' bytes as served, made once.
    static let openAPIBytes = ByteBuffer(bytes: PackageResources.openapi_yaml)
    static let dashboardBytes = ByteBuffer(bytes: PackageResources.dashboard_html)
    /// The page runs only its own script (named by its SHA-256, so no injected script runs) and
    /// talks only to this server.
    static let dashboardPolicy: String = {
        var hash = ""
        if let open = dashboardPage.range(of: "<script>"), let close = dashboardPage.range(of: "</script>", range: open.upperBound..<dashboardPage.endIndex) {
            hash = Data(SHA256.hash(Array(dashboardPage[open.upperBound..<close.lowerBound].utf8))).base64EncodedString()
        }
        return "default-src 'none'; script-src 'sha256-\(hash)'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data: blob:; "
            + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    }()

    // MARK: Operations

    func addOperationRoutes(to router: Router<AdServeRequestContext>) {
        router.get("/healthz") { _, _ in
            ["status": "ok"]
        }
        router.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
                body: ResponseBody(byteBuffer: Self.openAPIBytes))
        }
        router.get("/dashboard") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8", .contentSecurityPolicy: Self.dashboardPolicy],
                body: ResponseBody(byteBuffer: Self.dashboardBytes))
        }
        router.get("/metrics") { request, context in
            if configuration.metricsKey != nil { try auth.requireMetrics(request, context) }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: telemetry.registry.emitToBuffer())))
        }
    }

    // MARK: Catalog

    func addCatalogRoutes(to v1: V1) {
        v1.get("whoami") { request, context in
            switch try context.requirePrincipal() {
            case .admin: return WhoAmIPayload(role: "admin")
            case .feed: return WhoAmIPayload(role: "feed")
            case .advertiser(let id):
                let advertiser = try await catalog.advertiser(id)
                return WhoAmIPayload(role: "advertiser", advertiserId: id.rawValue, advertiserName: advertiser?.name)
            }
        }
        v1.post("advertisers") { request, context in
            try context.requirePrincipal().requireAdmin()
            let input = try await request.decode(as: CreateAdvertiserBody.self, context: context)
            let (advertiser, key) = try await catalog.createAdvertiser(name: input.name)
            return EditedResponse(status: .created, response: AdvertiserPayload(id: advertiser.id.rawValue, name: advertiser.name, apiKey: key))
        }
        v1.post("advertisers/:id/keys") { request, context in
            let id = try await ownedAdvertiser(context)
            let (key, apiKey) = try await catalog.createKey(for: id)
            return EditedResponse(status: .created, response: KeyPayload(key, apiKey: apiKey))
        }
        v1.get("advertisers/:id/keys") { request, context in
            let id = try await ownedAdvertiser(context)
            return KeyListPayload(keys: try await catalog.keys(of: id).map { KeyPayload($0) })
        }
        v1.delete("advertisers/:id/keys/:key_id") { request, context in
            let id = try await ownedAdvertiser(context)
            guard let keyID = Self.positiveInteger(context.parameters.get("key_id")) else {
                throw AdServeError.invalid("key_id", "must be a positive integer")
            }
            return KeyPayload(try await catalog.revokeKey(keyID, of: id))
        }
        v1.get("advertisers/:id/campaigns") { request, context in
            let principal = try context.requirePrincipal()
            let id = AdvertiserID(try pathID(context))
            try principal.requireOwner(id, else: AdServeError.notFound("advertiser \(id)"))
            guard try await catalog.advertiser(id) != nil else { throw AdServeError.notFound("advertiser \(id)") }
            let campaigns = try await catalog.campaigns(of: id)
            return CampaignListPayload(campaigns: campaigns.map { CampaignPayload($0) })
        }
        v1.post("campaigns") { request, context in
            let principal = try context.requirePrincipal()
            let input = try await request.decode(as: CreateCampaignBody.self, context: context)
            try principal.requireOwner(
                AdvertiserID(input.advertiserId), else: AdServeError(.notFound, "advertiser \(input.advertiserId) not found", field: "advertiser_id"))
            let draft = try input.draft(at: serving.clock.now())
            let created = try await catalog.createCampaign(draft)
            return EditedResponse(status: .created, response: CampaignPayload(created))
        }
        v1.get("campaigns/:id") { request, context in
            let principal = try context.requirePrincipal()
            let campaign = try await ownedCampaign(CampaignID(try pathID(context)), principal)
            let spend = serving.spend(of: campaign.id)
            return CampaignPayload(campaign, spend: spend)
        }
        v1.patch("campaigns/:id") { request, context in
            let principal = try context.requirePrincipal()
            let id = CampaignID(try pathID(context))
            _ = try await ownedCampaign(id, principal)
            let patch = try await request.decode(as: PatchCampaignBody.self, context: context)
            let change = try patch.change()
            let updated = try await catalog.updateCampaign(id) { change(&$0) }
            return CampaignPayload(updated)
        }
        v1.post("ads") { request, context in
            let principal = try context.requirePrincipal()
            let input = try await request.decode(as: CreateAdBody.self, context: context)
            let missing = AdServeError(.notFound, "campaign \(input.campaignId) not found", field: "campaign_id")
            guard let campaign = try await catalog.campaign(CampaignID(input.campaignId)) else { throw missing }
            try principal.requireOwner(campaign.advertiserID, else: missing)
            try refuseFileMedia(input.mediaUrls)
            let created = try await catalog.createAd(input.draft(at: serving.clock.now()))
            return EditedResponse(status: .created, response: AdPayload(created))
        }
        v1.get("campaigns/:id/ads") { request, context in
            let principal = try context.requirePrincipal()
            let campaign = try await ownedCampaign(CampaignID(try pathID(context)), principal)
            return AdListPayload(ads: try await catalog.ads(of: campaign.id).map { AdPayload($0) })
        }
        v1.get("ads/:id") { request, context in
            let principal = try context.requirePrincipal()
            return AdPayload(try await ownedAd(AdID(try pathID(context)), principal))
        }
        v1.patch("ads/:id") { request, context in
            let principal = try context.requirePrincipal()
            let id = AdID(try pathID(context))
            _ = try await ownedAd(id, principal)
            let patch = try await request.decode(as: PatchAdBody.self, context: context)
            try refuseFileMedia(patch.mediaUrls ?? [])
            let updated = try await catalog.updateAd(id) { patch.apply(to: &$0) }
            return AdPayload(updated)
        }
    }

    /// A 400 naming the first `file:` medium, unless the configuration allows them.
    func refuseFileMedia(_ urls: [String]) throws(AdServeError) {
        guard !configuration.allowsFileMedia else { return }
        for (i, url) in urls.enumerated() where url.prefix(5).lowercased() == "file:" {
            throw AdServeError.invalid("media_urls[\(i)]", "file URLs are not accepted by this server: give an https or data URL")
        }
    }

    /// The path's advertiser, if the caller is the admin or that advertiser (else 404).
    func ownedAdvertiser(_ context: AdServeRequestContext) async throws -> AdvertiserID {
        let principal = try context.requirePrincipal()
        let id = AdvertiserID(try pathID(context))
        try principal.requireOwner(id, else: AdServeError.notFound("advertiser \(id)"))
        guard try await catalog.advertiser(id) != nil else { throw AdServeError.notFound("advertiser \(id)") }
        return id
    }

    func ownedCampaign(_ id: CampaignID, _ principal: Principal) async throws -> Campaign {
        guard let campaign = try await catalog.campaign(id) else { throw AdServeError.notFound("campaign \(id)") }
        try principal.requireOwner(campaign.advertiserID, else: AdServeError.notFound("campaign \(id)"))
        return campaign
    }

    func ownedAd(_ id: AdID, _ principal: Principal) async throws -> Ad {
        guard let ad = try await catalog.ad(id) else { throw AdServeError.notFound("ad \(id)") }
        guard let campaign = try await catalog.campaign(ad.campaignID) else { throw AdServeError.notFound("ad \(id)") }
        try principal.requireOwner(campaign.advertiserID, else: AdServeError.notFound("ad \(id)"))
        return ad
    }

    // MARK: Users, decisions, events

    func addServingRoutes(to v1: V1) {
        v1.put("users/:id") { request, context in
            try context.requirePrincipal().requireFeed()
            let id = try UserID(validating: context.parameters.get("id") ?? "")
            let input = try await request.decode(as: PutUserBody.self, context: context)
            // A profile update that leaves the opt-out out keeps the user's choice.
            var personalization = input.personalization
            if personalization == nil { personalization = try await serving.profile(of: id)?.personalization }
            let profile = UserProfile(
                id: id, age: input.age, gender: input.gender, country: input.country, language: input.language,
                interests: input.interests ?? [], personalization: personalization ?? true)
            try await serving.putUser(profile)
            return UserPayload(profile.normalized())
        }
        v1.get("users/:id") { request, context in
            try context.requirePrincipal().requireFeed()
            let id = try UserID(validating: context.parameters.get("id") ?? "")
            guard let profile = try await serving.profile(of: id) else { throw AdServeError.notFound("user \(id)") }
            return UserPayload(profile)
        }
        v1.post("users/:id/activity") { request, context in
            try context.requirePrincipal().requireFeed()
            let id = try UserID(validating: context.parameters.get("id") ?? "")
            let input = try await request.decode(as: ActivityBody.self, context: context)
            let activity = Activity(
                userID: id, type: input.type, topics: (input.topics ?? []).map { $0.lowercased() }, text: input.text,
                adID: input.adId.map(AdID.init), seconds: input.seconds, at: serving.clock.now())
            try await serving.recordActivity(activity)
            return EditedResponse(status: .accepted, response: AcceptedPayload(accepted: true))
        }
        v1.post("decisions") { request, context in
            try context.requirePrincipal().requireFeed()
            let input = try await request.decode(as: DecisionBody.self, context: context)
            let userID = try UserID(validating: input.userId)
            let context = FeedContext(device: input.context?.device, hour: input.context?.hour, sessionPosition: input.context?.sessionPosition)
            let decision = try await serving.decide(userID: userID, context: context, organicCount: input.organicCount)
            telemetry.decisions.increment()
            telemetry.adsServed.increment(by: Int64(decision.placements.count))
            let explored = decision.placements.count { $0.explored }
            if explored > 0 { telemetry.adsExplored.increment(by: Int64(explored)) }
            return DecisionPayload(decision)
        }
        v1.post("events") { request, context in
            try context.requirePrincipal().requireFeed()
            let input = try await request.decode(as: EventBody.self, context: context)
            let result = try await events.ingest(IncomingEvent(type: input.type, impressionToken: input.impressionToken, valueMicros: input.valueMicros))
            if result.duplicate {
                telemetry.duplicateEvents.increment()
            } else if let reason = result.invalidReason {
                telemetry.invalidClicks[reason]?.increment()
            } else {
                telemetry.events[input.type]?.increment()
            }
            return AcceptedPayload(accepted: true, duplicate: result.duplicate, invalid: result.invalidReason)
        }
        v1.post("token-secret/rotate") { request, context in
            try context.requirePrincipal().requireAdmin()
            let input = try await request.decode(as: RotateSecretBody.self, context: context)
            if let grace = input.graceSeconds, grace < 0 || grace > 30 * 86_400 {
                throw AdServeError.invalid("grace_seconds", "must be between 0 and 2592000 (30 days)")
            }
            let until = try await serving.rotateTokenSecret(graceMilliseconds: input.graceSeconds.map { $0 * 1000 })
            return RotatedSecretPayload(rotated: true, previousValidUntil: until.iso8601)
        }
    }

    // MARK: Reports

    func addReportRoutes(to v1: V1) {
        v1.get("reports/campaigns/:id") { request, context in
            let principal = try context.requirePrincipal()
            let campaign = try await ownedCampaign(CampaignID(try pathID(context)), principal)
            return ReportPayload(campaignID: campaign.id, try await reports.campaign(campaign.id))
        }
        v1.get("reports/ads/:id") { request, context in
            let principal = try context.requirePrincipal()
            let ad = try await ownedAd(AdID(try pathID(context)), principal)
            return ReportPayload(adID: ad.id, try await reports.ad(ad.id))
        }
        v1.get("reports/campaigns/:id/pacing") { request, context in
            let principal = try context.requirePrincipal()
            let campaign = try await ownedCampaign(CampaignID(try pathID(context)), principal)
            let now = serving.clock.now()
            var day = now.day
            if let text = request.uri.queryParameters.get("day") {
                guard let parsed = Timestamp.day(isoDate: text) else {
                    throw AdServeError.invalid("day", "must be a date from 1970 to 9999, YYYY-MM-DD (UTC)")
                }
                day = parsed
            }
            let report = try await reports.pacing(of: campaign, day: day, now: now, curve: serving.pacer?.curve ?? .flat)
            return PacingPayload(
                campaignId: campaign.id.rawValue, day: Timestamp.isoDate(day: day), paced: serving.pacer != nil,
                passRate: serving.delivery.pace(of: campaign.id, snapshot: serving.catalog.snapshot), report)
        }
    }

    func addExplanationRoutes(to v1: V1) {
        v1.get("decisions/:decision_id/explain") { request, context in
            try context.requirePrincipal().requireAdmin()
            let trace = try traced(context)
            return ExplainPayload(trace, ranker: serving.ranker)
        }
        v1.get("decisions/:decision_id/why") { request, context in
            try context.requirePrincipal().requireFeed()
            let trace = try traced(context)
            guard let raw = request.uri.queryParameters.get("ad_id") else { throw AdServeError.invalid("ad_id", "is required: the ad the user asks about") }
            guard let id = Self.positiveInteger(raw) else { throw AdServeError.invalid("ad_id", "must be a positive integer") }
            guard let placed = trace.placed.first(where: { $0.candidate.adID.rawValue == id }) else {
                throw AdServeError.notFound("ad \(id) in decision \(trace.decisionID)")
            }
            let contributions = serving.ranker.contributions(placed.candidate, user: trace.profile, context: trace.context)
            let text = WhyThisAd.text(trace: trace, placed: placed, campaign: serving.catalog.campaign(placed.candidate.campaignID), contributions: contributions)
            return WhyPayload(decisionId: trace.decisionID, adId: id, personalized: trace.personalized, text: text)
        }
        v1.get("reports/campaigns/:id/losses") { request, context in
            let principal = try context.requirePrincipal()
            let campaign = try await ownedCampaign(CampaignID(try pathID(context)), principal)
            return LossesPayload(campaignID: campaign.id, counts: serving.losses.counts(of: campaign.id), sampleRate: serving.configuration.lossSampleRate)
        }
    }

    // MARK: Models

    func addModelRoutes(to v1: V1) {
        v1.get("models") { _, context in
            try context.requirePrincipal().requireAdmin()
            return ModelListPayload(models: try models?.models().map(ModelPayload.init) ?? [])
        }
        v1.post("models/rollback") { request, context in
            try context.requirePrincipal().requireAdmin()
            let input = try await request.decode(as: RollbackBody.self, context: context)
            return ModelPayload(try repository().rollBack(input.target))
        }
        v1.post("models/:version/promote") { _, context in
            try context.requirePrincipal().requireAdmin()
            guard let version = Self.positiveInteger(context.parameters.get("version")).map(Int.init) else {
                throw AdServeError.invalid("version", "must be a positive integer")
            }
            return ModelPayload(try repository().promote(version))
        }
    }

    // MARK: Simulation

    func addSimulationRoutes(to v1: V1) {
        v1.get("simulation") { _, context in
            try context.requirePrincipal().requireAdmin()
            guard let simulation else { throw AdServeError.notFound("simulation: this server shows none (serve --simulation DIR)") }
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: ResponseBody(byteBuffer: ByteBuffer(bytes: try simulation.report())))
        }
        v1.get("simulation/charts") { _, context in
            try context.requirePrincipal().requireAdmin()
            return ChartListPayload(charts: simulation?.charts() ?? [])
        }
        v1.get("simulation/charts/:name") { _, context in
            try context.requirePrincipal().requireAdmin()
            guard let simulation else { throw AdServeError.notFound("simulation: this server shows none (serve --simulation DIR)") }
            let svg = try simulation.chart(context.parameters.get("name") ?? "")
            return Response(status: .ok, headers: [.contentType: "image/svg+xml"], body: ResponseBody(byteBuffer: ByteBuffer(string: svg)))
        }
    }

    func repository() throws(AdServeError) -> any ModelAdministration {
        guard let models else { throw AdServeError(.conflict, "this server has no model repository (serve --models DIR)") }
        return models
    }

    /// The trace of the decision named in the path, kept by this node.
    func traced(_ context: AdServeRequestContext) throws -> DecisionTrace {
        let id = context.parameters.get("decision_id") ?? ""
        guard let trace = serving.traces.trace(id) else {
            throw AdServeError.notFound("decision \(id) among the latest \(serving.traces.capacity) traced on this server")
        }
        return trace
    }

    func pathID(_ context: AdServeRequestContext) throws -> Int64 {
        guard let id = Self.positiveInteger(context.parameters.get("id")) else { throw AdServeError.invalid("id", "must be a positive integer") }
        return id
    }

    /// A positive integer written in digits alone: `Int64("+1")` is 1, but `/campaigns/+1` names no campaign.
    static func positiveInteger(_ raw: (some StringProtocol)?) -> Int64? {
        guard let raw, !raw.isEmpty, raw.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }), let value = Int64(raw), value > 0 else {
            return nil
        }
        return value
    }
}
