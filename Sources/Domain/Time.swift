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

    /// Parses an ISO 8601 time with a zone (`2026-11-29T10:00:00Z`, `…+02:00`, fractional
    /// seconds allowed); the error names `field`.
    public init(iso8601 text: String, field: String) throws(AdServeError) {
        let formatter = ISO8601DateFormatter()
        var date = formatter.date(from: text)
        if date == nil {
            formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
            date = formatter.date(from: text)
        }
        guard let date else { throw .invalid(field, "must be an ISO 8601 time such as 2026-11-29T10:00:00Z") }
        self.init(milliseconds: Int64((date.timeIntervalSince1970 * 1000).rounded()))
    }
}
