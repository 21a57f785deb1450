/// Input limits and normalisation, in one place, with the JSON field names clients send.
public enum Limits {
    /// The largest bid or budget accepted: 10^15 micros (one billion currency units).
    public static let maxMoney: Micros = 1_000_000_000_000_000
    public static let maxNameLength = 200
    public static let maxTextLength = 5_000
    public static let maxListCount = 100
    public static let maxMediaURLs = 10
    public static let maxEmbeddingDimensions = 1_024
    /// Frequency-cap windows are at most a week, so delivery state keeps a week of impressions.
    public static let maxCapHours = 168
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
        if name.isEmpty || name.count > Limits.maxNameLength { throw .invalid("name", "must be 1-\(Limits.maxNameLength) characters") }
        if bidMicros <= 0 || bidMicros > Limits.maxMoney { throw .invalid("bid_micros", "must be between 1 and \(Limits.maxMoney)") }
        if objective == .awareness && bidMicros % 1000 != 0 {
            // Billed per impression as bid / 1000: a multiple of 1000 keeps that exact.
            throw .invalid("bid_micros", "a CPM bid (per 1000 impressions) must be a multiple of 1000 micros")
        }
        if dailyBudgetMicros <= 0 || dailyBudgetMicros > Limits.maxMoney { throw .invalid("daily_budget_micros", "must be between 1 and \(Limits.maxMoney)") }
        if totalBudgetMicros <= 0 || totalBudgetMicros > Limits.maxMoney { throw .invalid("total_budget_micros", "must be between 1 and \(Limits.maxMoney)") }
        if let startAt, let endAt, startAt >= endAt { throw .invalid("end_at", "must be after start_at") }
        try targeting.validate()
        if let cap = frequencyCap {
            if !(1...10_000).contains(cap.impressions) { throw .invalid("frequency_cap.impressions", "must be between 1 and 10000") }
            if !(1...Limits.maxCapHours).contains(cap.perHours) { throw .invalid("frequency_cap.per_hours", "must be between 1 and \(Limits.maxCapHours)") }
        }
    }
}

extension Ad {
    public func validate() throws(AdServeError) {
        if mediaURLs.isEmpty || mediaURLs.count > Limits.maxMediaURLs { throw .invalid("media_urls", "must hold 1-\(Limits.maxMediaURLs) URLs") }
        if mediaURLs.contains(where: { $0.isEmpty || $0.count > 2048 }) { throw .invalid("media_urls", "each URL must be 1-2048 characters") }
        if caption.count > Limits.maxTextLength { throw .invalid("caption", "at most \(Limits.maxTextLength) characters") }
        if company.isEmpty || company.count > Limits.maxNameLength { throw .invalid("company", "must be 1-\(Limits.maxNameLength) characters") }
        if product.count > Limits.maxNameLength { throw .invalid("product", "at most \(Limits.maxNameLength) characters") }
        if description.count > Limits.maxTextLength { throw .invalid("description", "at most \(Limits.maxTextLength) characters") }
        if let embedding {
            if embedding.isEmpty || embedding.count > Limits.maxEmbeddingDimensions { throw .invalid("embedding", "must have 1-\(Limits.maxEmbeddingDimensions) numbers") }
            if embedding.contains(where: { !$0.isFinite }) { throw .invalid("embedding", "numbers must be finite") }
        }
    }
}

extension UserProfile {
    public func normalized() -> UserProfile {
        var seen = Set<String>()
        return UserProfile(
            id: id, age: age, gender: gender?.lowercased(), country: country?.lowercased(), language: language?.lowercased(),
            interests: interests.map { $0.lowercased() }.filter { seen.insert($0).inserted })
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
