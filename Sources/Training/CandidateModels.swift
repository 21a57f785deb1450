import Domain
import Foundation
import Models

/// What is kept beside a stored two-tower model: how it was made and how it did.
public struct CandidateModelMeta: Sendable, Codable, Equatable {
    public var version: Int
    public var createdAt: Timestamp
    public var parameters: TwoTowerModel.Parameters
    public var trainingClicks: Int
    /// What it was judged on and against, and the gate's measure (recall@`k`) for both.
    public var evaluatedOn: String
    public var recall: CandidateRecall
    public var k: Int
    public var comparedWith: String
    public var candidateRecall: Double
    public var comparedRecall: Double
    /// The serving two-tower's recall on the same clicks (biased upwards where it served them).
    public var servingRecall: Double?
    public var fileBytes: Int?
    public var checksum: String?
}

/// The candidate stage's retraining, the same flow as the ranker's (`Retraining`): a two-tower
/// model trained on the earlier clicks, judged on the held-out period's clicked ads, and adopted
/// only if its recall@`k` beats the most-clicked ads of the earlier period. Not against the
/// serving two-tower: in a period it served, users could click only what it retrieved, so its
/// recall there is near 1 by construction (measured in the simulator: 0.92–1.00 against
/// 0.83–0.98 for retrains it had not served for). The serving model's recall is still reported.
public struct CandidateRetraining: Sendable {
    public var parameters: TwoTowerModel.Parameters
    public var k: Int

    /// `k`: the K the candidate stage serves, which the gate judges recall at.
    public init(parameters: TwoTowerModel.Parameters = .init(), k: Int) {
        self.parameters = parameters
        self.k = k
    }

    public struct Outcome: Sendable {
        public var model: TwoTowerModel
        public var meta: CandidateModelMeta
        public var adopt: Bool { meta.candidateRecall > meta.comparedRecall }

        public var summary: String {
            "two-tower trained on \(meta.trainingClicks) clicks, recall@\(meta.k) \(TextTable.fixed(meta.candidateRecall, 3)) on \(meta.recall.heldOutClicks) "
                + "held-out clicks of \(meta.recall.ads) ads; \(meta.comparedWith) \(TextTable.fixed(meta.comparedRecall, 3))"
                + (meta.servingRecall.map { ", the serving two-tower \(TextTable.fixed($0, 3))" } ?? "") + " — " + (adopt ? "passes" : "fails")
        }
    }

    public func retrain(train: [JoinedExample], heldOut: [JoinedExample], heldOutName: String, serving: TwoTowerModel?, now: Timestamp) -> Outcome {
        var model = TwoTowerModel(parameters: parameters)
        let clicks = CandidateRecall.clicks(train, model: model)
        model.train(clicks)
        let ks = Array(Set(CandidateRecall.ks + [k])).sorted()
        let recall = CandidateRecall(model: model, train: train, heldOut: heldOut, ks: ks)
        let servingRecall = serving.flatMap { CandidateRecall(model: $0, train: train, heldOut: heldOut, ks: [k]).recall("two-tower", at: k) }
        let meta = CandidateModelMeta(
            version: 0, createdAt: now, parameters: parameters, trainingClicks: clicks.count, evaluatedOn: heldOutName, recall: recall, k: k,
            comparedWith: "the most-clicked ads", candidateRecall: recall.recall("two-tower", at: k) ?? 0,
            comparedRecall: recall.recall("popularity", at: k) ?? 0, servingRecall: servingRecall)
        return Outcome(model: model, meta: meta)
    }
}

/// Two-tower models in the model repository, beside the ranker's: `candidates/v000001.bin` and
/// `.json`, and the promotion history `promoted-candidates.json` (the last entry serves).
extension ModelRepository {
    private var candidateDirectory: URL { directory.appendingPathComponent("candidates", isDirectory: true) }

    private func candidateFile(_ version: Int, _ suffix: String) -> URL {
        let digits = String(version)
        return candidateDirectory.appendingPathComponent("v" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits + suffix)
    }

    private var candidateHistoryURL: URL { directory.appendingPathComponent("promoted-candidates.json") }

    public func saveCandidateModel(_ model: TwoTowerModel, meta: CandidateModelMeta) throws -> CandidateModelMeta {
        var meta = meta
        meta.version = (candidateModels().map(\.version).max() ?? 0) + 1
        let bytes = model.serialized()
        meta.fileBytes = bytes.count
        meta.checksum = ModelChecksum.of(bytes)
        try FileManager.default.createDirectory(at: candidateDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try Self.atomicWrite(Data(bytes), to: candidateFile(meta.version, ".bin"))
        try Self.atomicWrite(try JSONFormat.encoder(pretty: true).encode(meta), to: candidateFile(meta.version, ".json"))
        return meta
    }

    /// Every stored two-tower model, oldest first.
    public func candidateModels() -> [CandidateModelMeta] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: candidateDirectory.path)) ?? []
        return names.filter { $0.hasPrefix("v") && $0.hasSuffix(".json") }.sorted().compactMap { name in
            (try? Data(contentsOf: candidateDirectory.appendingPathComponent(name))).flatMap { try? JSONFormat.decoder().decode(CandidateModelMeta.self, from: $0) }
        }
    }

    /// Loads and checks a stored two-tower model (size and checksum, then the file format).
    public func loadCandidateModel(_ version: Int) throws(AdServeError) -> TwoTowerModel {
        guard let metaData = try? Data(contentsOf: candidateFile(version, ".json")),
              let meta = try? JSONFormat.decoder().decode(CandidateModelMeta.self, from: metaData)
        else { throw AdServeError.notFound("candidate model version \(version)") }
        guard let data = try? Data(contentsOf: candidateFile(version, ".bin")) else {
            throw AdServeError.invalid("model", "candidate model \(version): weights file missing")
        }
        let bytes = [UInt8](data)
        if let expected = meta.checksum, ModelChecksum.of(bytes) != expected || bytes.count != meta.fileBytes {
            throw AdServeError(.storage, "candidate model \(version): weights file does not match the size and checksum its metadata recorded")
        }
        return try TwoTowerModel(serialized: bytes)
    }

    /// Promoted two-tower versions, oldest first; the last one serves.
    public var candidateHistory: [Int] { Self.history(at: candidateHistoryURL) }

    public var promotedCandidateModel: Int? { candidateHistory.last }

    /// Makes `version` the serving two-tower model. It must exist and load.
    public func promoteCandidateModel(_ version: Int) throws {
        _ = try loadCandidateModel(version)
        try Self.append(version, toHistoryAt: candidateHistoryURL)
    }

    /// Returns to the previously promoted two-tower model; throws if there is none.
    @discardableResult
    public func rollbackCandidateModel() throws -> Int {
        try Self.rollBack(historyAt: candidateHistoryURL, what: "candidate model")
    }

    /// Stored two-tower models as a table for people: which one serves, and how each did at
    /// its gate.
    public func candidateTable(_ versions: [CandidateModelMeta]) -> String {
        let serving = promotedCandidateModel
        var rows = [["version", "serving", "clicks", "recall@K", "K", "compared with", "its recall", "evaluated on", "created"]]
        for m in versions {
            rows.append([
                String(m.version), serving == m.version ? "yes" : "", String(m.trainingClicks), TextTable.fixed(m.candidateRecall, 3), String(m.k),
                m.comparedWith, TextTable.fixed(m.comparedRecall, 3), m.evaluatedOn, m.createdAt.iso8601,
            ])
        }
        return TextTable.render(rows)
    }
}
