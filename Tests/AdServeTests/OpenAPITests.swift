import API
import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

/// The router held to `openapi.yaml`: the same routes both ways, the file served as it is in
/// the repository, and the HTTP answers the description promises for unknown paths and methods.
/// (The live check of every response against its schema is `scripts/openapi-fuzz.sh`, in CI.)
@Suite struct OpenAPITests {
    /// The repository's `openapi.yaml`, read from disk (the top-level link to the compiled-in file).
    static var repositoryDocument: String {
        get throws {
            let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            return try String(contentsOf: root.appendingPathComponent("openapi.yaml"), encoding: .utf8)
        }
    }

    /// "METHOD /path" for every operation under `paths:` (path parameters `{id}`, as the router
    /// describes its routes too).
    static func operations(in document: String) -> Set<String> {
        var operations = Set<String>()
        var inPaths = false
        var path: String?
        for line in document.split(separator: "\n", omittingEmptySubsequences: false) {
            if !line.hasPrefix(" ") && !line.hasPrefix("#") && !line.isEmpty { inPaths = line == "paths:" }
            guard inPaths else { continue }
            if line.hasPrefix("  /"), line.hasSuffix(":"), !line.hasPrefix("   ") {
                path = String(line.dropFirst(2).dropLast())
            } else if let path, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":") {
                let key = line.trimmingCharacters(in: .whitespaces).dropLast()
                if ["get", "put", "post", "patch", "delete", "head", "options"].contains(key) { operations.insert("\(key.uppercased()) \(path)") }
            }
        }
        return operations
    }

    @Test func everyRouteIsInTheDescriptionAndEveryOperationIsARoute() async throws {
        let world = try await TestWorld.make()
        let api = AdServeAPI(serving: world.serving, telemetry: Telemetry(), configuration: APIConfiguration(adminKey: APITests.admin))
        let routes = Set(api.router().routes.map { "\($0.method.rawValue) \($0.path)" })
        let described = Self.operations(in: try Self.repositoryDocument)
        #expect(routes.count >= 34, "\(routes.sorted())")
        #expect(routes.subtracting(described).isEmpty, "routed but not described: \(routes.subtracting(described).sorted())")
        #expect(described.subtracting(routes).isEmpty, "described but not routed: \(described.subtracting(routes).sorted())")
    }

    @Test func theServedDescriptionIsTheRepositorysFile() async throws {
        let repository = try Self.repositoryDocument
        try await APITests().withAPI { api, _ in
            let reply = try await api.call(.get, "/openapi.yaml", key: nil)
            #expect(reply.status == 200)
            #expect(reply.text == repository)
        }
        #expect(AdServeAPI.openAPIDocument.hasPrefix("# OpenAPI description"))
    }

    @Test func aKnownPathWithAnotherMethodIs405WithAllowAndAnUnknownPathIs404() async throws {
        let world = try await TestWorld.make()
        let api = AdServeAPI(serving: world.serving, telemetry: Telemetry(), configuration: APIConfiguration(adminKey: APITests.admin))
        let app = Application(router: api.router())
        try await app.test(.router) { client in
            let auth: HTTPFields = [.authorization: "Bearer \(APITests.admin)"]
            try await client.execute(uri: "/healthz", method: .delete) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "GET")
                #expect(String(buffer: response.body).contains(#""code":"http_405""#))
            }
            try await client.execute(uri: "/v1/campaigns/7", method: .delete, headers: auth) { response in
                #expect(response.status == .methodNotAllowed)
                #expect(response.headers[.allow] == "GET, PATCH")
            }
            try await client.execute(uri: "/v1/nowhere", method: .get, headers: auth) { response in
                #expect(response.status == .notFound)
                #expect(String(buffer: response.body).contains(#""code":"http_404""#))
            }
            // A handler's own 404 (no such campaign) stays a 404 naming the campaign.
            try await client.execute(uri: "/v1/campaigns/7", method: .get, headers: auth) { response in
                #expect(response.status == .notFound)
                #expect(String(buffer: response.body).contains("campaign 7"))
            }
        }
    }

    /// Found by the fuzzer: a page too short for an ad got a decision id that explain did not know.
    @Test func aDecisionWithNoSlotIsExplainedToo() async throws {
        try await APITests().withAPI { api, _ in
            let decision = try await api.call(.post, "/v1/decisions", key: APITests.feed, json: #"{"user_id":"u1","organic_count":0}"#)
            #expect(decision.status == 200 && (decision["ads"] as? [Any])?.isEmpty == true, "\(decision.text)")
            let id = try #require(decision["decision_id"] as? String)
            let explain = try await api.call(.get, "/v1/decisions/\(id)/explain")
            #expect(explain.status == 200, "\(explain.text)")
            #expect(explain["slots"] as? Int == 0)
            #expect((explain["placements"] as? [Any])?.isEmpty == true)
        }
    }

    @Test func aBooleanFieldTakesOnlyTrueOrFalse() async throws {
        try await APITests().withAPI { api, _ in
            let zero = try await api.call(.put, "/v1/users/u1", key: APITests.feed, json: #"{"personalization":0}"#)
            #expect(zero.status == 400 && zero.errorField == "personalization", "\(zero.text)")
            let no = try await api.call(.put, "/v1/users/u1", key: APITests.feed, json: #"{"personalization":false}"#)
            #expect(no.status == 200 && no["personalization"] as? Bool == false, "\(no.text)")
        }
    }
}
