/// A domain error: a code that says what kind of failure it is, a message for humans and,
/// where the caller sent something wrong, the field at fault (`targeting.age_min`).
public struct AdServeError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        public let name: String
        public init(_ name: String) { self.name = name }
        public var description: String { name }

        public static let invalidInput = Code("invalid_input")
        public static let unauthorized = Code("unauthorized")
        public static let forbidden = Code("forbidden")
        public static let notFound = Code("not_found")
        public static let conflict = Code("conflict")
        public static let payloadTooLarge = Code("payload_too_large")
        public static let expired = Code("expired")
        public static let storage = Code("storage")
        /// A per-advertiser quota is reached (HTTP 409).
        public static let quotaExceeded = Code("quota_exceeded")
        /// Too many failed attempts from this client; retry later (HTTP 429).
        public static let tooManyRequests = Code("too_many_requests")
        /// A resource the request needs is unavailable right now (disk full, I/O error, overload):
        /// nothing was acknowledged; the client may retry (HTTP 503).
        public static let unavailable = Code("unavailable")
    }

    public let code: Code
    public let message: String
    public let field: String?

    public init(_ code: Code, _ message: String, field: String? = nil) {
        self.code = code
        self.message = message
        self.field = field
    }

    public static func invalid(_ field: String, _ message: String) -> AdServeError {
        AdServeError(.invalidInput, message, field: field)
    }

    public static func notFound(_ what: String) -> AdServeError {
        AdServeError(.notFound, "\(what) not found")
    }

    public var description: String {
        field.map { "\(code): \($0): \(message)" } ?? "\(code): \(message)"
    }
}
