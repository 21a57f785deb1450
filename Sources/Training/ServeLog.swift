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
            case .hide, .hideAdvertiser, .notRelevant: .hide
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
        case .hide: join.hide(id: impressionId, at: time)
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
    /// `asOf` overrides the newest time (a caller that knows the log is complete up to later).
    public func joined(target: PredictionTarget, windows: AttributionWindows, asOf: Timestamp? = nil) -> (examples: [JoinedExample], summary: Summary) {
        var join = AttributionJoin(windows: windows, labelsHides: target == .hide)
        var summary = Summary(malformed: malformed, windows: windows)
        var impressionTimes: (first: Int64, last: Int64) = (.max, .min)
        for line in lines {
            line.replay(into: &join)
            if line.kind == .impression {
                summary.impressions += 1
                impressionTimes = (min(impressionTimes.first, line.timeMs), max(impressionTimes.last, line.timeMs))
            }
        }
        let asOf = asOf ?? Timestamp(milliseconds: lines.last?.timeMs ?? 0)
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
///
/// Faults cost lines, never the process or unbounded memory:
/// - A writer killed mid-line (`kill -9`, a crash) leaves a torn last line. A writer that
///   appends to such a file starts with a line break, so the fragment stays alone on its line
///   (`ServeLog.read` counts it as malformed) and the lines after it read back whole.
/// - A write that fails (a full disk, an I/O error) drops what was buffered, counts the lines
///   in `droppedLines` and keeps the error in `lastError`; the next flush tries again with the
///   lines written since. A line cut short by the failure is closed off the same way as a torn
///   one. The buffer is written out whenever it reaches `writeThreshold`, so it never holds
///   more than that and one line.
public final class ServeLogWriter: Sendable {
    /// The buffer is written out (or, if writing fails, dropped) when it holds this many bytes.
    public static let writeThreshold = 1 << 20

    private struct State {
        let path: String
        var descriptor: Int32
        var buffer: [UInt8] = []
        var bufferedLines = 0
        /// The file ends inside a line: the next write starts with a line break.
        var endsMidLine: Bool
        var droppedLines = 0
        var lastError: AdServeError?

        mutating func append(_ line: Data) {
            buffer.append(contentsOf: line)
            buffer.append(0x0A)
            bufferedLines += 1
            if buffer.count >= ServeLogWriter.writeThreshold { flush() }
        }

        mutating func flush() {
            guard !buffer.isEmpty else { return }
            guard descriptor >= 0 else {
                drop(written: 0, reason: "the writer is closed")
                return
            }
            if endsMidLine {
                if let failure = ServeLogFile.writeAll(descriptor, [0x0A]).failure {
                    drop(written: 0, reason: ServeLogFile.describe(failure))
                    return
                }
                endsMidLine = false
            }
            let (written, failure) = ServeLogFile.writeAll(descriptor, buffer)
            if let failure {
                drop(written: written, reason: ServeLogFile.describe(failure))
                return
            }
            buffer.removeAll(keepingCapacity: true)
            bufferedLines = 0
        }

        /// Gives up on the buffer after its first `written` bytes went out.
        private mutating func drop(written: Int, reason: String) {
            let completed = buffer[..<written].reduce(0) { $0 + ($1 == 0x0A ? 1 : 0) }
            droppedLines += bufferedLines - completed
            if written > 0, buffer[written - 1] != 0x0A { endsMidLine = true }
            buffer.removeAll(keepingCapacity: true)
            bufferedLines = 0
            lastError = AdServeError(.storage, "serve log \(path): \(reason); \(droppedLines) lines dropped so far")
        }

        mutating func close() {
            flush()
            if descriptor >= 0 {
                ServeLogFile.release(descriptor)
                descriptor = -1
            }
        }
    }

    private let state: Mutex<State>
    private let encoder = JSONFormat.encoder()

    /// Truncates the file, or with `append` adds to its end (a server's log across restarts).
    public init(path: String, append: Bool = false) throws(AdServeError) {
        // A torn last line is looked for before opening: truncating makes it moot.
        let endsMidLine = append && ServeLogFile.endsMidLine(path)
        let (descriptor, failure) = ServeLogFile.openForWriting(path, append: append)
        guard descriptor >= 0 else {
            throw AdServeError.invalid("serve_log", "cannot write \(path): \(ServeLogFile.describe(failure))")
        }
        self.state = Mutex(State(path: path, descriptor: descriptor, endsMidLine: endsMidLine))
    }

    deinit {
        state.withLock { $0.close() }
    }

    public func write(_ value: some Encodable) {
        guard let data = try? encoder.encode(value) else {
            state.withLock { $0.droppedLines += 1 }
            return
        }
        state.withLock { $0.append(data) }
    }

    public func flush() {
        state.withLock { $0.flush() }
    }

    /// Flushes and closes the file; lines written afterwards are dropped (and counted).
    public func close() {
        state.withLock { $0.close() }
    }

    /// Lines lost to failed writes (or values that could not be encoded) since the writer opened.
    public var droppedLines: Int { state.withLock { $0.droppedLines } }

    /// The latest failed write, naming the file and the error, for the server to report; nil
    /// while every write has succeeded.
    public var lastError: AdServeError? { state.withLock { $0.lastError } }
}

/// The serve log's file calls, POSIX underneath: names of their own, so they do not collide
/// with `ServeLogWriter.write` and `close`.
private enum ServeLogFile {
    /// The descriptor, or -1 and the errno. Owner-only, like the store: the log holds users'
    /// ids and features.
    static func openForWriting(_ path: String, append: Bool) -> (descriptor: Int32, failure: Int32) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (append ? O_APPEND : O_TRUNC), 0o600)
        return (descriptor, descriptor >= 0 ? 0 : errno)
    }

    /// Whether the file's last byte is not a line break (a line torn by a killed writer). A file
    /// that is missing, empty or not a regular file (`/dev/full`) has none. (Non-blocking, so a
    /// named pipe without a writer does not hang the open.)
    static func endsMidLine(_ path: String) -> Bool {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard descriptor >= 0 else { return false }
        defer { _ = close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0, info.st_size > 0 else { return false }
        var last: UInt8 = 0
        return pread(descriptor, &last, 1, info.st_size - 1) == 1 && last != 0x0A
    }

    /// Writes all of `bytes`, retrying after a signal or a short write. On failure, how many
    /// bytes went out before it and its errno.
    static func writeAll(_ descriptor: Int32, _ bytes: [UInt8]) -> (written: Int, failure: Int32?) {
        bytes.withUnsafeBytes { raw -> (written: Int, failure: Int32?) in
            guard let base = raw.baseAddress else { return (0, nil) }
            var offset = 0
            while offset < raw.count {
                let n = write(descriptor, base + offset, raw.count - offset)
                if n > 0 {
                    offset += n
                } else if n < 0, errno == EINTR {
                    continue
                } else {
                    return (offset, n < 0 ? errno : EIO)
                }
            }
            return (offset, nil)
        }
    }

    static func release(_ descriptor: Int32) {
        _ = close(descriptor)
    }

    static func describe(_ code: Int32) -> String {
        "\(String(cString: strerror(code))) (errno \(code))"
    }
}
