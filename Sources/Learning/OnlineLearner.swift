import Domain
import Foundation
import ModelServing
import Models
import Serving
import Storage
import Synchronization
import Training

/// Keeps the serving models learning between full retrains: served placements wait for the
/// feed's impression report (`AwaitingReport`), then reported impressions and their events go
/// through the attribution join; whatever it labels updates a working copy of the
/// click or conversion model, which is then published to the serving slot. Serving keeps
/// predicting from the last published copy meanwhile (readers never wait on learning).
///
/// The calibration layer follows too: as each example is labelled, the model's calibrated
/// prediction for it (made before learning from it) and the label are added to sums that
/// forget with a memory of `calibrationMemory` examples, and every `recalibrationExamples` the
/// layer's intercept moves by ln(observed ÷ predicted). Without it, a
/// Platt layer fitted to yesterday's model drifts off as the model learns, and the ads a greedy
/// ranker picks are the ones it overestimates most (measured in the simulator: calibration
/// anywhere from 0.34 to 1.59 from one day to the next).
public final class OnlineLearner: Sendable {
    public let click: ModelSlot
    public let conversion: ModelSlot
    /// P(hide), when serving prices hides; nil: hides are not learned.
    public let hide: ModelSlot?

    private struct Working {
        var meta: ModelMeta
        var model: any ClickModel
        var features: ClickFeatures
        var sampler: NegativeDownsampler
        /// Online updates since adoption, and whether the model may serve (trained, or enough updates).
        var updates = 0
        var publishable: Bool
        /// Exponentially decayed Σ calibrated prediction and Σ label; examples since the last recalibration.
        var predicted = 0.0
        var observed = 0.0
        var seen = 0
    }

    private struct State {
        var join: AttributionJoin
        var working: [PredictionTarget: Working] = [:]
        var awaiting: AwaitingReport
    }

    /// Placements served but not yet reported seen by the feed, with the features the ranker
    /// saw: they enter the join when their impression is reported, so the join holds reported
    /// impressions only. Bounded: past `capacity` the oldest is forgotten (never reported, or
    /// reported later than `capacity` placements allow) and counted.
    struct AwaitingReport {
        /// A placement's slot in `ring`.
        private var slots: [String: Int] = [:]
        /// The served placements in the order they came, `capacity` slots reused in turn: once
        /// full, `head` is the oldest. A reported placement leaves its slot empty. The features
        /// (a few hundred bytes each) are written in turn into one array, not into a dictionary
        /// bucket at a random place among `capacity`.
        private var ring: [Served?] = []
        private var head = 0
        let capacity: Int
        private(set) var forgotten = 0

        private struct Served {
            var id: String
            var features: ClickFeatureInput
            var at: Timestamp
        }

        init(capacity: Int) {
            self.capacity = capacity
        }

        /// Placements waiting for their report.
        var count: Int { slots.count }

        mutating func add(_ id: String, features: ClickFeatureInput, at time: Timestamp) {
            guard slots[id] == nil else { return }
            let slot: Int
            if ring.count < capacity {
                slot = ring.count
                ring.append(nil)
            } else {
                // The oldest slot's placement goes, unless it was already reported.
                slot = head
                if let old = ring[slot] {
                    slots[old.id] = nil
                    forgotten += 1
                }
                head = (head + 1) % capacity
            }
            ring[slot] = Served(id: id, features: features, at: time)
            slots[id] = slot
        }

        /// The served placement, taken out; nil if unknown, forgotten or already reported.
        mutating func take(_ id: String) -> (features: ClickFeatureInput, at: Timestamp)? {
            guard let slot = slots.removeValue(forKey: id), let served = ring[slot] else { return nil }
            ring[slot] = nil
            return (served.features, served.at)
        }
    }

    private let state: Mutex<State>
    /// A model is published only after this many online updates since it was adopted fresh
    /// (untrained), so the first minutes of a cold start do not rank by noise.
    public let minimumUpdatesBeforePublishing: Int
    public let recalibrationExamples: Int
    public let calibrationMemory: Int
    private let seed: UInt64

    public init(
        click: ModelSlot, conversion: ModelSlot, hide: ModelSlot? = nil, windows: AttributionWindows = AttributionWindows(),
        minimumUpdatesBeforePublishing: Int = 2_000, recalibrationExamples: Int = 5_000, calibrationMemory: Int = 50_000, seed: UInt64 = 11,
        awaitingReports: Int = 200_000
    ) {
        self.hide = hide
        self.calibrationMemory = max(1, calibrationMemory)
        self.seed = seed
        self.recalibrationExamples = recalibrationExamples
        self.click = click
        self.conversion = conversion
        self.minimumUpdatesBeforePublishing = minimumUpdatesBeforePublishing
        // Both click labels wait for the window to close: see `AttributionJoin.labelsAtWindowClose`.
        self.state = Mutex(
            State(
                join: AttributionJoin(windows: windows, labelsAtWindowClose: true, labelsHides: hide != nil),
                awaiting: AwaitingReport(capacity: max(1, awaitingReports))))
    }

    /// Continue learning from `model` (a fresh retrain, or an untrained model for a cold start).
    /// A trained model is published at once; an untrained one after enough updates.
    public func adopt(_ model: any ClickModel, meta: ModelMeta, trained: Bool) throws(AdServeError) {
        let predictor = try ClickPredictor(meta: meta, model: model)
        state.withLock { state in
            // Online examples are downsampled like the model's training data, so its correction stays right.
            state.working[meta.target] = Working(
                meta: meta, model: model, features: predictor.features,
                sampler: NegativeDownsampler(keepRate: meta.negativeKeepRate, seed: seed),
                publishable: trained)
        }
        if trained { slot(meta.target)?.replace(with: predictor) }
    }

    /// A placement served (at decision time): it waits for the feed to report it seen.
    public func served(id: String, features: ClickFeatureInput, at time: Timestamp) {
        state.withLock { $0.awaiting.add(id, features: features, at: time) }
    }

    /// The feed reported the placement seen: it enters the join, served when it was decided.
    public func reported(id: String) {
        state.withLock { state in
            guard let served = state.awaiting.take(id) else { return }
            state.join.impression(id: id, features: served.features, at: served.at)
        }
    }

    /// Impressions in the join (reported, windows open), placements awaiting their report, and
    /// placements forgotten unreported since start.
    public var counts: (joined: Int, awaiting: Int, forgotten: Int) {
        state.withLock { ($0.join.pendingCount, $0.awaiting.count, $0.awaiting.forgotten) }
    }

    public func clicked(id: String, at time: Timestamp) {
        state.withLock { $0.join.click(id: id, at: time) }
    }

    public func converted(id: String, at time: Timestamp) {
        state.withLock { $0.join.conversion(id: id, at: time) }
    }

    public func hidden(id: String, at time: Timestamp) {
        state.withLock { $0.join.hide(id: id, at: time) }
    }

    /// Closes the windows that ended by `now`, learns from every newly labelled example,
    /// publishes the updated models and returns the examples (for the next full retrain).
    @discardableResult
    public func advance(to now: Timestamp) -> [JoinedExample] {
        let (examples, published) = state.withLock { state -> ([JoinedExample], [ClickPredictor]) in
            let examples = state.join.drain(now: now)
            var x = SparseFeatures()
            var touched: Set<PredictionTarget> = []
            for example in examples {
                let target = example.target
                guard var working = state.working[target] else { continue }
                state.working[target] = nil  // keep the model uniquely referenced while it learns
                working.features.encode(example.features, into: &x)
                let keep = 1 - 1 / Double(calibrationMemory)
                working.predicted = working.predicted * keep + working.meta.calibrated(working.model.predict(x))
                working.observed = working.observed * keep + (example.label ? 1 : 0)
                working.seen += 1
                if working.seen >= recalibrationExamples,
                   let (shifted, shift) = Self.shifted(working.meta.calibrator, by: working.observed, over: working.predicted) {
                    working.meta.calibrator = shifted
                    // The remembered predictions were made by the old layer: scale them as the shift would have.
                    working.predicted *= exp(shift)
                    working.seen = 0
                    touched.insert(target)
                }
                if let weight = working.sampler.sample(label: example.label) {
                    working.model.update(x, label: example.label, weight: weight)
                    working.updates += 1
                    if working.updates >= minimumUpdatesBeforePublishing { working.publishable = true }
                    touched.insert(target)
                }
                state.working[target] = working
            }
            let published = touched.compactMap { target -> ClickPredictor? in
                guard let working = state.working[target], working.publishable else { return nil }
                return try? ClickPredictor(meta: working.meta, model: working.model)
            }
            return (examples, published)
        }
        for predictor in published { slot(predictor.meta.target)?.replace(with: predictor) }
        return examples
    }

    /// The calibrator with its intercept moved by ln(observed ÷ predicted) (for rare events the
    /// log-odds shift that scales predictions by that ratio); nil where there is no intercept to
    /// move (isotonic) or no positive yet.
    static func shifted(_ calibrator: Calibrator, by observed: Double, over predicted: Double) -> (Calibrator, Double)? {
        guard observed > 0, predicted > 0 else { return nil }
        let shift = log(observed / predicted)
        switch calibrator {
        case .identity: return (.platt(PlattCalibrator(a: 1, b: shift)), shift)
        case .platt(let c): return (.platt(PlattCalibrator(a: c.a, b: c.b + shift)), shift)
        case .downsampling, .isotonic: return nil
        }
    }

    /// The serving slot of a target's model; nil for hides when they are not learned.
    public func slot(_ target: PredictionTarget) -> ModelSlot? {
        switch target {
        case .click: click
        case .conversion: conversion
        case .hide: hide
        }
    }
}

/// Online learning hears serving like any observer: the placements of the decisions of its
/// own serving path (`arm`; nil: every path) enter the join with the features the ranker saw,
/// and every recorded click and conversion follows them.
public struct OnlineLearning: ServingObserver {
    public let learner: OnlineLearner
    public let arm: String?

    public init(_ learner: OnlineLearner, arm: String? = nil) {
        self.learner = learner
        self.arm = arm
    }

    public func decided(_ decision: Decision, profile: UserProfile?, context: FeedContext, at time: Timestamp) {
        if let arm, decision.arm != arm { return }
        guard !decision.placements.isEmpty else { return }
        let inputs = ClickFeatureInput.placed(decision.placements.map(\.candidate), user: profile, context: context)
        for (placement, features) in zip(decision.placements, inputs) {
            learner.served(id: decision.placementKey(placement), features: features, at: time)
        }
    }

    /// An impression report moves its placement into the join; events of impressions this
    /// learner never saw match no open window and are ignored.
    public func recorded(_ event: EventRecord) {
        switch event.type {
        case .impression: learner.reported(id: event.placementKey)
        case .click: learner.clicked(id: event.placementKey, at: event.at)
        case .conversion: learner.converted(id: event.placementKey, at: event.at)
        case .hide, .hideAdvertiser, .notRelevant: learner.hidden(id: event.placementKey, at: event.at)
        }
    }
}
