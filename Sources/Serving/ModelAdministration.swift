import Domain

/// One stored model as an operator sees it: what it predicts, what it learned from, how it did
/// on the held-out data it was judged on, and whether it is the one its target serves.
public struct ModelSummary: Sendable, Equatable {
    public var version: Int
    public var target: String
    public var kind: String
    public var createdAt: Timestamp
    public var trainingExamples: Int
    /// Held-out examples and the metrics on them (AUC, log loss, NE against their own base rate,
    /// calibration = mean prediction ÷ observed rate).
    public var heldOutExamples: Int
    public var auc: Double
    public var logloss: Double
    public var ne: Double
    public var calibration: Double
    public var serving: Bool

    public init(
        version: Int, target: String, kind: String, createdAt: Timestamp, trainingExamples: Int, heldOutExamples: Int, auc: Double, logloss: Double,
        ne: Double, calibration: Double, serving: Bool
    ) {
        self.version = version
        self.target = target
        self.kind = kind
        self.createdAt = createdAt
        self.trainingExamples = trainingExamples
        self.heldOutExamples = heldOutExamples
        self.auc = auc
        self.logloss = logloss
        self.ne = ne
        self.calibration = calibration
        self.serving = serving
    }
}

/// What an operator may do with the model repository a server serves from (`GET /v1/models`,
/// promote, roll back): the same as `adserve models list|promote|rollback`. Serving nodes pick a
/// change up on their next model reload.
public protocol ModelAdministration: Sendable {
    /// Every stored version, newest first.
    func models() throws -> [ModelSummary]
    /// Makes `version` the serving model of its target; a version that does not exist or does
    /// not load is refused.
    func promote(_ version: Int) throws -> ModelSummary
    /// Returns `target` to its previously promoted version (a conflict if there is none).
    func rollBack(_ target: String) throws -> ModelSummary
}
