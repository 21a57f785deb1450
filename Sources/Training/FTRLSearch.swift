import Dispatch
import Domain
import Foundation
import Models
import Synchronization

/// Chooses FTRL's learning rate α, its L1 strength and the number of passes for the data at
/// hand, instead of defaults fitted to one dataset: every setting of a small grid learns the
/// training examples and is scored by log loss on the examples that come after them in time —
/// the caller's (the trainer's calibration window) or the latest `validationShare` of the
/// training examples — the data most like what the model will serve. The caller then trains
/// with the setting chosen.
///
/// A setting's one- and two-pass results come from the same run (scored after each pass), so
/// the grid costs |α| × |L1| × `maxEpochs` passes over the earlier part, spread over the cores.
public struct FTRLSearch: Sendable {
    public var alphas: [Double] = [0.02, 0.05, 0.1, 0.2, 0.5]
    public var l1s: [Double] = [0, 1, 5, 20]
    public var maxEpochs = 2
    public var validationShare = 0.2
    /// With fewer positives or negatives than this in either part, the search would measure
    /// noise: the base parameters are kept.
    public var minimumLabels = 10

    public init(maxEpochs: Int = 2) { self.maxEpochs = max(1, maxEpochs) }

    /// One setting of the grid.
    public struct Setting: Sendable, Equatable, Codable {
        public var alpha: Double
        public var beta: Double
        public var l1: Double
        public var l2: Double
        public var epochs: Int

        public var parameters: FTRLProximal.Parameters {
            var p = FTRLProximal.Parameters()
            p.alpha = alpha
            p.beta = beta
            p.l1 = l1
            p.l2 = l2
            return p
        }

        public var summary: String {
            "alpha \(TextTable.fixed(alpha, 3)), L1 \(TextTable.fixed(l1, 1)), L2 \(TextTable.fixed(l2, 1)), \(epochs) pass\(epochs == 1 ? "" : "es")"
        }
    }

    /// What was chosen, and how the best setting scored against the base setting on the same
    /// validation tail.
    public struct Choice: Sendable, Equatable, Codable {
        /// The setting the caller passed (its defaults or its options).
        public var given: Setting
        /// The setting to train with: the best one, or the base setting when the best did not
        /// beat it by more than `standardErrors` standard errors of the paired difference.
        public var chosen: Setting
        /// The setting with the lowest validation log loss (nil when the search did not run).
        public var best: Setting?
        public var bestLogloss: Double?
        public var baseLogloss: Double?
        /// The standard error of the mean per-example difference in log loss, base − best.
        public var standardError: Double?
        public var validationExamples: Int
        /// Settings tried, passes counted apart (0: too little data, the base setting kept).
        public var settingsTried: Int
        /// How many standard errors the best had to win by.
        public var standardErrorsAsked: Double

        /// The validation log loss of the chosen setting (nil when the search did not run).
        public var chosenLogloss: Double? { chosen == best ? bestLogloss : baseLogloss }

        public var parameters: FTRLProximal.Parameters { chosen.parameters }
        public var epochs: Int { chosen.epochs }

        /// One line for people.
        public var summary: String {
            guard let best, let bestLogloss, let baseLogloss, let standardError else {
                return given.summary + " as given (too few labels to choose on)"
            }
            let scores = "log loss \(TextTable.fixed(bestLogloss, 4)) against \(TextTable.fixed(baseLogloss, 4)) as given, standard error \(TextTable.fixed(standardError, 4))"
            let tried = "\(settingsTried) settings judged on \(validationExamples) later examples"
            if chosen != given { return chosen.summary + " — chosen among \(tried) (\(scores))" }
            if best == given { return given.summary + " as given: the best of \(tried)" }
            return given.summary + " as given: the best of \(tried), \(best.summary), was not better by \(TextTable.fixed(standardErrorsAsked, 0)) standard error\(standardErrorsAsked == 1 ? "" : "s") (\(scores))"
        }
    }

    /// How many standard errors the best setting must beat the given one by to be chosen: on a
    /// small or noisy tail, the lowest of 40 log losses is lower partly by chance. One, as in the
    /// one-standard-error rule of cross-validation (Hastie, Tibshirani and Friedman, "The
    /// Elements of Statistical Learning", §7.10), with the given setting as the simple one.
    public var standardErrors = 1.0

    /// Chooses a setting for time-ordered `features`/`labels`: each setting learns them and is
    /// scored on `validation` — the examples that come right after them — or, without it, learns
    /// all but their latest `validationShare` and is scored on those. `weights` (importance
    /// weights, nil: 1) apply to learning, and `adjust` maps a raw prediction to the probability
    /// scored (for example, to undo negative downsampling). With a `calibration`, each
    /// setting's predictions are first calibrated by that method fitted on the scored examples
    /// themselves: the trainer puts a calibration layer on the model, so what matters is how
    /// well a setting ranks and separates, not how calibrated its raw output is.
    public func choose(
        features: [SparseFeatures], labels: [Bool], weights: [Double]? = nil, validation: (features: [SparseFeatures], labels: [Bool])? = nil,
        hasher: FeatureHasher, base: FTRLProximal.Parameters = .init(), baseEpochs: Int = 1, calibration: CalibrationMethod = .none,
        adjust: @Sendable (Double) -> Double = { $0 }
    ) -> Choice {
        scored(
            features: features, labels: labels, weights: weights, validation: validation, hasher: hasher, base: base, baseEpochs: baseEpochs,
            calibration: calibration, adjust: adjust
        ).choice
    }

    /// `choose`, with the chosen setting's log loss on each validation example (empty when the
    /// search did not run): what a caller comparing two searches on the same examples pairs.
    public func scored(
        features: [SparseFeatures], labels: [Bool], weights: [Double]? = nil, validation: (features: [SparseFeatures], labels: [Bool])? = nil,
        hasher: FeatureHasher, base: FTRLProximal.Parameters = .init(), baseEpochs: Int = 1, calibration: CalibrationMethod = .none,
        adjust: @Sendable (Double) -> Double = { $0 }
    ) -> (choice: Choice, losses: [Float]) {
        precondition(features.count == labels.count && (weights?.count ?? labels.count) == labels.count)
        let cut = validation == nil ? labels.count - Int((Double(labels.count) * validationShare).rounded()) : labels.count
        let fitX = Array(features[..<cut])
        let fitY = Array(labels[..<cut])
        let fitW = weights.map { Array($0[..<cut]) }
        let tailX = validation?.features ?? Array(features[cut...])
        let tailY = validation?.labels ?? Array(labels[cut...])
        precondition(tailX.count == tailY.count)
        let tail = tailY.count
        let fitPositives = fitY.count(where: { $0 })
        let tailPositives = tailY.count(where: { $0 })
        let given = Setting(alpha: base.alpha, beta: base.beta, l1: base.l1, l2: base.l2, epochs: max(1, baseEpochs))
        guard min(fitPositives, cut - fitPositives, tailPositives, tail - tailPositives) >= minimumLabels else {
            let choice = Choice(
                given: given, chosen: given, best: nil, bestLogloss: nil, baseLogloss: nil, standardError: nil, validationExamples: tail, settingsTried: 0,
                standardErrorsAsked: standardErrors)
            return (choice, [])
        }

        var grid: [FTRLProximal.Parameters] = []
        for alpha in alphas {
            for l1 in l1s {
                var p = base
                p.alpha = alpha
                p.l1 = l1
                grid.append(p)
            }
        }
        if !grid.contains(base) { grid.append(base) }
        let settings = grid
        // losses[s][e]: each tail example's log loss under setting s after e + 1 passes.
        let losses = Mutex([[[Float]]](repeating: [], count: settings.count))
        let epochs = max(maxEpochs, given.epochs)
        DispatchQueue.concurrentPerform(iterations: settings.count) { s in
            var model = FTRLProximal(hasher: hasher, parameters: settings[s])
            var perPass: [[Float]] = []
            for _ in 0..<epochs {
                for i in 0..<cut { model.update(fitX[i], label: fitY[i], weight: fitW?[i] ?? 1) }
                let predictions = tailX.map { adjust(model.predict($0)) }
                let calibrator = calibration.fit(predictions: predictions, labels: tailY)
                perPass.append(zip(predictions, tailY).map { Float(OfflineMetrics.logloss(calibrator.calibrate($0), $1)) })
            }
            losses.withLock { $0[s] = perPass }
        }
        let scored = losses.withLock { $0 }
        func mean(_ s: Int, _ e: Int) -> Double { scored[s][e - 1].reduce(0) { $0 + Double($1) } / Double(tail) }
        let baseIndex = settings.firstIndex(of: base)!
        let basePasses = min(given.epochs, epochs)
        var best = (setting: baseIndex, epochs: basePasses)
        for s in settings.indices {
            for e in 1...epochs where mean(s, e) < mean(best.setting, best.epochs) { best = (s, e) }
        }
        // The paired difference per tail example, base − best: its mean is the gain.
        let (gain, standardError) = Self.pairedGain(scored[baseIndex][basePasses - 1], scored[best.setting][best.epochs - 1]) ?? (0, 0)
        let p = settings[best.setting]
        let bestSetting = Setting(alpha: p.alpha, beta: p.beta, l1: p.l1, l2: p.l2, epochs: best.epochs)
        let movesOn = gain > standardErrors * standardError
        let choice = Choice(
            given: given, chosen: movesOn ? bestSetting : given, best: bestSetting, bestLogloss: mean(best.setting, best.epochs),
            baseLogloss: mean(baseIndex, basePasses), standardError: standardError, validationExamples: tail,
            settingsTried: settings.count * epochs, standardErrorsAsked: standardErrors)
        return (choice, movesOn ? scored[best.setting][best.epochs - 1] : scored[baseIndex][basePasses - 1])
    }

    /// The paired comparison of two searches scored on the same validation examples: the mean
    /// of `a − b` per example (positive: `b` scored lower) and its standard error.
    public static func pairedGain(_ a: [Float], _ b: [Float]) -> (gain: Double, standardError: Double)? {
        guard a.count == b.count, a.count > 1 else { return nil }
        let differences = zip(a, b).map { Double($0) - Double($1) }
        let gain = differences.reduce(0, +) / Double(differences.count)
        let variance = differences.reduce(0) { $0 + ($1 - gain) * ($1 - gain) } / Double(differences.count - 1)
        return (gain, (variance / Double(differences.count)).squareRoot())
    }
}
