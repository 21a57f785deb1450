import Domain
import Foundation
import Models

/// Trained models on disk, one directory per version (`v000001/model.bin`, `meta.json`), and
/// per target the promotion history (`promoted-click.json`): the last entry is what serves,
/// rollback drops it. Files are written to a temporary name and renamed, so a reader never sees
/// half a file.
public struct ModelRepository: Sendable {
    public let directory: URL

    public init(directory: String) throws(AdServeError) {
        self.directory = URL(fileURLWithPath: directory, isDirectory: true)
        do {
            try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw AdServeError.invalid("models", "cannot create model directory \(directory): \(error.localizedDescription)")
        }
    }

    private func versionDirectory(_ version: Int) -> URL {
        let digits = String(version)
        return directory.appendingPathComponent("v" + String(repeating: "0", count: max(0, 6 - digits.count)) + digits, isDirectory: true)
    }

    /// Stores a new version and returns its metadata with the version number, the weights
    /// file's size and its checksum filled in.
    public func save(_ model: any ClickModel, meta: ModelMeta) throws -> ModelMeta {
        var meta = meta
        meta.version = (try list().map(\.version).max() ?? 0) + 1
        let bytes = model.serialized()
        meta.fileBytes = bytes.count
        meta.checksum = ModelChecksum.of(bytes)
        let folder = versionDirectory(meta.version)
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try Self.atomicWrite(Data(bytes), to: folder.appendingPathComponent("model.bin"))
        try Self.atomicWrite(try JSONFormat.encoder(pretty: true).encode(meta), to: folder.appendingPathComponent("meta.json"))
        return meta
    }

    /// Every stored version, oldest first. A version whose metadata cannot be read is skipped.
    public func list() throws -> [ModelMeta] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []
        return names.filter { $0.hasPrefix("v") }.sorted().compactMap { name in
            let url = directory.appendingPathComponent(name).appendingPathComponent("meta.json")
            return (try? Data(contentsOf: url)).flatMap { try? JSONFormat.decoder().decode(ModelMeta.self, from: $0) }
        }
    }

    public func meta(_ version: Int) throws(AdServeError) -> ModelMeta {
        let url = versionDirectory(version).appendingPathComponent("meta.json")
        guard let data = try? Data(contentsOf: url) else { throw AdServeError.notFound("model version \(version)") }
        do {
            return try JSONFormat.decoder().decode(ModelMeta.self, from: data)
        } catch {
            throw AdServeError.invalid("model", "model \(version): unreadable metadata")
        }
    }

    /// Loads and checks a version: a corrupt or incompatible file throws, nothing half-loaded.
    /// The weights file must have the size and checksum its metadata recorded (metadata from
    /// before checksums has neither, and skips these two checks), and every count in it must
    /// fit the file and every weight be finite (`ModelKinds.decode`). The error names the
    /// version and what was wrong; a server's reloader refuses such a version and keeps serving
    /// the model it has.
    public func load(_ version: Int) throws(AdServeError) -> ClickPredictor {
        let meta = try meta(version)
        guard let data = try? Data(contentsOf: versionDirectory(version).appendingPathComponent("model.bin")) else {
            throw AdServeError.invalid("model", "model \(version): weights file missing")
        }
        let bytes = [UInt8](data)
        if let expected = meta.fileBytes, bytes.count != expected {
            throw AdServeError(.storage, "model \(version): weights file holds \(bytes.count) bytes; its metadata recorded \(expected)")
        }
        if let expected = meta.checksum {
            let actual = ModelChecksum.of(bytes)
            guard actual == expected else {
                throw AdServeError(.storage, "model \(version): weights file checksum \(actual) does not match the \(expected) its metadata recorded")
            }
        }
        let model: any ClickModel
        do throws(AdServeError) {
            model = try ModelKinds.decode(meta.kind, bytes: bytes)
        } catch {
            throw AdServeError(error.code, "model \(version): \(error.message)", field: error.field)
        }
        return try ClickPredictor(meta: meta, model: model)
    }

    // MARK: Promotion

    private func historyURL(_ target: PredictionTarget) -> URL { directory.appendingPathComponent("promoted-\(target.rawValue).json") }

    /// Promoted versions of a target, oldest first; the last one serves.
    public func history(_ target: PredictionTarget) -> [Int] { Self.history(at: historyURL(target)) }

    public func promoted(_ target: PredictionTarget) -> Int? { history(target).last }

    /// Makes `version` the serving model of its target. The version must exist and load.
    public func promote(_ version: Int) throws {
        let predictor = try load(version)
        try Self.append(version, toHistoryAt: historyURL(predictor.meta.target))
    }

    /// Returns to the previously promoted version of `target`; throws if there is none.
    @discardableResult
    public func rollback(_ target: PredictionTarget) throws -> Int {
        try Self.rollBack(historyAt: historyURL(target), what: "\(target.rawValue) model")
    }

    /// A promotion history file's versions, oldest first (none if it is missing or unreadable).
    static func history(at url: URL) -> [Int] {
        (try? Data(contentsOf: url)).flatMap { try? JSONFormat.decoder().decode([Int].self, from: $0) } ?? []
    }

    /// Records `version` as promoted last (unless it already is).
    static func append(_ version: Int, toHistoryAt url: URL) throws {
        var history = history(at: url)
        if history.last != version { history.append(version) }
        try atomicWrite(try JSONFormat.encoder(pretty: true).encode(history), to: url)
    }

    /// Drops the last promoted version and returns the one that serves again; throws if there is
    /// none before it.
    static func rollBack(historyAt url: URL, what: String) throws -> Int {
        var history = history(at: url)
        guard history.count >= 2 else { throw AdServeError(.conflict, "no earlier promoted \(what) to roll back to") }
        history.removeLast()
        try atomicWrite(try JSONFormat.encoder(pretty: true).encode(history), to: url)
        return history[history.count - 1]
    }

    /// Writes `data` to a temporary file readable by the owner only, fsyncs it, renames it over
    /// `url` (atomic) and fsyncs the folder, so a promoted model is on disk before anyone is
    /// told about it and a reader never sees half a file.
    static func atomicWrite(_ data: Data, to url: URL) throws {
        let folder = url.deletingLastPathComponent()
        let temporary = folder.appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString)")
        func fail(_ what: String) -> AdServeError { AdServeError(.storage, "cannot \(what) \(url.path): errno \(errno)") }
        let fd = open(temporary.path, O_CREAT | O_EXCL | O_WRONLY, 0o600)
        guard fd >= 0 else { throw fail("create") }
        let written = data.withUnsafeBytes { bytes -> Bool in
            var offset = 0
            while offset < bytes.count {
                let n = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if n <= 0 { return false }
                offset += n
            }
            return true
        }
        let synced = written && fsync(fd) == 0
        close(fd)
        // rename(2) replaces the destination atomically.
        guard synced, rename(temporary.path, url.path) == 0 else {
            let error = fail(synced ? "rename onto" : "write")
            unlink(temporary.path)
            throw error
        }
        let directory = open(folder.path, O_RDONLY)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
    }
}

extension ClickPredictor {
    /// Calibrated predictions for logged examples, encoded as serving would.
    public func predictions(for examples: [JoinedExample]) -> [Double] {
        var x = SparseFeatures()
        return examples.map { example in
            features.encode(example.features, into: &x)
            return predict(x)
        }
    }
}

extension ModelRepository {
    /// Stored versions as a table for people: which one serves each target, and how each
    /// measured on the data it was evaluated on.
    public func table(_ versions: [ModelMeta]) -> String {
        var rows = [["version", "kind", "target", "serving", "examples", "AUC", "NE", "calibration", "impressions from", "to"]]
        for m in versions {
            rows.append([
                String(m.version), m.kind, m.target.rawValue, promoted(m.target) == m.version ? "yes" : "",
                String(m.trainingExamples), TextTable.fixed(m.metrics.auc, 4), TextTable.fixed(m.metrics.ne, 4),
                TextTable.fixed(m.metrics.calibration, 3), m.trainedFrom.iso8601, m.trainedTo.iso8601,
            ])
        }
        return TextTable.render(rows)
    }
}
