import Foundation

/// Input limits and normalisation, in one place, with the JSON field names clients send.
public enum Limits {
    /// The largest bid or budget accepted: 10^15 micros (one billion currency units).
    public static let maxMoney: Micros = 1_000_000_000_000_000
    /// A campaign's `max_conversion_value_micros` unless it sets one: 10,000 units of currency.
    public static let defaultMaxConversionValueMicros: Micros = 10_000_000_000
    public static let maxNameLength = 200
    public static let maxTextLength = 5_000
    public static let maxListCount = 100
    public static let maxMediaURLs = 10
    /// An ad's content vector: the text space of the content encoder (all-MiniLM-L6-v2).
    public static let embeddingDimensions = 384
    /// Frequency-cap windows are at most a week, so delivery state keeps a week of impressions.
    public static let maxCapHours = 168
    /// Frequency caps one campaign may have (`frequency_caps`).
    public static let maxFrequencyCaps = 8
    /// The schemes a media URL may use.
    public static let mediaSchemes: Set<String> = ["https", "http", "file", "data"]

    /// Checks one piece of text an advertiser sends: at most `characters` characters and
    /// `4 × characters` UTF-8 bytes (a character count alone hides a large payload: one
    /// grapheme can hold many scalars), and no control characters (NUL, escape sequences, C1
    /// controls, the BOM and bidirectional overrides) — only `\n` and `\t` in long text.
    public static func checkText(_ text: String, field: String, characters: Int, required: Bool, multiline: Bool) throws(AdServeError) {
        if required && text.isEmpty { throw .invalid(field, "must be 1-\(characters) characters") }
        if required && text.allSatisfy(\.isWhitespace) { throw .invalid(field, "must not be blank") }
        if text.count > characters { throw .invalid(field, "at most \(characters) characters") }
        if text.utf8.count > 4 * characters { throw .invalid(field, "at most \(4 * characters) bytes of UTF-8") }
        for scalar in text.unicodeScalars {
            let v = scalar.value
            let control = v < 0x20 || (0x7F...0x9F).contains(v) || v == 0xFEFF || (0x202A...0x202E).contains(v) || (0x2066...0x2069).contains(v)
            if control && !(multiline && (v == 0x0A || v == 0x09)) {
                throw .invalid(field, "must not contain control characters (found U+\(String(v, radix: 16, uppercase: true)))")
            }
        }
    }
}

extension Targeting {
    /// Lower-cases and de-duplicates the lists, so matching compares like with like.
    public func normalized() -> Targeting {
        func clean(_ list: [String]) -> [String] {
            var seen = Set<String>()
            return list.map { $0.lowercased() }.filter { seen.insert($0).inserted }
        }
        return Targeting(
            ageMin: ageMin, ageMax: ageMax, genders: clean(genders), countries: clean(countries),
            languages: clean(languages), interests: clean(interests), devices: clean(devices))
    }

    public func validate() throws(AdServeError) {
        if let ageMin, !(0...130).contains(ageMin) { throw .invalid("targeting.age_min", "must be between 0 and 130") }
        if let ageMax, !(0...130).contains(ageMax) { throw .invalid("targeting.age_max", "must be between 0 and 130") }
        if let ageMin, let ageMax, ageMin > ageMax { throw .invalid("targeting.age_min", "must not exceed age_max") }
        for (name, list) in [("genders", genders), ("countries", countries), ("languages", languages), ("interests", interests), ("devices", devices)] {
            if list.count > Limits.maxListCount { throw .invalid("targeting.\(name)", "at most \(Limits.maxListCount) values") }
            if list.contains(where: { $0.isEmpty || $0.count > 64 }) { throw .invalid("targeting.\(name)", "values must be 1-64 characters") }
        }
    }
}

extension Campaign {
    public func validate() throws(AdServeError) {
        try Limits.checkText(name, field: "name", characters: Limits.maxNameLength, required: true, multiline: false)
        if bidMicros <= 0 || bidMicros > Limits.maxMoney { throw .invalid("bid_micros", "must be between 1 and \(Limits.maxMoney)") }
        if objective == .awareness && bidMicros % 1000 != 0 {
            // Billed per impression as bid / 1000: a multiple of 1000 keeps that exact.
            throw .invalid("bid_micros", "a CPM bid (per 1000 impressions) must be a multiple of 1000 micros")
        }
        if dailyBudgetMicros <= 0 || dailyBudgetMicros > Limits.maxMoney { throw .invalid("daily_budget_micros", "must be between 1 and \(Limits.maxMoney)") }
        if totalBudgetMicros <= 0 || totalBudgetMicros > Limits.maxMoney { throw .invalid("total_budget_micros", "must be between 1 and \(Limits.maxMoney)") }
        if let startAt, let endAt, startAt >= endAt { throw .invalid("end_at", "must be after start_at") }
        if maxConversionValueMicros < 0 || maxConversionValueMicros > Limits.maxMoney {
            throw .invalid("max_conversion_value_micros", "must be between 0 and \(Limits.maxMoney)")
        }
        try targeting.validate()
        if frequencyCaps.count > Limits.maxFrequencyCaps { throw .invalid("frequency_caps", "at most \(Limits.maxFrequencyCaps) caps") }
        for (i, cap) in frequencyCaps.enumerated() {
            // The original single cap keeps its field name in messages.
            let field = frequencyCaps.count == 1 && cap == frequencyCap ? "frequency_cap" : "frequency_caps[\(i)]"
            if !(1...10_000).contains(cap.impressions) { throw .invalid("\(field).impressions", "must be between 1 and 10000") }
            if let hours = cap.perHours, !(1...Limits.maxCapHours).contains(hours) {
                throw .invalid("\(field).per_hours", "must be between 1 and \(Limits.maxCapHours), or left out for a lifetime cap")
            }
        }
    }
}

/// Media URLs as the encoders read them.
public enum MediaURL {
    /// The bytes of a `data:` URL, which must be base64 and of an image/ or video/ type.
    public static func dataBytes(_ url: String, field: String) throws(AdServeError) -> [UInt8] {
        guard url.lowercased().hasPrefix("data:") else { throw AdServeError.invalid(field, "not a data URL") }
        guard let comma = url.firstIndex(of: ",") else { throw AdServeError.invalid(field, "a data URL needs a comma before its data") }
        let header = url[url.index(url.startIndex, offsetBy: 5)..<comma].lowercased()
        guard header.hasPrefix("image/") || header.hasPrefix("video/") else {
            throw AdServeError.invalid(field, "a data URL must hold an image/ or video/ type, not '\(header)'")
        }
        guard header.hasSuffix(";base64"), let data = Data(base64Encoded: String(url[url.index(after: comma)...])), !data.isEmpty else {
            throw AdServeError.invalid(field, "a data URL's media must be base64")
        }
        return [UInt8](data)
    }
}

extension Ad {
    public func validate() throws(AdServeError) {
        if mediaURLs.isEmpty || mediaURLs.count > Limits.maxMediaURLs { throw .invalid("media_urls", "must hold 1-\(Limits.maxMediaURLs) URLs") }
        for (i, url) in mediaURLs.enumerated() {
            let field = "media_urls[\(i)]"
            if url.isEmpty || url.utf8.count > 2048 { throw .invalid(field, "each URL must be 1-2048 bytes") }
            let scheme = url.prefix { $0 != ":" }.lowercased()
            guard scheme.count < url.count, Limits.mediaSchemes.contains(scheme) else {
                throw .invalid(field, "the URL's scheme must be one of https, http, file or data")
            }
            try Limits.checkText(url, field: field, characters: 2048, required: true, multiline: false)
            if scheme == "data" { _ = try MediaURL.dataBytes(url, field: field) }
        }
        try Limits.checkText(caption, field: "caption", characters: Limits.maxTextLength, required: false, multiline: true)
        try Limits.checkText(company, field: "company", characters: Limits.maxNameLength, required: true, multiline: false)
        try Limits.checkText(product, field: "product", characters: Limits.maxNameLength, required: false, multiline: false)
        try Limits.checkText(description, field: "description", characters: Limits.maxTextLength, required: false, multiline: true)
        if let embedding {
            if embedding.count != Limits.embeddingDimensions {
                throw .invalid("embedding", "must have \(Limits.embeddingDimensions) numbers (the text space of all-MiniLM-L6-v2), not \(embedding.count)")
            }
            if embedding.contains(where: { !$0.isFinite }) { throw .invalid("embedding", "numbers must be finite") }
        }
    }
}

extension UserProfile {
    public func normalized() -> UserProfile {
        var seen = Set<String>()
        return UserProfile(
            id: id, age: age, gender: gender?.lowercased(), country: country?.lowercased(), language: language?.lowercased(),
            interests: interests.map { $0.lowercased() }.filter { seen.insert($0).inserted }, personalization: personalization)
    }

    public func validate() throws(AdServeError) {
        if let age, !(0...130).contains(age) { throw .invalid("age", "must be between 0 and 130") }
        for (name, value) in [("gender", gender), ("country", country), ("language", language)] {
            if let value, value.isEmpty || value.count > 64 { throw .invalid(name, "must be 1-64 characters") }
        }
        if interests.count > Limits.maxListCount { throw .invalid("interests", "at most \(Limits.maxListCount) values") }
        if interests.contains(where: { $0.isEmpty || $0.count > 64 }) { throw .invalid("interests", "values must be 1-64 characters") }
    }
}

extension Activity {
    public func validate() throws(AdServeError) {
        if topics.count > Limits.maxListCount { throw .invalid("topics", "at most \(Limits.maxListCount) values") }
        if let text, text.count > Limits.maxTextLength { throw .invalid("text", "at most \(Limits.maxTextLength) characters") }
        if let seconds, !seconds.isFinite || seconds < 0 || seconds > 86_400 { throw .invalid("seconds", "must be between 0 and 86400") }
    }
}
