import Hummingbird
import Synchronization

/// The router's paths and the methods each answers, filled once the routes are added: what a
/// request on a known path with another method is told (405 and `Allow`), and what the test that
/// holds the router to `openapi.yaml` reads.
final class RouteTable: Sendable {
    struct Route: Sendable {
        /// Path segments; a capture (`{id}`, `:id`) is nil and matches any one segment.
        var segments: [Substring?]
        var methods: [String]
    }

    private let routes = Mutex<[Route]>([])

    func fill(_ descriptions: [(path: String, method: String)]) {
        var byPath: [String: [String]] = [:]
        for d in descriptions { byPath[d.path, default: []].append(d.method) }
        let table = byPath.map { path, methods in
            Route(segments: path.split(separator: "/").map { $0.hasPrefix(":") || $0.hasPrefix("{") ? nil : $0 }, methods: methods.sorted())
        }
        routes.withLock { $0 = table }
    }

    /// The methods routed on `path`, or nil if no route has that path.
    func methods(on path: String) -> [String]? {
        let parts = path.split(separator: "/")
        return routes.withLock { routes in
            var found: [String] = []
            for route in routes where route.segments.count == parts.count {
                if zip(route.segments, parts).allSatisfy({ $0.0 == nil || $0.0 == $0.1 }) { found += route.methods }
            }
            return found.isEmpty ? nil : found.sorted()
        }
    }
}

/// Turns the router's 404 for a known path asked with an unrouted method into 405 Method Not
/// Allowed with an `Allow` header, as HTTP says. A handler's own 404 (an unknown campaign) is
/// left alone: it is an `AdServeError`, and the router's is an `HTTPError` from its not-found
/// responder, which names the endpoint "NotFound".
struct MethodNotAllowedMiddleware<Context: RequestContext>: RouterMiddleware {
    let table: RouteTable

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound && (context.endpointPath ?? "NotFound") == "NotFound" {
            guard let allowed = table.methods(on: request.uri.path) else { throw error }
            throw HTTPError(.methodNotAllowed, headers: [.allow: allowed.joined(separator: ", ")], message: "\(request.method) is not allowed on this path")
        }
    }
}
