/// Durations as people type them on a command line: `500ms`, `90s`, `15m`, `2h`, `7d`, or a plain
/// number of seconds (`3600`). Every window and holdout option reads them through here.
public enum DurationText {
    private static let units: [(suffix: Character, milliseconds: Int64)] = [
        ("s", 1000), ("m", 60_000), ("h", Timestamp.millisecondsPerHour), ("d", Timestamp.millisecondsPerDay),
    ]

    /// Milliseconds, or nil for anything that is not a positive whole number with an optional unit.
    public static func milliseconds(_ text: String) -> Int64? {
        var digits = Substring(text)
        var scale: Int64 = 1000
        if digits.hasSuffix("ms") {
            scale = 1
            digits = digits.dropLast(2)
        } else if let last = digits.last, let unit = units.first(where: { $0.suffix == last }) {
            scale = unit.milliseconds
            digits = digits.dropLast()
        }
        guard !digits.isEmpty, digits.allSatisfy(\.isASCII), let value = Int64(digits), value > 0 else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: scale)
        return overflow ? nil : product
    }

    /// Parses an option's value, or throws an error naming the option and the accepted forms.
    public static func parse(_ text: String, option: String) throws(AdServeError) -> Int64 {
        guard let value = milliseconds(text) else {
            throw AdServeError.invalid(option, "'\(text)' is not a duration: write a positive whole number of seconds or one with a unit, such as 500ms, 90s, 15m, 2h or 7d")
        }
        return value
    }

    /// The largest unit that divides the duration: 90s, 15m, 2h, 7d; a duration that no unit
    /// divides is shown in whole seconds, rounded down (under a second: in milliseconds).
    public static func format(milliseconds: Int64) -> String {
        for unit in units.reversed() where milliseconds != 0 && milliseconds % unit.milliseconds == 0 {
            return "\(milliseconds / unit.milliseconds)\(unit.suffix)"
        }
        return milliseconds >= 1000 ? "\(milliseconds / 1000)s" : "\(milliseconds)ms"
    }
}
