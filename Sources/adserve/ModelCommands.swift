import ArgumentParser
import Domain
import Foundation
import ModelServing
import Models
import Serving
import Simulator
import Training

/// Options shared by `train` and `eval`: where the logs are, how they are joined and split.
struct LogOptions: ParsableArguments {
    @Option(help: "Impression log, JSON lines: a server's --serve-log, or `adserve simulate --out`'s impressions.jsonl.") var logs: String
    @Option(help: "Model repository directory.") var models = "adserve-models"
    @Option(help: "What to predict: click or conversion.") var target = "click"
    @Option(help: "The latest hours of impressions held out for evaluation (time-ordered split).") var holdoutHours = 24
    @Option(help: "Click attribution window, seconds.") var clickWindow = 3_600
    @Option(help: "Conversion attribution window after the click, seconds.") var conversionWindow = 7 * 86_400
    @Option(help: "Threshold for precision, recall, F1 and accuracy.") var threshold = 0.05
    @Option(help: "k of NDCG@k over each decision's ads.") var ndcgK = 3
    @Flag(help: "Print JSON.") var json = false

    func validate() throws {
        guard PredictionTarget(rawValue: target) != nil else { throw ValidationError("--target must be click or conversion") }
        guard holdoutHours > 0 else { throw ValidationError("--holdout-hours must be positive") }
        guard clickWindow > 0, conversionWindow > 0 else { throw ValidationError("attribution windows must be positive") }
        guard threshold > 0, threshold < 1 else { throw ValidationError("--threshold must be between 0 and 1") }
        guard ndcgK > 0 else { throw ValidationError("--ndcg-k must be positive") }
    }

    var predictionTarget: PredictionTarget { PredictionTarget(rawValue: target)! }

    /// The log replayed through the attribution join, as of the newest time in it: examples whose
    /// window is still open are held back, not counted as negatives.
    func joined() throws -> (train: [JoinedExample], heldOut: [JoinedExample], summary: LogSummary) {
        guard let data = FileManager.default.contents(atPath: logs) else { throw ValidationError("--logs: cannot read \(logs)") }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var summary = LogSummary()
        // Two layouts: the server's serve log (impressions and events on their own lines) and the
        // simulator's impressions, which carry the times of their events. Both become one timeline.
        var timeline: [(time: Int64, order: Int, line: ServeLogLine)] = []
        var impressionTimes: [Int64] = []
        for line in data.split(separator: UInt8(ascii: "\n")) where !line.isEmpty {
            let bytes = Data(line)
            // Only serve-log lines have an "impression_id" key: try that layout first only for them.
            if bytes.range(of: Data(#""impression_id""#.utf8)) != nil, let served = try? decoder.decode(ServeLogLine.self, from: bytes),
               served.kind != .impression || served.features != nil {
                timeline.append((served.timeMs, timeline.count, served))
                if served.kind == .impression { impressionTimes.append(served.timeMs) }
            } else if let e = try? decoder.decode(ImpressionLog.self, from: bytes) {
                timeline.append((e.timeMs, timeline.count, ServeLogLine(kind: .impression, impressionId: e.impressionID, timeMs: e.timeMs, features: e.features)))
                impressionTimes.append(e.timeMs)
                if let t = e.clickedAtMs { timeline.append((t, timeline.count, ServeLogLine(kind: .click, impressionId: e.impressionID, timeMs: t))) }
                if let t = e.convertedAtMs { timeline.append((t, timeline.count, ServeLogLine(kind: .conversion, impressionId: e.impressionID, timeMs: t))) }
            } else {
                summary.malformed += 1
            }
        }
        guard let lastImpression = impressionTimes.max() else {
            throw ValidationError("--logs: no readable impressions in \(logs) (malformed lines: \(summary.malformed))")
        }
        timeline.sort { ($0.time, $0.order) < ($1.time, $1.order) }
        var join = AttributionJoin(windows: AttributionWindows(
            clickMilliseconds: Int64(clickWindow) * 1000, conversionMilliseconds: Int64(conversionWindow) * 1000))
        for item in timeline { item.line.replay(into: &join) }
        let asOf = Timestamp(milliseconds: timeline.last!.time)
        let wanted: JoinedExample.Target = predictionTarget == .click ? .click : .conversion
        let examples = join.drain(now: asOf).filter { $0.target == wanted }.sorted { ($0.servedAt, $0.id) < ($1.servedAt, $1.id) }
        summary.impressions = impressionTimes.count
        summary.pending = join.pendingCount
        summary.unattributed = join.unattributed
        summary.asOf = asOf
        let cut = Timestamp(milliseconds: lastImpression - Int64(holdoutHours) * Timestamp.millisecondsPerHour)
        let train = examples.filter { $0.servedAt < cut }
        let heldOut = examples.filter { $0.servedAt >= cut }
        guard !train.isEmpty, !heldOut.isEmpty else {
            throw ValidationError("--holdout-hours \(holdoutHours) leaves \(train.count) examples to train on and \(heldOut.count) to evaluate on")
        }
        return (train, heldOut, summary)
    }
}

struct LogSummary: Codable {
    var impressions = 0
    var malformed = 0
    var pending = 0
    var unattributed = 0
    var asOf = Timestamp(milliseconds: 0)
}

/// One row of the evaluation table.
struct EvaluationRow: Codable {
    var name: String
    var version: Int?
    var examples: Int
    var positives: Int
    var auc: Double
    var logloss: Double
    var ne: Double
    var calibration: Double
    var ece: Double
    var precision: Double
    var recall: Double
    var f1: Double
    var accuracy: Double
    var mrr: Double
    var ndcg: Double

    init(name: String, version: Int?, predictions: [Double], examples: [JoinedExample], trainingBaseRate: Double, options: LogOptions) {
        let m = OfflineMetrics(predictions: predictions, labels: examples.map(\.label), trainingBaseRate: trainingBaseRate, threshold: options.threshold)
        // Per decision: its ads ordered by this model's scores, against what was clicked.
        var groups: [String: RankingMetrics.Group] = [:]
        for (p, e) in zip(predictions, examples) {
            let decision = String(e.id.prefix { $0 != "/" })
            groups[decision, default: RankingMetrics.Group(scores: [], clicked: [])].scores.append(p)
            groups[decision]!.clicked.append(e.label)
        }
        let ranking = RankingMetrics(groups: Array(groups.values), k: options.ndcgK)
        self.name = name
        self.version = version
        self.examples = m.count
        self.positives = m.positives
        self.auc = m.auc
        self.logloss = m.logloss
        self.ne = m.ne
        self.calibration = m.calibration
        self.ece = m.ece
        self.precision = m.precision
        self.recall = m.recall
        self.f1 = m.f1
        self.accuracy = m.accuracy
        self.mrr = ranking.mrr
        self.ndcg = ranking.ndcg
    }

    /// The control's estimate for the same impressions, from the counters serving logged.
    static func ruleBased(_ examples: [JoinedExample], target: PredictionTarget) -> [Double] {
        examples.map { RuleBasedRanker().estimate(target, $0.features) }
    }

    static func printTable(_ rows: [EvaluationRow], k: Int, threshold: Double) {
        var table = [["model", "examples", "AUC", "logloss", "NE", "calibration", "ECE", "precision", "recall", "F1", "accuracy", "MRR", "NDCG@\(k)"]]
        for r in rows {
            table.append([r.name, String(r.examples)] + [r.auc, r.logloss, r.ne].map { String(format: "%.4f", $0) }
                + [String(format: "%.3f", r.calibration), String(format: "%.4f", r.ece)]
                + [r.precision, r.recall, r.f1, r.accuracy, r.mrr, r.ndcg].map { String(format: "%.3f", $0) })
        }
        print(ReportTable.table(table))
        print(String(format: "precision, recall, F1 and accuracy at threshold %.3f", threshold))
    }
}

/// A timestamp as ISO 8601 UTC, to the second.
func iso(_ t: Timestamp) -> String {
    let formatter = ISO8601DateFormatter()
    return formatter.string(from: Date(timeIntervalSince1970: Double(t.milliseconds) / 1000))
}

func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.keyEncodingStrategy = .convertToSnakeCase
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract: "Join impression logs with their events, train a click or conversion model, evaluate it on the latest hours, store it.",
        discussion: "The new version is compared with the promoted one on the same held-out data; --promote promotes it only if it passes the gate (NE not worse, calibration within ±5%)."
    )

    @OptionGroup var options: LogOptions
    @Option(help: "Model kind: \(ModelKinds.known.joined(separator: ", ")).") var kind = FTRLProximal.kind
    @Option(help: "Hashed feature space: 2^bits buckets.") var bits = 20
    @Option(help: "Passes over the training data.") var epochs = 1
    @Option(help: "Keep each negative with this probability (negative downsampling).") var negativeKeepRate = 1.0
    @Flag(help: "With downsampling, weight kept negatives by 1/rate instead of recalibrating.") var importanceWeighting = false
    @Option(help: "Calibration layer fitted on the latest 10% of the training data: platt, isotonic or none.") var calibration = "platt"
    @Flag(help: "Promote the new version if it passes the gate.") var promote = false
    @Option(help: "FTRL α (learning rate scale).") var alpha = FTRLProximal.Parameters().alpha
    @Option(help: "FTRL L1.") var l1 = FTRLProximal.Parameters().l1
    @Option(help: "FTRL L2.") var l2 = FTRLProximal.Parameters().l2

    func validate() throws {
        guard ModelKinds.known.contains(kind) else { throw ValidationError("--kind must be one of \(ModelKinds.known.joined(separator: ", "))") }
        guard (10...26).contains(bits) else { throw ValidationError("--bits must be between 10 and 26") }
        guard (1...20).contains(epochs) else { throw ValidationError("--epochs must be between 1 and 20") }
        guard negativeKeepRate > 0, negativeKeepRate <= 1 else { throw ValidationError("--negative-keep-rate must be in (0, 1]") }
        guard CalibrationMethod(rawValue: calibration) != nil else { throw ValidationError("--calibration must be platt, isotonic or none") }
    }

    struct Output: Codable {
        var version: Int
        var kind: String
        var target: String
        var trainingExamples: Int
        var log: LogSummary
        var models: [EvaluationRow]
        var promoted: Bool
        var gate: [String]
    }

    func run() throws {
        let (train, heldOut, summary) = try options.joined()
        var configuration = TrainingConfiguration()
        configuration.kind = kind
        configuration.bits = bits
        configuration.epochs = epochs
        configuration.negativeKeepRate = negativeKeepRate
        configuration.importanceWeighting = importanceWeighting
        configuration.calibration = CalibrationMethod(rawValue: calibration)!
        configuration.ftrl.alpha = alpha
        configuration.ftrl.l1 = l1
        configuration.ftrl.l2 = l2
        let target = options.predictionTarget
        let result = try Trainer(configuration: configuration).train(
            train, target: target, heldOut: heldOut, heldOutName: "last \(options.holdoutHours) h of \(options.logs)", now: SystemClock().now())
        let repository = try ModelRepository(directory: options.models)
        let meta = try repository.save(result.model, meta: result.meta)
        let candidate = try repository.load(meta.version)

        let serving = try repository.promoted(target).map { try repository.load($0) }
        let verdict = PromotionGate().judge(candidate: candidate, serving: serving, heldOut: heldOut)
        let promoted = promote && verdict.promote
        if promoted { try repository.promote(meta.version) }

        let base = meta.trainingBaseRate
        var rows = [EvaluationRow(name: "v\(meta.version) \(kind)", version: meta.version, predictions: candidate.predictions(for: heldOut), examples: heldOut, trainingBaseRate: base, options: options)]
        if let serving {
            rows.append(EvaluationRow(name: "serving v\(serving.meta.version)", version: serving.meta.version, predictions: serving.predictions(for: heldOut), examples: heldOut, trainingBaseRate: base, options: options))
        }
        rows.append(EvaluationRow(name: "rule-based", version: nil, predictions: EvaluationRow.ruleBased(heldOut, target: target), examples: heldOut, trainingBaseRate: base, options: options))
        let gate = verdict.promote ? ["passes: NE not worse, calibration within tolerance"] : verdict.reasons
        if options.json {
            try printJSON(Output(version: meta.version, kind: kind, target: target.rawValue, trainingExamples: meta.trainingExamples, log: summary, models: rows, promoted: promoted, gate: gate))
        } else {
            print("logs: \(summary.impressions) impressions, \(summary.malformed) malformed lines, \(summary.unattributed) events outside their window, \(summary.pending) still inside a window at \(iso(summary.asOf))")
            print("trained v\(meta.version) (\(kind), \(target.rawValue)) on \(meta.trainingExamples) examples, calibrator \(meta.calibrator.kind); held-out: \(heldOut.count) examples, the last \(options.holdoutHours) h")
            EvaluationRow.printTable(rows, k: options.ndcgK, threshold: options.threshold)
            print("gate: " + gate.joined(separator: "; ") + (promoted ? " — promoted" : promote ? " — not promoted" : " — not promoted (no --promote)"))
        }
    }
}

struct EvalCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "eval",
        abstract: "Evaluate stored models and the rule-based control on the latest hours of a log."
    )

    @OptionGroup var options: LogOptions
    @Option(help: "Versions to evaluate (comma-separated); default: the promoted one.") var versions: String?

    func run() throws {
        let (train, heldOut, _) = try options.joined()
        let repository = try ModelRepository(directory: options.models)
        let target = options.predictionTarget
        var wanted: [Int] = []
        for item in (versions ?? "").split(separator: ",") {
            guard let v = Int(item) else { throw ValidationError("--versions: '\(item)' is not a version number") }
            wanted.append(v)
        }
        if wanted.isEmpty, let promoted = repository.promoted(target) { wanted = [promoted] }
        let base = Double(train.filter(\.label).count) / Double(train.count)
        var rows: [EvaluationRow] = []
        for version in wanted {
            let predictor = try repository.load(version)
            guard predictor.meta.target == target else { throw ValidationError("model \(version) predicts \(predictor.meta.target.rawValue), not \(target.rawValue)") }
            rows.append(EvaluationRow(name: "v\(version) \(predictor.meta.kind)", version: version, predictions: predictor.predictions(for: heldOut), examples: heldOut, trainingBaseRate: base, options: options))
        }
        rows.append(EvaluationRow(name: "rule-based", version: nil, predictions: EvaluationRow.ruleBased(heldOut, target: target), examples: heldOut, trainingBaseRate: base, options: options))
        if options.json {
            try printJSON(["models": rows])
        } else {
            print("held-out: \(heldOut.count) \(target.rawValue) examples, the last \(options.holdoutHours) h; NE against the base rate of the \(train.count) earlier ones")
            EvaluationRow.printTable(rows, k: options.ndcgK, threshold: options.threshold)
        }
    }
}

struct ModelsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "models",
        abstract: "List, promote and roll back stored models.",
        subcommands: [List.self, Promote.self, Rollback.self]
    )

    struct List: ParsableCommand {
        @Option(help: "Model repository directory.") var models = "adserve-models"
        @Flag(help: "Print JSON.") var json = false

        func run() throws {
            let repository = try ModelRepository(directory: models)
            let all = try repository.list()
            if json { return try printJSON(all) }
            let serving = Dictionary(uniqueKeysWithValues: PredictionTarget.allCases.map { ($0, repository.promoted($0) ?? 0) })
            var rows = [["version", "kind", "target", "serving", "examples", "AUC", "NE", "calibration", "impressions from", "to"]]
            for m in all {
                rows.append([
                    String(m.version), m.kind, m.target.rawValue, serving[m.target] == m.version ? "yes" : "",
                    String(m.trainingExamples), String(format: "%.4f", m.metrics.auc), String(format: "%.4f", m.metrics.ne),
                    String(format: "%.3f", m.metrics.calibration), iso(m.trainedFrom), iso(m.trainedTo),
                ])
            }
            print(ReportTable.table(rows))
        }
    }

    struct Promote: ParsableCommand {
        @Argument(help: "The version to serve.") var version: Int
        @Option(help: "Model repository directory.") var models = "adserve-models"

        func run() throws {
            let repository = try ModelRepository(directory: models)
            try repository.promote(version)
            print("promoted v\(version); serving nodes load it on their next reload")
        }
    }

    struct Rollback: ParsableCommand {
        @Option(help: "Model repository directory.") var models = "adserve-models"
        @Option(help: "click or conversion.") var target = "click"

        func run() throws {
            guard let target = PredictionTarget(rawValue: target) else { throw ValidationError("--target must be click or conversion") }
            let version = try ModelRepository(directory: models).rollback(target)
            print("rolled back: \(target.rawValue) serves v\(version)")
        }
    }
}
