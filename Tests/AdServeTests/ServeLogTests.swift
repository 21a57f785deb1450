import Domain
import Foundation
import Models
import TestSupport
import Testing
import Training

/// The one serve-log format, as `adserve train` meets it: written, read back, joined, split.
@Suite struct ServeLogTests {
    static let t0 = TrainingTests.t0

    static func impression(_ id: String, minute: Int64, caption: String = "Sunny beach trips") -> ServeLogLine {
        ServeLogLine(
            kind: .impression, impressionId: id, timeMs: t0.adding(milliseconds: minute * 60_000).milliseconds,
            features: TrainingTests.input(caption: caption), arm: "default", propensity: 1)
    }

    static func event(_ kind: ServeLogLine.Kind, _ id: String, minute: Int64) -> ServeLogLine {
        ServeLogLine(kind: kind, impressionId: id, timeMs: t0.adding(milliseconds: minute * 60_000).milliseconds)
    }

    /// Written by the writer, read back line for line in time order; a broken line is counted.
    @Test func writtenLinesReadBackInTimeOrderAndBrokenLinesAreCounted() throws {
        let database = TemporaryDatabase()
        let path = database.directory.appendingPathComponent("serve-log.jsonl").path
        let writer = try ServeLogWriter(path: path)
        let lines = [Self.impression("d1/3", minute: 0), Self.event(.click, "d1/3", minute: 1), Self.impression("d2/3", minute: 2)]
        writer.write(lines[0])
        writer.write(lines[2])  // written out of time order
        writer.write(lines[1])
        writer.close()
        let handle = try #require(FileHandle(forWritingAtPath: path))
        handle.seekToEndOfFile()
        handle.write(Data("{\"kind\":\"impression\",\"impr\n".utf8))  // a torn last line
        try handle.close()

        let log = try ServeLog.read(path: path)
        #expect(log.lines == lines)
        #expect(log.malformed == 1)
    }

    /// A server killed mid-line (`kill -9`) leaves a torn last line; the restarted server's
    /// writer appends after a line break, so only the fragment is lost.
    @Test func aTornLineFromAKilledWriterStaysAloneOnItsLine() throws {
        let database = TemporaryDatabase()
        let path = database.directory.appendingPathComponent("serve-log.jsonl").path
        let before = [Self.impression("d1/3", minute: 0), Self.event(.click, "d1/3", minute: 1)]
        let writer = try ServeLogWriter(path: path)
        for line in before { writer.write(line) }
        writer.close()
        let handle = try #require(FileHandle(forWritingAtPath: path))
        _ = try handle.seekToEnd()
        try handle.write(contentsOf: Data("{\"kind\":\"impression\",\"impr".utf8))  // killed mid-line: no line break
        try handle.close()

        let restarted = try ServeLogWriter(path: path, append: true)
        let after = [Self.impression("d2/3", minute: 2), Self.event(.click, "d2/3", minute: 3)]
        for line in after { restarted.write(line) }
        restarted.close()

        let log = try ServeLog.read(path: path)
        #expect(log.lines == before + after)
        #expect(log.malformed == 1)
        #expect(restarted.droppedLines == 0 && restarted.lastError == nil)

        // Appending to a log that ends with a whole line adds no empty one.
        let again = try ServeLogWriter(path: path, append: true)
        again.write(Self.impression("d3/3", minute: 4))
        again.close()
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(!text.contains("\n\n"))
        #expect(try ServeLog.read(path: path).lines.count == 5)
    }

    /// A full disk (`/dev/full` answers every write with ENOSPC) costs lines, counted and
    /// reported, never the process.
    @Test(.enabled(if: FileManager.default.fileExists(atPath: "/dev/full"), "needs /dev/full"))
    func aFullDiskDropsLinesAndKeepsServing() throws {
        let writer = try ServeLogWriter(path: "/dev/full", append: true)
        for minute in 0..<3 { writer.write(Self.impression("d\(minute)/3", minute: Int64(minute))) }
        #expect(writer.droppedLines == 0 && writer.lastError == nil)  // only buffered so far
        writer.flush()
        #expect(writer.droppedLines == 3)
        let error = try #require(writer.lastError)
        #expect(error.code == .storage && error.message.contains("/dev/full"), "\(error)")

        // The buffer was given up, not kept growing; the writer goes on (and on failing).
        writer.write(Self.event(.click, "d0/3", minute: 1))
        writer.flush()
        #expect(writer.droppedLines == 4)
        writer.close()
        writer.write(Self.event(.click, "d1/3", minute: 2))
        writer.flush()
        #expect(writer.droppedLines == 5)
    }

    @Test func aFileWithoutImpressionsIsAnErrorNamingIt() throws {
        let database = TemporaryDatabase()
        let path = database.directory.appendingPathComponent("empty.jsonl").path
        try Data("not json\n".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: AdServeError.self) { try ServeLog.read(path: path) }
        do {
            _ = try ServeLog.read(path: path)
        } catch {
            #expect(error.field == "logs" && error.message.contains(path) && error.message.contains("malformed lines: 1"))
        }
    }

    /// A 40-minute trial trains with minute-sized windows and holdout; with the defaults (1 h
    /// click window, 24 h holdout) the error says what the log spans and what would work.
    @Test func aShortTrialTrainsWithDurationsAndTheErrorSaysWhatWouldWork() throws {
        var lines: [ServeLogLine] = []
        for minute in 0..<40 {
            for slot in [3, 7] {
                let id = "d\(minute)/\(slot)"
                lines.append(Self.impression(id, minute: Int64(minute)))
                if (minute + slot) % 5 == 0 { lines.append(Self.event(.click, id, minute: Int64(minute))) }
            }
        }
        let log = ServeLog(lines: lines.sorted { $0.timeMs < $1.timeMs })

        let (unlabelled, summary) = log.joined(target: .click, windows: AttributionWindows())
        #expect(unlabelled.filter { !$0.label }.isEmpty)  // no 1 h window has closed in 40 minutes
        do {
            _ = try TimeSplit(unlabelled, holdoutMilliseconds: try DurationText.parse("24h", option: "holdout"), summary: summary)
            Issue.record("a 24 h holdout of a 40-minute log must not split")
        } catch {
            #expect(error.field == "holdout")
            #expect(error.message.contains("span 39m, within the click window (1h)"), "\(error.message)")
            #expect(error.message.contains("try --click-window 585s --holdout 585s"), "\(error.message)")
        }

        let windows = AttributionWindows(clickMilliseconds: try DurationText.parse("2m", option: "click-window"))
        let (examples, shortSummary) = log.joined(target: .click, windows: windows)
        let split = try TimeSplit(examples, holdoutMilliseconds: try DurationText.parse("10m", option: "holdout"), summary: shortSummary)
        #expect(split.train.count > 40 && split.heldOut.count > 10)
        #expect(split.train.allSatisfy { $0.servedAt < split.heldOut[0].servedAt })
        #expect(split.train.contains { $0.label } && split.train.contains { !$0.label })
    }

    @Test(arguments: [
        ("500ms", Int64(500)), ("90s", 90_000), ("15m", 900_000), ("2h", 7_200_000), ("7d", 604_800_000), ("3600", 3_600_000),
    ])
    func durationsAreReadAsPeopleTypeThem(text: String, milliseconds: Int64) throws {
        #expect(try DurationText.parse(text, option: "holdout") == milliseconds)
        #expect(DurationText.milliseconds(DurationText.format(milliseconds: milliseconds)) == milliseconds)
    }

    @Test(arguments: ["", "h", "ms", "0", "-5m", "1.5h", "2w", "99999999999999999d"])
    func badDurationsAreRefusedNamingTheOption(text: String) {
        #expect(DurationText.milliseconds(text) == nil)
        #expect(throws: AdServeError.invalid("click-window", "'\(text)' is not a duration: write a positive whole number of seconds or one with a unit, such as 500ms, 90s, 15m, 2h or 7d")) {
            try DurationText.parse(text, option: "click-window")
        }
    }

    /// Short tokens that carry meaning (numbers) are features; short words are not.
    @Test func captionsThatDifferInANumberEncodeDifferently() {
        let features = ClickFeatures(hasher: FeatureHasher(bits: 20))
        let three = features.encode(TrainingTests.input(caption: "product 3"))
        let four = features.encode(TrainingTests.input(caption: "product 4"))
        #expect(three != four)
        #expect(features.encode(TrainingTests.input(caption: "a product of")) == features.encode(TrainingTests.input(caption: "product")))
        #expect(ClickFeatures.version == 6)
    }

    @Test func isoTimesRoundTrip() throws {
        let t = Timestamp(milliseconds: 1_780_315_245_000)
        #expect(t.iso8601 == "2026-06-01T12:00:45Z")
        #expect(try Timestamp(iso8601: t.iso8601, field: "start_at") == t)
        #expect(try Timestamp(iso8601: "2026-06-01T14:00:45+02:00", field: "start_at") == t)
        #expect(throws: AdServeError.self) { try Timestamp(iso8601: "yesterday", field: "start_at") }
        #expect(try Timestamp(iso8601: "2026-06-01T12:00:45.0004Z", field: "start_at") == t)
        #expect(try Timestamp(iso8601: "2026-06-01t12:00:45.0005z", field: "start_at") == t.adding(milliseconds: 1))
        // One to nine digits of a second (more than four once stopped the process).
        for (fraction, milliseconds) in [("1", 100), ("12", 120), ("123", 123), ("1234", 123), ("12345", 123), ("123456789", 123), ("999999999", 1_000)] {
            #expect(try Timestamp(iso8601: "2026-06-01T12:00:45.\(fraction)Z", field: "start_at") == t.adding(milliseconds: Int64(milliseconds)), "\(fraction)")
        }
        #expect(try Timestamp(iso8601: "2024-02-29T00:00:00-23:59", field: "start_at").iso8601 == "2024-02-29T23:59:00Z")
        #expect(try Timestamp(iso8601: "1970-01-01T00:00:00Z", field: "start_at").milliseconds == 0)
        #expect(try Timestamp(iso8601: "9999-12-31T23:59:59.999Z", field: "start_at") == Timestamp.latest)
    }

    /// What the parser once let through, each then stored changed (a five-digit year read as
    /// four, a day past the month's end carried into the next, an offset of 99 hours), is refused
    /// naming the field.
    @Test(arguments: [
        "12026-11-29T10:00:00Z", "123456789-01-01T00:00:00Z", "-2026-11-29T10:00:00Z", "0000-01-01T00:00:00Z", "1969-12-31T23:59:59Z",
        "2026-02-29T10:00:00Z", "2026-04-31T10:00:00Z", "2026-13-01T10:00:00Z", "2026-11-29T24:00:00Z", "2026-11-29T10:60:00Z",
        "2026-11-29T10:00:60Z", "2026-11-29T10:00:00+99:00", "2026-11-29T10:00:00+24:00", "2026-11-29T10:00:00+9999:00",
        "2026-11-29T10:00:00", "2026-11-29 10:00:00Z", "2026-11-29T10:00:00.Z", "2026-11-29T10:00:00.1234567890Z", "2026-11-29T10:00:00Z ",
        "2026-1-29T10:00:00Z", "10000-01-01T00:00:00Z",
    ])
    func impossibleOrOutOfRangeTimesAreRefused(text: String) {
        #expect(throws: AdServeError.invalid("end_at", "must be an ISO 8601 time from 1970 to 9999, such as 2026-11-29T10:00:00Z")) {
            try Timestamp(iso8601: text, field: "end_at")
        }
    }

    @Test func isoDatesAreDaysAndImpossibleOnesAreNot() {
        #expect(Timestamp.day(isoDate: "1970-01-01") == 0)
        #expect(Timestamp.day(isoDate: "2026-06-01") == Timestamp(milliseconds: 1_780_315_245_000).day)
        #expect(Timestamp.day(isoDate: "2000-02-29").map(Timestamp.isoDate(day:)) == "2000-02-29")
        for text in ["2026-02-30", "1900-02-29", "0000-01-01", "-001-01-01", "2026-06-1", "2026-06-01T00:00:00Z", "1969-12-31", ""] {
            #expect(Timestamp.day(isoDate: text) == nil, "\(text)")
        }
        // Every day of four centuries goes to its date and back.
        for day in Int64(0)..<146_097 {
            let text = Timestamp.isoDate(day: day)
            if Timestamp.day(isoDate: text) != day { Issue.record("\(day) → \(text) → \(String(describing: Timestamp.day(isoDate: text)))"); break }
        }
    }
}
