import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Milliseconds since the Unix epoch, UTC. Integer so windows and day boundaries are exact.
public struct Timestamp: Hashable, Comparable, Sendable, Codable, CustomStringConvertible {
    public var milliseconds: Int64

    @inlinable public init(milliseconds: Int64) { self.milliseconds = milliseconds }
    public init(seconds: Int64) { self.milliseconds = seconds * 1000 }

    public static let millisecondsPerDay: Int64 = 86_400_000
    public static let millisecondsPerHour: Int64 = 3_600_000

    /// Days since 1970-01-01 (UTC): the key of daily budgets and daily reports.
    @inlinable public var day: Int64 {
        milliseconds >= 0 ? milliseconds / Self.millisecondsPerDay : (milliseconds + 1) / Self.millisecondsPerDay - 1
    }

    /// Hour of the day, 0–23, UTC.
    public var hourOfDay: Int { Int((milliseconds - day * Self.millisecondsPerDay) / Self.millisecondsPerHour) }

    public func adding(milliseconds delta: Int64) -> Timestamp { Timestamp(milliseconds: milliseconds + delta) }
    public func adding(hours: Int64) -> Timestamp { adding(milliseconds: hours * Self.millisecondsPerHour) }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.milliseconds < rhs.milliseconds }
    public var description: String { "\(milliseconds)ms" }

    /// `YYYY-MM-DD` of a day number (civil-from-days, proleptic Gregorian calendar).
    public static func isoDate(day: Int64) -> String {
        let z = day + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        let y = yoe + era * 400 + (m <= 2 ? 1 : 0)
        func pad(_ v: Int64, _ width: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        return "\(pad(y, 4))-\(pad(m, 2))-\(pad(d, 2))"
    }
}

/// Where the time comes from. Injected everywhere, so pacing, caps, budgets and windows are
/// tested and simulated without sleeping.
public protocol WallClock: Sendable {
    func now() -> Timestamp
}

/// The real clock.
public struct SystemClock: WallClock {
    public init() {}
    public func now() -> Timestamp {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Timestamp(milliseconds: Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000)
    }
}

/// A clock that moves only when told to: tests and the simulator drive it.
public final class ManualClock: WallClock {
    private let current: Mutex<Timestamp>

    public init(_ start: Timestamp = Timestamp(milliseconds: 1_780_000_000_000)) {
        self.current = Mutex(start)
    }

    public func now() -> Timestamp { current.withLock { $0 } }

    public func advance(milliseconds: Int64) { current.withLock { $0.milliseconds += milliseconds } }
    public func advance(hours: Int64) { advance(milliseconds: hours * Timestamp.millisecondsPerHour) }
    public func set(_ time: Timestamp) { current.withLock { $0 = time } }
}

extension Duration {
    /// The duration in seconds, as a floating-point number (for reporting, not for money).
    public var inSeconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension Timestamp {
    /// ISO 8601 in UTC to the second (`2026-11-29T10:00:00Z`): how times appear on the wire, in
    /// tables and in logs.
    public var iso8601: String {
        let ms = milliseconds - day * Self.millisecondsPerDay
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : String(v) }
        return Self.isoDate(day: day) + "T" + two(ms / 3_600_000) + ":" + two(ms / 60_000 % 60) + ":" + two(ms / 1000 % 60) + "Z"
    }

    /// The last millisecond of year 9999: the latest time the wire takes or a token may carry.
    public static let latest = Timestamp(milliseconds: 253_402_300_799_999)

    /// Parses an RFC 3339 time (ISO 8601 with a zone: `2026-11-29T10:00:00Z`, `…+02:00`,
    /// fractional seconds allowed, rounded to the millisecond) from 1970 to 9999. Anything
    /// else is refused, the error naming `field`: an impossible date (`2026-02-30`), a
    /// five-digit or negative year, an offset past ±23:59, a time outside those years.
    public init(iso8601 text: String, field: String) throws(AdServeError) {
        guard let milliseconds = Self.rfc3339(Array(text.utf8)), (0...Self.latest.milliseconds).contains(milliseconds) else {
            throw .invalid(field, "must be an ISO 8601 time from 1970 to 9999, such as 2026-11-29T10:00:00Z")
        }
        self.init(milliseconds: milliseconds)
    }

    /// The day number of a date written `YYYY-MM-DD`, from 1970 to 9999; nil for anything else.
    public static func day(isoDate text: String) -> Int64? {
        var reader = DigitReader(bytes: Array(text.utf8))
        guard let day = reader.date(), reader.atEnd, day >= 0 else { return nil }
        return day
    }

    /// Days since 1970-01-01 of a date of the proleptic Gregorian calendar (days-from-civil,
    /// the inverse of `isoDate(day:)`); nil for a date that does not exist.
    public static func day(year: Int64, month: Int64, day: Int64) -> Int64? {
        let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
        let length: Int64 = switch month {
        case 2: leap ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
        guard (1...12).contains(month), (1...length).contains(day) else { return nil }
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// Milliseconds since the epoch of `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`, nil if the
    /// text is not exactly that or names no real date or time.
    private static func rfc3339(_ bytes: [UInt8]) -> Int64? {
        var reader = DigitReader(bytes: bytes)
        guard let day = reader.date(), reader.skip("T") || reader.skip("t"), let hour = reader.digits(2), reader.skip(":"),
              let minute = reader.digits(2), reader.skip(":"), let second = reader.digits(2), hour < 24, minute < 60, second < 60
        else { return nil }
        var milliseconds = ((day * 24 + hour) * 60 + minute) * 60_000 + second * 1000
        if reader.skip(".") {
            // Up to nine digits; the first four give the millisecond, rounded half up.
            var fraction: Int64 = 0
            var count = 0
            while let digit = reader.digits(1) {
                count += 1
                guard count <= 9 else { return nil }
                if count <= 4 { fraction = fraction * 10 + digit }
            }
            guard count > 0 else { return nil }
            for _ in 0..<max(0, 4 - count) { fraction *= 10 }
            milliseconds += (fraction + 5) / 10
        }
        if reader.skip("Z") || reader.skip("z") {
            return reader.atEnd ? milliseconds : nil
        }
        let sign: Int64 = reader.skip("+") ? 1 : reader.skip("-") ? -1 : 0
        guard sign != 0, let offsetHours = reader.digits(2), reader.skip(":"), let offsetMinutes = reader.digits(2), reader.atEnd,
              offsetHours < 24, offsetMinutes < 60 else { return nil }
        // The local time less its offset from UTC.
        return milliseconds - sign * (offsetHours * 60 + offsetMinutes) * 60_000
    }
}

/// Reads fixed-width ASCII fields off the front of a time's bytes.
private struct DigitReader {
    let bytes: [UInt8]
    var at = 0

    var atEnd: Bool { at == bytes.count }

    /// The next `count` bytes as a decimal number, if they are all digits (then consumed).
    mutating func digits(_ count: Int) -> Int64? {
        guard at + count <= bytes.count else { return nil }
        var value: Int64 = 0
        for byte in bytes[at..<(at + count)] {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            value = value * 10 + Int64(byte - UInt8(ascii: "0"))
        }
        at += count
        return value
    }

    /// A `YYYY-MM-DD` date next, as its day number (`Timestamp.day(year:month:day:)`); nil
    /// if it is not one or names no real day.
    mutating func date() -> Int64? {
        guard let year = digits(4), skip("-"), let month = digits(2), skip("-"), let day = digits(2) else { return nil }
        return Timestamp.day(year: year, month: month, day: day)
    }

    /// Consumes `character` if it comes next.
    mutating func skip(_ character: Unicode.Scalar) -> Bool {
        guard at < bytes.count, bytes[at] == UInt8(ascii: character) else { return false }
        at += 1
        return true
    }
}
