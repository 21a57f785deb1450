import Domain
import Models
import Serving
import Training

/// `ModelAdministration` over a model repository directory: what the API's model routes and
/// the dashboard's model table do.
public struct RepositoryAdministration: ModelAdministration {
    let repository: ModelRepository

    public init(directory: String) throws {
        repository = try ModelRepository(directory: directory)
    }

    public func models() throws -> [ModelSummary] {
        let serving = Dictionary(uniqueKeysWithValues: PredictionTarget.allCases.compactMap { target in repository.promoted(target).map { (target, $0) } })
        return try repository.list().sorted { $0.version > $1.version }.map { Self.summary($0, serving: serving[$0.target] == $0.version) }
    }

    public func promote(_ version: Int) throws -> ModelSummary {
        try repository.promote(version)
        return Self.summary(try repository.meta(version), serving: true)
    }

    public func rollBack(_ target: String) throws -> ModelSummary {
        guard let target = PredictionTarget(rawValue: target) else {
            throw AdServeError.invalid("target", "must be one of \(PredictionTarget.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return Self.summary(try repository.meta(try repository.rollback(target)), serving: true)
    }

    static func summary(_ meta: ModelMeta, serving: Bool) -> ModelSummary {
        ModelSummary(
            version: meta.version, target: meta.target.rawValue, kind: meta.kind, createdAt: meta.createdAt, trainingExamples: meta.trainingExamples,
            heldOutExamples: meta.metrics.count, auc: meta.metrics.auc, logloss: meta.metrics.logloss, ne: meta.metrics.ne,
            calibration: meta.metrics.calibration, serving: serving)
    }
}
