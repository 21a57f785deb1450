import Domain
import ModelServing
import Models
import Synchronization
import Training

/// Keeps a serving node's model slots on the repository's promoted versions: `reload()` loads a
/// newly promoted (or rolled-back-to) version and swaps it in; a version that fails to load is
/// refused and the serving model stays. Called on a timer by the server, directly by tests.
public final class ModelReloader: Sendable {
    public let repository: ModelRepository
    public let click: ModelSlot
    public let conversion: ModelSlot
    /// The hide model's slot, for a ranker that prices hides (`EngagementCost`); nil: hide
    /// models are not loaded.
    public let hide: ModelSlot?
    /// If set, every loaded version is handed to online learning, which continues from it.
    public let learner: OnlineLearner?
    /// If set, the promoted two-tower model is installed in it (its index is built first).
    public let retriever: TwoTowerRetriever?
    private let installedCandidates = Mutex<Int?>(nil)

    public init(
        repository: ModelRepository, click: ModelSlot, conversion: ModelSlot, hide: ModelSlot? = nil, learner: OnlineLearner? = nil,
        retriever: TwoTowerRetriever? = nil
    ) {
        self.repository = repository
        self.hide = hide
        self.click = click
        self.conversion = conversion
        self.learner = learner
        self.retriever = retriever
    }

    public enum Change: Sendable, Equatable {
        case loaded(target: PredictionTarget, version: Int)
        case refused(target: PredictionTarget, version: Int, reason: String)
        case loadedCandidates(version: Int)
        case refusedCandidates(version: Int, reason: String)
    }

    /// What changed. A refused version is retried on the next call (it may be being written).
    public func reload() -> [Change] {
        var changes: [Change] = []
        for target in PredictionTarget.allCases {
            let slots: [PredictionTarget: ModelSlot?] = [.click: click, .conversion: conversion, .hide: hide]
            guard let slot = slots[target] ?? nil, let version = repository.promoted(target), slot.predictor?.meta.version != version else { continue }
            do {
                let predictor = try repository.load(version)
                guard predictor.meta.target == target else {
                    changes.append(.refused(target: target, version: version, reason: "model \(version) predicts \(predictor.meta.target.rawValue)"))
                    continue
                }
                if let learner {
                    try learner.adopt(predictor.model, meta: predictor.meta, trained: true)  // publishes it too
                } else {
                    slot.replace(with: predictor)
                }
                changes.append(.loaded(target: target, version: version))
            } catch {
                changes.append(.refused(target: target, version: version, reason: error.description))
            }
        }
        if let retriever, let version = repository.promotedCandidateModel, installedCandidates.withLock({ $0 }) != version {
            do {
                retriever.install(try repository.loadCandidateModel(version))
                installedCandidates.withLock { $0 = version }
                changes.append(.loadedCandidates(version: version))
            } catch {
                changes.append(.refusedCandidates(version: version, reason: error.description))
            }
        }
        return changes
    }
}
