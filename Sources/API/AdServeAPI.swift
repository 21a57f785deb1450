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
    public var maxBodyBytes = 1 << 20
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

    public init(serving: DecisionService, telemetry: Telemetry, configuration: APIConfiguration) {
        self.serving = serving
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
        addOperationRoutes(to: router)
        addCatalogRoutes(to: router)
        addServingRoutes(to: router)
        addReportRoutes(to: router)
        addExplanationRoutes(to: router)
        table.fill(router.routes.map { ("\($0.path)", $0.method.rawValue) })
        return router
    }

    /// The OpenAPI description served at GET /openapi.yaml: the repo's `openapi.yaml`, compiled in.
    public static let openAPIDocument = String(decoding: PackageResources.openapi_yaml, as: UTF8.self)
    /// The web dashboard (`dashboard.html`, compiled in): one page whose script reads the JSON API
    /// with the key its user gives, which stays in the browser tab's session storage.
    static let dashboardPage = String(decoding: PackageResources.dashboard_html, as: UTF8.self)
    /// The page runs only its own script (named by its SHA-256, so no injected script runs) and
    /// talks only to this server.
    static let dashboardPolicy: String = {
        var hash = ""
        if let open = dashboardPage.range(of: "<script>"), let close = dashboardPage.range(of: "</script>", range: open.upperBound..<dashboardPage.endIndex) {
            hash = Data(SHA256.hash(Array(dashboardPage[open.upperBound..<close.lowerBound].utf8))).base64EncodedString()
        }
        return "default-src 'none'; script-src 'sha256-\(hash)'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; "
            + "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    }()

    func body<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        try await JSON.decode(type, from: request, limit: configuration.maxBodyBytes)
    }

    // MARK: Operations

    func addOperationRoutes(to router: Router<AdServeRequestContext>) {
        router.get("/healthz") { _, _ in
            try JSON.response(["status": "ok"])
        }
        router.get("/openapi.yaml") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "application/yaml; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: Self.openAPIDocument)))
        }
        router.get("/dashboard") { _, _ in
            Response(
                status: .ok, headers: [.contentType: "text/html; charset=utf-8", .contentSecurityPolicy: Self.dashboardPolicy],
                body: ResponseBody(byteBuffer: ByteBuffer(string: Self.dashboardPage)))
        }
        router.get("/v1/whoami") { request, context in
            switch try await auth.principal(request, context) {
            case .admin: return try JSON.response(WhoAmIPayload(role: "admin"))
            case .feed: return try JSON.response(WhoAmIPayload(role: "feed"))
            case .advertiser(let id):
                let advertiser = try await serving.store.advertiser(id)
                return try JSON.response(WhoAmIPayload(role: "advertiser", advertiserId: id.rawValue, advertiserName: advertiser?.name))
            }
        }
        router.get("/metrics") { request, context in
            if configuration.metricsKey != nil { try auth.requireMetrics(request, context) }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: telemetry.registry.emitToBuffer())))
        }
    }

    // MARK: Catalog

    func addCatalogRoutes(to router: Router<AdServeRequestContext>) {
        router.post("/v1/advertisers") { request, context in
            try await auth.principal(request, context).requireAdmin()
            let input = try await body(CreateAdvertiserBody.self, request)
            let (advertiser, key) = try await catalog.createAdvertiser(name: input.name)
            return try JSON.response(AdvertiserPayload(id: advertiser.id.rawValue, name: advertiser.name, apiKey: key), status: .created)
        }
        router.post("/v1/advertisers/:id/keys") { request, context in
            let id = try await ownedAdvertiser(request, context)
            let (key, apiKey) = try await catalog.createKey(for: id)
            return try JSON.response(KeyPayload(key, apiKey: apiKey), status: .created)
        }
        router.get("/v1/advertisers/:id/keys") { request, context in
            let id = try await ownedAdvertiser(request, context)
            return try JSON.response(KeyListPayload(keys: try await serving.store.keys(of: id).map { KeyPayload($0) }))
        }
        router.delete("/v1/advertisers/:id/keys/:key_id") { request, context in
            let id = try await ownedAdvertiser(request, context)
            guard let raw = context.parameters.get("key_id"), let keyID = Int64(raw), keyID > 0 else {
                throw AdServeError.invalid("key_id", "must be a positive integer")
            }
            return try JSON.response(KeyPayload(try await catalog.revokeKey(keyID, of: id)))
        }
        router.get("/v1/advertisers/:id/campaigns") { request, context in
            let principal = try await auth.principal(request, context)
            let id = AdvertiserID(try pathID(context))
            try principal.requireOwner(id, else: AdServeError.notFound("advertiser \(id)"))
            guard try await serving.store.advertiser(id) != nil else { throw AdServeError.notFound("advertiser \(id)") }
            let campaigns = try await serving.store.campaigns(of: id)
            return try JSON.response(CampaignListPayload(campaigns: campaigns.map { CampaignPayload($0) }))
        }
        router.post("/v1/campaigns") { request, context in
            let principal = try await auth.principal(request, context)
            let input = try await body(CreateCampaignBody.self, request)
            try principal.requireOwner(
                AdvertiserID(input.advertiserId), else: AdServeError(.notFound, "advertiser \(input.advertiserId) not found", field: "advertiser_id"))
            let draft = try input.draft(at: serving.clock.now())
            let created = try await catalog.createCampaign(draft)
            return try JSON.response(CampaignPayload(created), status: .created)
        }
        router.get("/v1/campaigns/:id") { request, context in
            let principal = try await auth.principal(request, context)
            let campaign = try await ownedCampaign(CampaignID(try pathID(context)), principal)
            let spend = serving.delivery.spend(of: campaign.id, snapshot: serving.catalog.snapshot, day: serving.clock.now().day)
            return try JSON.response(CampaignPayload(campaign, spend: spend))
        }
        router.patch("/v1/campaigns/:id") { request, context in
            let principal = try await auth.principal(request, context)
            let id = CampaignID(try pathID(context))
            _ = try await ownedCampaign(id, principal)
            let patch = try await body(PatchCampaignBody.self, request)
            let change = try patch.change()
            let updated = try await catalog.updateCampaign(id) { change(&$0) }
            return try JSON.response(CampaignPayload(updated))
        }
        router.post("/v1/ads") { request, context in
            let principal = try await auth.principal(request, context)
            let input = try await body(CreateAdBody.self, request)
            let missing = AdServeError(.notFound, "campaign \(input.campaignId) not found", field: "campaign_id")
            guard let campaign = try await serving.store.campaign(CampaignID(input.campaignId)) else { throw missing }
            try principal.requireOwner(campaign.advertiserID, else: missing)
            try refuseFileMedia(input.mediaUrls)
            let created = try await catalog.createAd(input.draft(at: serving.clock.now()))
            return try JSON.response(AdPayload(created), status: .created)
        }
        router.get("/v1/campaigns/:id/ads") { request, context in
            let principal = try await auth.principal(request, context)
            let campaign = try await ownedCampaign(CampaignID(try pathID(context)), principal)
            return try JSON.response(AdListPayload(ads: try await serving.store.ads(of: campaign.id).map { AdPayload($0) }))
        }
        router.get("/v1/ads/:id") { request, context in
            let principal = try await auth.principal(request, context)
            return try JSON.response(AdPayload(try await ownedAd(AdID(try pathID(context)), principal)))
        }
        router.patch("/v1/ads/:id") { request, context in
            let principal = try await auth.principal(request, context)
            let id = AdID(try pathID(context))
            _ = try await ownedAd(id, principal)
            let patch = try await body(PatchAdBody.self, request)
            try refuseFileMedia(patch.mediaUrls ?? [])
            let updated = try await catalog.updateAd(id) { patch.apply(to: &$0) }
            return try JSON.response(AdPayload(updated))
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
    func ownedAdvertiser(_ request: Request, _ context: AdServeRequestContext) async throws -> AdvertiserID {
        let principal = try await auth.principal(request, context)
        let id = AdvertiserID(try pathID(context))
        try principal.requireOwner(id, else: AdServeError.notFound("advertiser \(id)"))
        guard try await serving.store.advertiser(id) != nil else { throw AdServeError.notFound("advertiser \(id)") }
        return id
    }

    func ownedCampaign(_ id: CampaignID, _ principal: Principal) async throws -> Campaign {
        guard let campaign = try await serving.store.campaign(id) else { throw AdServeError.notFound("campaign \(id)") }
        try principal.requireOwner(campaign.advertiserID, else: AdServeError.notFound("campaign \(id)"))
        return campaign
    }

    func ownedAd(_ id: AdID, _ principal: Principal) async throws -> Ad {
        guard let ad = try await serving.store.ad(id) else { throw AdServeError.notFound("ad \(id)") }
        guard let campaign = try await serving.store.campaign(ad.campaignID) else { throw AdServeError.notFound("ad \(id)") }
        try principal.requireOwner(campaign.advertiserID, else: AdServeError.notFound("ad \(id)"))
        return ad
    }

    // MARK: Users, decisions, events

    func addServingRoutes(to router: Router<AdServeRequestContext>) {
        router.put("/v1/users/:id") { request, context in
            try await auth.principal(request, context).requireFeed()
            let id = try UserID(validating: context.parameters.get("id") ?? "")
            let input = try await body(PutUserBody.self, request)
            // A profile update that leaves the opt-out out keeps the user's choice.
            var personalization = input.personalization
            if personalization == nil { personalization = try await serving.store.user(id)?.personalization }
            let profile = UserProfile(
                id: id, age: input.age, gender: input.gender, country: input.country, language: input.language,
                interests: input.interests ?? [], personalization: personalization ?? true)
            try await serving.putUser(profile)
            return try JSON.response(UserPayload(profile.normalized()))
        }
        router.get("/v1/users/:id") { request, context in
            try await auth.principal(request, context).requireFeed()
            let id = try UserID(validating: context.parameters.get("id") ?? "")
            guard let profile = try await serving.store.user(id) else { throw AdServeError.notFound("user \(id)") }
            return try JSON.response(UserPayload(profile))
        }
        router.post("/v1/users/:id/activity") { request, context in
            try await auth.principal(request, context).requireFeed()
            let id = try UserID(validating: context.parameters.get("id") ?? "")
            let input = try await body(ActivityBody.self, request)
            let activity = Activity(
                userID: id, type: input.type, topics: (input.topics ?? []).map { $0.lowercased() }, text: input.text,
                adID: input.adId.map(AdID.init), seconds: input.seconds, at: serving.clock.now())
            try activity.validate()
            try await serving.store.appendActivity(activity)
            return try JSON.response(AcceptedPayload(accepted: true), status: .accepted)
        }
        router.post("/v1/decisions") { request, context in
            try await auth.principal(request, context).requireFeed()
            let input = try await body(DecisionBody.self, request)
            let userID = try UserID(validating: input.userId)
            let context = FeedContext(device: input.context?.device, hour: input.context?.hour, sessionPosition: input.context?.sessionPosition)
            let decision = try await serving.decide(userID: userID, context: context, organicCount: input.organicCount)
            telemetry.decisions.increment()
            telemetry.adsServed.increment(by: Int64(decision.placements.count))
            let explored = decision.placements.count { $0.explored }
            if explored > 0 { telemetry.adsExplored.increment(by: Int64(explored)) }
            return try JSON.response(DecisionPayload(decision))
        }
        router.post("/v1/events") { request, context in
            try await auth.principal(request, context).requireFeed()
            let input = try await body(EventBody.self, request)
            let result = try await events.ingest(IncomingEvent(type: input.type, impressionToken: input.impressionToken, valueMicros: input.valueMicros))
            if result.duplicate {
                telemetry.duplicateEvents.increment()
            } else if let reason = result.invalidReason {
                telemetry.invalidClicks[reason]?.increment()
            } else {
                telemetry.events[input.type]?.increment()
            }
            return try JSON.response(AcceptedPayload(accepted: true, duplicate: result.duplicate, invalid: result.invalidReason))
        }
        router.post("/v1/token-secret/rotate") { request, context in
            try await auth.principal(request, context).requireAdmin()
            let input = try await body(RotateSecretBody.self, request)
            if let grace = input.graceSeconds, grace < 0 || grace > 30 * 86_400 {
                throw AdServeError.invalid("grace_seconds", "must be between 0 and 2592000 (30 days)")
            }
            let until = try await serving.rotateTokenSecret(graceMilliseconds: input.graceSeconds.map { $0 * 1000 })
            return try JSON.response(RotatedSecretPayload(rotated: true, previousValidUntil: until.iso8601))
        }
    }

    // MARK: Reports

    func addReportRoutes(to router: Router<AdServeRequestContext>) {
        router.get("/v1/reports/campaigns/:id") { request, context in
            let principal = try await auth.principal(request, context)
            let campaign = try await ownedCampaign(CampaignID(try pathID(context)), principal)
            return try JSON.response(ReportPayload(campaignID: campaign.id, try await reports.campaign(campaign.id)))
        }
        router.get("/v1/reports/ads/:id") { request, context in
            let principal = try await auth.principal(request, context)
            let ad = try await ownedAd(AdID(try pathID(context)), principal)
            return try JSON.response(ReportPayload(adID: ad.id, try await reports.ad(ad.id)))
        }
    }

    func addExplanationRoutes(to router: Router<AdServeRequestContext>) {
        router.get("/v1/decisions/:decision_id/explain") { request, context in
            try await auth.principal(request, context).requireAdmin()
            let trace = try traced(context)
            return try JSON.response(ExplainPayload(trace, ranker: serving.ranker))
        }
        router.get("/v1/decisions/:decision_id/why") { request, context in
            try await auth.principal(request, context).requireFeed()
            let trace = try traced(context)
            guard let raw = request.uri.queryParameters.get("ad_id") else { throw AdServeError.invalid("ad_id", "is required: the ad the user asks about") }
            guard let id = Int64(raw), id > 0 else { throw AdServeError.invalid("ad_id", "must be a positive integer") }
            guard let placed = trace.placed.first(where: { $0.candidate.adID.rawValue == id }) else {
                throw AdServeError.notFound("ad \(id) in decision \(trace.decisionID)")
            }
            let contributions = serving.ranker.contributions(placed.candidate, user: trace.profile, context: trace.context)
            let text = WhyThisAd.text(trace: trace, placed: placed, campaign: serving.catalog.campaign(placed.candidate.campaignID), contributions: contributions)
            return try JSON.response(WhyPayload(decisionId: trace.decisionID, adId: id, personalized: trace.personalized, text: text))
        }
        router.get("/v1/reports/campaigns/:id/losses") { request, context in
            let principal = try await auth.principal(request, context)
            let campaign = try await ownedCampaign(CampaignID(try pathID(context)), principal)
            return try JSON.response(
                LossesPayload(campaignID: campaign.id, counts: serving.losses.counts(of: campaign.id), sampleRate: serving.configuration.lossSampleRate))
        }
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
        guard let raw = context.parameters.get("id"), let id = Int64(raw), id > 0 else {
            throw AdServeError.invalid("id", "must be a positive integer")
        }
        return id
    }
}
