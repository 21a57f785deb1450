import Domain
import Events
import Foundation
import Hummingbird
import Serving
import Storage

/// Configuration of the HTTP API, with a default for every field.
public struct APIConfiguration: Sendable {
    public var adminKey: String
    /// The feed backend's key. Without one, feed routes accept only the admin key.
    public var feedKey: String?
    /// If set, `/metrics` needs this key (or the admin key); otherwise it is open.
    public var metricsKey: String?
    public var maxBodyBytes = 1 << 20
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
        self.catalog = CatalogService(store: serving.store, catalog: serving.catalog, clock: serving.clock)
        self.events = EventIngestor(serving: serving)
        self.reports = Reports(store: serving.store)
        self.auth = Authenticator(adminKey: configuration.adminKey, feedKey: configuration.feedKey, metricsKey: configuration.metricsKey, store: serving.store)
        self.telemetry = telemetry
        self.configuration = configuration
    }

    public func router() -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: LogRequestsMiddleware(.info))
        router.add(middleware: ErrorAndMetricsMiddleware(telemetry: telemetry))
        addOperationRoutes(to: router)
        addCatalogRoutes(to: router)
        addServingRoutes(to: router)
        addReportRoutes(to: router)
        return router
    }

    func body<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        try await JSON.decode(type, from: request, limit: configuration.maxBodyBytes)
    }

    // MARK: Operations

    func addOperationRoutes(to router: Router<BasicRequestContext>) {
        router.get("/healthz") { _, _ in
            try JSON.response(["status": "ok"])
        }
        router.get("/metrics") { request, _ in
            if configuration.metricsKey != nil { try auth.requireMetrics(request) }
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: telemetry.registry.emitToBuffer())))
        }
    }

    // MARK: Catalog

    func addCatalogRoutes(to router: Router<BasicRequestContext>) {
        router.post("/v1/advertisers") { request, _ in
            try await auth.principal(request).requireAdmin()
            let input = try await body(CreateAdvertiserBody.self, request)
            let (advertiser, key) = try await catalog.createAdvertiser(name: input.name)
            return try JSON.response(AdvertiserPayload(id: advertiser.id.rawValue, name: advertiser.name, apiKey: key), status: .created)
        }
        router.get("/v1/advertisers/:id/campaigns") { request, context in
            let principal = try await auth.principal(request)
            let id = AdvertiserID(try pathID(context))
            try principal.requireOwner(id, else: AdServeError.notFound("advertiser \(id)"))
            guard try await serving.store.advertiser(id) != nil else { throw AdServeError.notFound("advertiser \(id)") }
            let campaigns = try await serving.store.campaigns(of: id)
            return try JSON.response(CampaignListPayload(campaigns: campaigns.map { CampaignPayload($0) }))
        }
        router.post("/v1/campaigns") { request, _ in
            let principal = try await auth.principal(request)
            let input = try await body(CreateCampaignBody.self, request)
            try principal.requireOwner(
                AdvertiserID(input.advertiserId), else: AdServeError(.notFound, "advertiser \(input.advertiserId) not found", field: "advertiser_id"))
            let draft = Campaign(
                id: CampaignID(0), advertiserID: AdvertiserID(input.advertiserId), name: input.name, objective: input.objective,
                bidMicros: input.bidMicros, dailyBudgetMicros: input.dailyBudgetMicros, totalBudgetMicros: input.totalBudgetMicros,
                startAt: try input.startAt.map { try Timestamp(iso8601: $0, field: "start_at") },
                endAt: try input.endAt.map { try Timestamp(iso8601: $0, field: "end_at") },
                targeting: input.targeting?.targeting ?? Targeting(),
                frequencyCap: input.frequencyCap.map { FrequencyCap(impressions: $0.impressions, perHours: $0.perHours) },
                status: input.status ?? .active, createdAt: serving.clock.now())
            let created = try await catalog.createCampaign(draft)
            return try JSON.response(CampaignPayload(created), status: .created)
        }
        router.get("/v1/campaigns/:id") { request, context in
            let principal = try await auth.principal(request)
            let campaign = try await ownedCampaign(CampaignID(try pathID(context)), principal)
            let spend = serving.delivery.spend(of: campaign.id, snapshot: serving.catalog.snapshot, day: serving.clock.now().day)
            return try JSON.response(CampaignPayload(campaign, spend: spend))
        }
        router.patch("/v1/campaigns/:id") { request, context in
            let principal = try await auth.principal(request)
            let id = CampaignID(try pathID(context))
            _ = try await ownedCampaign(id, principal)
            let patch = try await body(PatchCampaignBody.self, request)
            let startAt = try patch.startAt.map { try Timestamp(iso8601: $0, field: "start_at") }
            let endAt = try patch.endAt.map { try Timestamp(iso8601: $0, field: "end_at") }
            let updated = try await catalog.updateCampaign(id) { campaign in
                if let v = patch.name { campaign.name = v }
                if let v = patch.status { campaign.status = v }
                if let v = patch.bidMicros { campaign.bidMicros = v }
                if let v = patch.dailyBudgetMicros { campaign.dailyBudgetMicros = v }
                if let v = patch.totalBudgetMicros { campaign.totalBudgetMicros = v }
                if let startAt { campaign.startAt = startAt }
                if let endAt { campaign.endAt = endAt }
                if let v = patch.targeting { campaign.targeting = v.targeting }
                if let v = patch.frequencyCap { campaign.frequencyCap = FrequencyCap(impressions: v.impressions, perHours: v.perHours) }
            }
            return try JSON.response(CampaignPayload(updated))
        }
        router.post("/v1/ads") { request, _ in
            let principal = try await auth.principal(request)
            let input = try await body(CreateAdBody.self, request)
            let missing = AdServeError(.notFound, "campaign \(input.campaignId) not found", field: "campaign_id")
            guard let campaign = try await serving.store.campaign(CampaignID(input.campaignId)) else { throw missing }
            try principal.requireOwner(campaign.advertiserID, else: missing)
            let draft = Ad(
                id: AdID(0), campaignID: campaign.id, format: input.format, mediaURLs: input.mediaUrls, caption: input.caption,
                company: input.company, product: input.product, description: input.description, embedding: input.embedding,
                status: input.status ?? .active, createdAt: serving.clock.now())
            let created = try await catalog.createAd(draft)
            return try JSON.response(AdPayload(created), status: .created)
        }
        router.get("/v1/ads/:id") { request, context in
            let principal = try await auth.principal(request)
            return try JSON.response(AdPayload(try await ownedAd(AdID(try pathID(context)), principal)))
        }
        router.patch("/v1/ads/:id") { request, context in
            let principal = try await auth.principal(request)
            let id = AdID(try pathID(context))
            _ = try await ownedAd(id, principal)
            let patch = try await body(PatchAdBody.self, request)
            let updated = try await catalog.updateAd(id) { ad in
                if let v = patch.status { ad.status = v }
                if let v = patch.mediaUrls { ad.mediaURLs = v }
                if let v = patch.caption { ad.caption = v }
                if let v = patch.company { ad.company = v }
                if let v = patch.product { ad.product = v }
                if let v = patch.description { ad.description = v }
                if let v = patch.embedding { ad.embedding = v }
            }
            return try JSON.response(AdPayload(updated))
        }
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

    func addServingRoutes(to router: Router<BasicRequestContext>) {
        router.put("/v1/users/:id") { request, context in
            try await auth.principal(request).requireFeed()
            let id = try UserID(validating: context.parameters.get("id") ?? "")
            let input = try await body(PutUserBody.self, request)
            let profile = UserProfile(
                id: id, age: input.age, gender: input.gender, country: input.country, language: input.language,
                interests: input.interests ?? [])
            try await serving.putUser(profile)
            return try JSON.response(UserPayload(profile.normalized()))
        }
        router.get("/v1/users/:id") { request, context in
            try await auth.principal(request).requireFeed()
            let id = try UserID(validating: context.parameters.get("id") ?? "")
            guard let profile = try await serving.store.user(id) else { throw AdServeError.notFound("user \(id)") }
            return try JSON.response(UserPayload(profile))
        }
        router.post("/v1/users/:id/activity") { request, context in
            try await auth.principal(request).requireFeed()
            let id = try UserID(validating: context.parameters.get("id") ?? "")
            let input = try await body(ActivityBody.self, request)
            let activity = Activity(
                userID: id, type: input.type, topics: (input.topics ?? []).map { $0.lowercased() }, text: input.text,
                adID: input.adId.map(AdID.init), seconds: input.seconds, at: serving.clock.now())
            try activity.validate()
            try await serving.store.appendActivity(activity)
            return try JSON.response(AcceptedPayload(accepted: true), status: .accepted)
        }
        router.post("/v1/decisions") { request, _ in
            try await auth.principal(request).requireFeed()
            let input = try await body(DecisionBody.self, request)
            let userID = try UserID(validating: input.userId)
            let context = FeedContext(device: input.context?.device, hour: input.context?.hour, sessionPosition: input.context?.sessionPosition)
            let decision = try await serving.decide(userID: userID, context: context, organicCount: input.organicCount)
            telemetry.decisions.increment()
            telemetry.adsServed.increment(by: Int64(decision.placements.count))
            return try JSON.response(DecisionPayload(decision))
        }
        router.post("/v1/events") { request, _ in
            try await auth.principal(request).requireFeed()
            let input = try await body(EventBody.self, request)
            let result = try await events.ingest(IncomingEvent(type: input.type, impressionToken: input.impressionToken, valueMicros: input.valueMicros))
            if result.duplicate { telemetry.duplicateEvents.increment() } else { telemetry.events[input.type]?.increment() }
            return try JSON.response(AcceptedPayload(accepted: true, duplicate: result.duplicate))
        }
    }

    // MARK: Reports

    func addReportRoutes(to router: Router<BasicRequestContext>) {
        router.get("/v1/reports/campaigns/:id") { request, context in
            let principal = try await auth.principal(request)
            let campaign = try await ownedCampaign(CampaignID(try pathID(context)), principal)
            return try JSON.response(ReportPayload(campaignID: campaign.id, try await reports.campaign(campaign.id)))
        }
        router.get("/v1/reports/ads/:id") { request, context in
            let principal = try await auth.principal(request)
            let ad = try await ownedAd(AdID(try pathID(context)), principal)
            return try JSON.response(ReportPayload(adID: ad.id, try await reports.ad(ad.id)))
        }
    }

    func pathID(_ context: BasicRequestContext) throws -> Int64 {
        guard let raw = context.parameters.get("id"), let id = Int64(raw), id > 0 else {
            throw AdServeError.invalid("id", "must be a positive integer")
        }
        return id
    }
}
