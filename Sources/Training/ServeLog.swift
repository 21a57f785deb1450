import Domain
import Foundation
import Models
import Synchronization

/// One line of the serve log, the one log format of AdServe: a served impression with the
/// features its ranker saw and how it was chosen, or an event recorded for one. The server
/// (`serve --serve-log`) and the simulator (`simulate --out`) write it through `ServeLogger`;
/// `adserve train` and `eval` read it back and replay it through the attribution join, so
/// training sees what serving saw.
public struct ServeLogLine: Sendable, Codable, Equatable {
    public enum Kind: String, Sendable, Codable { case impression, click, conversion, hide }
    public var kind: Kind
    /// The impression's placement key (decision id, "/", slot): the join key.
    public var impressionId: String
    public var timeMs: Int64
    /// Impressions only: what the models saw (or would have seen) at serve time.
    public var features: ClickFeatureInput?
    /// Impressions only: the serving path that chose the ad (an experiment arm), and the
    /// probability with which its policy chose the ad for that slot.
    public var arm: String?
    public var propensity: Double?

    public init(kind: Kind, impressionId: String, timeMs: Int64, features: ClickFeatureInput? = nil, arm: String? = nil, propensity: Double? = nil) {
        self.kind = kind
        self.impressionId = impressionId
        self.timeMs = timeMs
        self.features = features
        self.arm = arm
        self.propensity = propensity
    }

    public init(_ type: EventType, impressionId: String, at time: Timestamp) {
        let kind: Kind =
            switch type {
            case .impression: .impression
            case .click: .click
            case .conversion: .conversion
            case .hide: .hide
            }
        self.init(kind: kind, impressionId: impressionId, timeMs: time.milliseconds)
    }

    /// Feeds the line to a join.
    public func replay(into join: inout AttributionJoin) {
        let time = Timestamp(milliseconds: timeMs)
        switch kind {
        case .impression: if let features { join.impression(id: impressionId, features: features, at: time) }
        case .click: join.click(id: impressionId, at: time)
        case .conversion: join.conversion(id: impressionId, at: time)
        case .hide: break
        }
    }
}

/// A serve log read back: its lines in time order, and what could not be read.
public struct ServeLog: Sendable {
    public var lines: [ServeLogLine]
    public var malformed: Int

    /// `lines` must be in time order (as `read` leaves them).
    public init(lines: [ServeLogLine], malformed: Int = 0) {
        self.lines = lines
        self.malformed = malformed
    }

    /// Reads a JSON-lines serve log. A line that is not a serve-log line is counted, not fatal;
    /// a file with no impression at all is an error naming it.
    public static func read(path: String) throws(AdServeError) -> ServeLog {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw AdServeError.invalid("logs", "cannot read \(path)")
        }
        let decoder = JSONFormat.decoder()
        var lines: [(line: ServeLogLine, order: Int)] = []
        var malformed = 0
        for bytes in data.split(separator: UInt8(ascii: "\n")) where !bytes.isEmpty {
            if let line = try? decoder.decode(ServeLogLine.self, from: Data(bytes)), line.kind != .impression || line.features != nil {
                lines.append((line, lines.count))
            } else {
                malformed += 1
            }
        }
        guard lines.contains(where: { $0.line.kind == .impression }) else {
            throw AdServeError.invalid("logs", "no readable impressions in \(path) (malformed lines: \(malformed))")
        }
        // Writers append in arrival order; a replay wants time order (ties keep file order).
        lines.sort { ($0.line.timeMs, $0.order) < ($1.line.timeMs, $1.order) }
        return ServeLog(lines: lines.map(\.line), malformed: malformed)
    }

    /// What a replay found.
    public struct Summary: Sendable, Codable {
        public var impressions = 0
        public var malformed = 0
        /// Impressions (or clicks) whose window was still open at the end of the log.
        public var pending = 0
        /// Events that matched no open window.
        public var unattributed = 0
        public var firstImpression = Timestamp(milliseconds: 0)
        public var lastImpression = Timestamp(milliseconds: 0)
        /// The newest time in the log: windows closed by then are labelled.
        public var asOf = Timestamp(milliseconds: 0)
        /// The windows the log was joined with.
        public var windows = AttributionWindows()
    }

    /// Replays the log through an attribution join as of its newest time: examples whose window
    /// is still open are held back, never counted as negatives. Examples of `target` only, in
    /// serving order.
    public func joined(target: PredictionTarget, windows: AttributionWindows) -> (examples: [JoinedExample], summary: Summary) {
        var join = AttributionJoin(windows: windows)
        var summary = Summary(malformed: malformed, windows: windows)
        var impressionTimes: (first: Int64, last: Int64) = (.max, .min)
        for line in lines {
            line.replay(into: &join)
            if line.kind == .impression {
                summary.impressions += 1
                impressionTimes = (min(impressionTimes.first, line.timeMs), max(impressionTimes.last, line.timeMs))
            }
        }
        let asOf = Timestamp(milliseconds: lines.last?.timeMs ?? 0)
        let examples = join.drain(now: asOf).filter { $0.target == target }.sorted { ($0.servedAt, $0.id) < ($1.servedAt, $1.id) }
        summary.pending = join.pendingCount
        summary.unattributed = join.unattributed
        summary.firstImpression = Timestamp(milliseconds: impressionTimes.first)
        summary.lastImpression = Timestamp(milliseconds: impressionTimes.last)
        summary.asOf = asOf
        return (examples, summary)
    }
}

/// Examples split in time: the latest `holdout` of impressions is held out for evaluation.
public struct TimeSplit: Sendable {
    public var train: [JoinedExample]
    public var heldOut: [JoinedExample]

    /// Splits at `lastImpression − holdout`. When either side would be empty the error says what
    /// the log spans and which holdout would work.
    public init(_ examples: [JoinedExample], holdoutMilliseconds holdout: Int64, summary: ServeLog.Summary) throws(AdServeError) {
        let cut = summary.lastImpression.milliseconds - holdout
        train = examples.filter { $0.servedAt.milliseconds < cut }
        heldOut = examples.filter { $0.servedAt.milliseconds >= cut }
        guard !train.isEmpty, !heldOut.isEmpty else {
            let span = summary.lastImpression.milliseconds - summary.firstImpression.milliseconds
            let window = summary.windows.clickMilliseconds
            let quarter = DurationText.format(milliseconds: max(1000, span / 4 / 1000 * 1000))
            var message = "--holdout \(DurationText.format(milliseconds: holdout)) leaves \(train.count) labelled examples to train on and \(heldOut.count) to evaluate on"
            message += "; the log's impressions span \(DurationText.format(milliseconds: span))"
            if span <= window {
                // Only clicks are labelled before the window closes: every negative is still pending.
                message += ", within the click window (\(DurationText.format(milliseconds: window))), so no impression without a click is labelled yet"
                message += "; try --click-window \(quarter) --holdout \(quarter)"
            } else if span > 0 {
                message += "; try --holdout \(quarter)"
            }
            throw AdServeError.invalid("holdout", message)
        }
    }
}

/// Appends serve-log lines (or any JSON value) one per line to a file, buffered; safe to call
/// from any task. `flush()` writes what is buffered; a server calls it every second.
public final class ServeLogWriter: Sendable {
    private struct State {
        var handle: FileHandle
        var buffer = Data()
    }

    private let state: Mutex<State>
    private let encoder = JSONFormat.encoder()

    /// Truncates the file, or with `append` adds to its end (a server's log across restarts).
    public init(path: String, append: Bool = false) throws(AdServeError) {
        if !append || !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: path) else { throw AdServeError.invalid("serve_log", "cannot write \(path)") }
        if append { handle.seekToEndOfFile() }
        self.state = Mutex(State(handle: handle))
    }

    public func write(_ value: some Encodable) {
        guard let data = try? encoder.encode(value) else { return }
        state.withLock { s in
            s.buffer.append(data)
            s.buffer.append(0x0A)
            if s.buffer.count >= 1 << 20 {
                s.handle.write(s.buffer)
                s.buffer.removeAll(keepingCapacity: true)
            }
        }
    }

    public func flush() {
        state.withLock { s in
            s.handle.write(s.buffer)
            s.buffer.removeAll(keepingCapacity: true)
        }
    }

    public func close() {
        flush()
        state.withLock { s in try? s.handle.close() }
    }
}
