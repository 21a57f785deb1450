import CoreMetrics
import Domain
import Hummingbird
import Logging
import NIOHTTP1
import Prometheus

/// Metrics of the API, created once over an injected registry and exported at `/metrics`.
public struct Telemetry: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory
    let decisions: CoreMetrics.Counter
    let adsServed: CoreMetrics.Counter
    /// Ads placed by exploration (a subset of `adsServed`): the share exploration takes.
    let adsExplored: CoreMetrics.Counter
    let events: [EventType: CoreMetrics.Counter]
    let duplicateEvents: CoreMetrics.Counter
    let invalidClicks: [InvalidClickReason: CoreMetrics.Counter]

    public init(registry: PrometheusCollectorRegistry = PrometheusCollectorRegistry()) {
        self.registry = registry
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .seconds(1),
        ]
        self.factory = factory
        self.decisions = Counter(label: "adserve_decisions_total", factory: factory)
        self.adsServed = Counter(label: "adserve_ads_served_total", factory: factory)
        self.adsExplored = Counter(label: "adserve_ads_explored_total", factory: factory)
        var events: [EventType: CoreMetrics.Counter] = [:]
        for type in EventType.allCases {
            events[type] = Counter(label: "adserve_events_total", dimensions: [("type", type.rawValue)], factory: factory)
        }
        self.events = events
        self.duplicateEvents = Counter(label: "adserve_duplicate_events_total", factory: factory)
        var invalid: [InvalidClickReason: CoreMetrics.Counter] = [:]
        for reason in InvalidClickReason.allCases {
            invalid[reason] = Counter(label: "adserve_invalid_clicks_total", dimensions: [("reason", reason.rawValue)], factory: factory)
        }
        self.invalidClicks = invalid
    }

    func recordRequest(route: String, method: String, status: Int, seconds: Duration) {
        Counter(label: "adserve_http_requests_total", dimensions: [("route", route), ("method", method), ("status", String(status))], factory: factory)
            .increment()
        CoreMetrics.Timer(label: "adserve_http_request_duration_seconds", dimensions: [("route", route), ("method", method)], factory: factory)
            .recordNanoseconds(seconds.components.seconds * 1_000_000_000 + seconds.components.attoseconds / 1_000_000_000)
    }
}

/// Outermost middleware: turns every error into a JSON answer (4xx names the problem; anything
/// unexpected is a 500 without internals, logged once with the request id), then counts and
/// times the request per route.
struct ErrorAndMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let telemetry: Telemetry

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        func record(_ status: Int) {
            telemetry.recordRequest(
                route: context.endpointPath ?? "unmatched", method: request.method.rawValue, status: status, seconds: ContinuousClock.now - start)
        }
        let response: Response
        do {
            response = try await next(request, context)
        } catch let error as HTTPParserError {
            // A body the HTTP parser cannot read (a chunk size that is not hex): Hummingbird
            // answers 400 and closes the connection, whose stream is past reading. An answer
            // from here would be a second response on it.
            record(400)
            throw error
        } catch {
            response = Self.errorResponse(error, context: context)
        }
        record(response.status.code)
        return response
    }

    static func errorResponse(_ error: any Error, context: Context) -> Response {
        let status: HTTPResponse.Status
        let body: ErrorPayload.Body
        switch error {
        case let error as AdServeError where error.code != .storage:
            status = switch error.code {
            case .invalidInput: .badRequest
            case .unauthorized: .unauthorized
            case .forbidden: .forbidden
            case .notFound: .notFound
            case .conflict, .quotaExceeded: .conflict
            case .payloadTooLarge: .contentTooLarge
            case .expired: .gone
            case .tooManyRequests: .tooManyRequests
            case .unavailable: .serviceUnavailable
            default: .badRequest
            }
            if error.code == .unavailable {
                context.logger.warning("answered 503", metadata: ["error": "\(error.message)"])
            }
            body = .init(message: error.message, field: error.field, code: error.code.name)
        case let error as HTTPError where error.status.code < 500:
            status = error.status
            body = .init(message: error.body ?? error.status.reasonPhrase, field: nil, code: "http_\(error.status.code)")
        default:
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            status = .internalServerError
            body = .init(message: "internal error; see the server log for request \(context.id)", field: nil, code: "internal")
        }
        guard var response = try? JSON.response(ErrorPayload(error: body), status: status) else { return Response(status: .internalServerError) }
        if let error = error as? HTTPError, let allow = error.headers[.allow] { response.headers[.allow] = allow }
        if status == .serviceUnavailable || status == .tooManyRequests {
            // 429: the limiter's window; 503: a moment (a full disk or a burst may pass).
            let seconds = status == .tooManyRequests ? "60" : "1"
            response.headers[.retryAfter] = seconds
        }
        return response
    }
}
