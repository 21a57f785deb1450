/// A typed integer id: `AdID`, `CampaignID` and `AdvertiserID` cannot be mixed up.
public struct Identifier<Tag>: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: Int64

    @inlinable public init(_ rawValue: Int64) { self.rawValue = rawValue }

    public init(from decoder: any Decoder) throws {
        self.rawValue = try decoder.singleValueContainer().decode(Int64.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
    public var description: String { String(rawValue) }
}

public enum AdvertiserTag {}
public enum CampaignTag {}
public enum AdTag {}

public typealias AdvertiserID = Identifier<AdvertiserTag>
public typealias CampaignID = Identifier<CampaignTag>
public typealias AdID = Identifier<AdTag>

/// The feed backend's user id: 1–64 characters of `[A-Za-z0-9_-]`.
public struct UserID: Hashable, Sendable, Codable, CustomStringConvertible {
    public let rawValue: String

    public init(validating raw: String) throws(AdServeError) {
        guard UserID.isValid(raw) else {
            throw AdServeError(.invalidInput, "user id must be 1-64 characters of A-Z, a-z, 0-9, '_' or '-'", field: "user_id")
        }
        self.rawValue = raw
    }

    /// For ids code builds from a valid pattern (`"u\(n)"`); checked in debug builds.
    public init(trusted raw: String) {
        assert(UserID.isValid(raw), "invalid user id \(raw)")
        self.rawValue = raw
    }

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        self = try UserID(validating: raw)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }

    public static func isValid(_ raw: String) -> Bool {
        let utf8 = raw.utf8
        guard !utf8.isEmpty, utf8.count <= 64 else { return false }
        return utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F || c == 0x2D
        }
    }
}
