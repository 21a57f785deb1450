import Domain
import Hummingbird
import Synchronization

/// The request context of AdServe's routes: Hummingbird's core context, the client's address
/// (which the failed-authentication limit counts by), who the key names, and the JSON coders
/// handlers decode bodies and encode answers through.
public struct AdServeRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The peer's IP address ("unknown" for a test channel without one). Proxies' forwarding
    /// headers are not trusted: a client could name any address in them.
    public let clientAddress: String
    /// Who the request's key names: set by `AuthenticationMiddleware` on the /v1 routes.
    var principal: Principal?
    /// The largest request body read: set by `BodyLimitMiddleware` from the configuration.
    var bodyLimit = APIConfiguration.defaultMaxBodyBytes

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.clientAddress = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    public var maxUploadSize: Int { bodyLimit }
    /// `request.decode(as:context:)`: bounded, depth-checked, every error naming its field.
    public var requestDecoder: JSON.RequestCoder { JSON.RequestCoder(limit: bodyLimit) }
    /// Handlers return payloads; they are written with one shared encoder (snake_case keys).
    public var responseEncoder: JSON.ResponseCoder { JSON.ResponseCoder() }

    /// The principal of an authenticated route (a 401 if the route was not behind the middleware).
    func requirePrincipal() throws(AdServeError) -> Principal {
        guard let principal else { throw AdServeError(.unauthorized, "missing Authorization: Bearer KEY header") }
        return principal
    }
}

/// Resolves the request's key to its principal, into the context, before any /v1 handler runs.
struct AuthenticationMiddleware: RouterMiddleware {
    typealias Context = AdServeRequestContext
    let auth: Authenticator

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.principal = try await auth.principal(request, context)
        return try await next(request, context)
    }
}

/// Puts the configured body limit in the context, where its decoder reads it.
struct BodyLimitMiddleware: RouterMiddleware {
    typealias Context = AdServeRequestContext
    let limit: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var context = context
        context.bodyLimit = limit
        return try await next(request, context)
    }
}

/// Failed authentications per client address in fixed windows: past `limit` wrong keys in a
/// window, the address gets 429 until the window ends — also with a right key, so guessing
/// cannot continue between valid requests. At most `maxTracked` addresses are remembered; past
/// that, finished windows are forgotten first, and if every window is still open all are.
final class FailedAuthLimiter: Sendable {
    private struct Window {
        var start: Int64
        var failures: Int
    }

    let limit: Int
    let windowMilliseconds: Int64
    let maxTracked: Int
    private let clock: any WallClock
    private let windows = Mutex<[String: Window]>([:])

    init(limit: Int, windowMilliseconds: Int64 = 60_000, maxTracked: Int = 100_000, clock: any WallClock) {
        self.limit = limit
        self.windowMilliseconds = windowMilliseconds
        self.maxTracked = maxTracked
        self.clock = clock
    }

    /// Throws `tooManyRequests` if `address` used up its failures in the current window.
    func check(_ address: String) throws(AdServeError) {
        let now = clock.now().milliseconds
        let retryAfter: Int64? = windows.withLock { windows in
            guard let window = windows[address], now - window.start < windowMilliseconds, window.failures >= limit else { return nil }
            return (window.start + windowMilliseconds - now + 999) / 1000
        }
        if let retryAfter {
            throw AdServeError(.tooManyRequests, "too many failed authentications from this address; retry after \(retryAfter) s")
        }
    }

    func recordFailure(_ address: String) {
        let now = clock.now().milliseconds
        windows.withLock { windows in
            if var window = windows[address], now - window.start < windowMilliseconds {
                window.failures += 1
                windows[address] = window
                return
            }
            if windows.count >= maxTracked {
                windows = windows.filter { now - $0.value.start < windowMilliseconds }
                if windows.count >= maxTracked { windows.removeAll() }
            }
            windows[address] = Window(start: now, failures: 1)
        }
    }
}

/// Answers 503 (with `Retry-After: 1`) past `limit` requests in flight, so a flood of slow
/// requests queues no unbounded work; `/healthz` is always answered.
struct ConcurrencyLimitMiddleware<Context: RequestContext>: RouterMiddleware {
    private final class Counter: Sendable {
        let inFlight = Atomic<Int>(0)
    }

    let limit: Int
    private let counter = Counter()

    init(limit: Int) { self.limit = limit }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        if request.uri.path == "/healthz" { return try await next(request, context) }
        let now = counter.inFlight.wrappingAdd(1, ordering: .relaxed).newValue
        defer { counter.inFlight.wrappingSubtract(1, ordering: .relaxed) }
        guard now <= limit else {
            throw AdServeError(.unavailable, "the server is handling \(limit) requests; retry shortly")
        }
        return try await next(request, context)
    }
}
