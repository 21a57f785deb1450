import Domain
import Foundation
import Learning
import Models
import Testing
import TestSupport
import Training

/// Model files are checked when they are loaded (size, checksum, bounded counts, finite
/// weights); a bad one is refused while the model already serving stays.
@Suite struct ModelFileTests {
    static let features = ClickFeatures(hasher: FeatureHasher(bits: 10))

    /// A small FTRL model with some learning in it; another seed gives another model.
    static func model(seed: UInt64) -> FTRLProximal {
        var model = FTRLProximal(hasher: features.hasher)
        var rng = SplitMix64(seed: seed)
        for _ in 0..<500 {
            let ad = Int64.random(in: 1...5, using: &rng)
            model.update(features.encode(TrainingTests.input(ad: ad)), label: Double.random(in: 0..<1, using: &rng) < 0.05 * Double(ad))
        }
        return model
    }

    static var meta: ModelMeta {
        ModelMeta.untrained(kind: FTRLProximal.kind, target: .click, features: features, at: TrainingTests.t0)
    }

    /// Ways a promoted model's files go bad on disk, and what the refusal must name.
    enum Damage: String, CaseIterable, Sendable {
        case flippedByte, truncated, nonFiniteWeight

        var reason: String {
            switch self {
            case .flippedByte: "checksum"
            case .truncated: "its metadata recorded"
            case .nonFiniteWeight: "non-finite weight"
            }
        }

        /// Damages the version stored in `folder`.
        func apply(to folder: URL) throws {
            let weights = folder.appendingPathComponent("model.bin")
            var bytes = [UInt8](try Data(contentsOf: weights))
            switch self {
            case .flippedByte:
                bytes[bytes.count / 2] ^= 0x10
            case .truncated:
                bytes.removeLast(bytes.count / 3)
            case .nonFiniteWeight:
                // A NaN in the last stored float, with the metadata's checksum made to match it:
                // only the finiteness check can catch this one.
                let nan = Float.nan.bitPattern
                for k in 0..<4 { bytes[bytes.count - 4 + k] = UInt8(truncatingIfNeeded: nan >> (8 * k)) }
                let url = folder.appendingPathComponent("meta.json")
                var meta = try JSONFormat.decoder().decode(ModelMeta.self, from: Data(contentsOf: url))
                meta.checksum = ModelChecksum.of(bytes)
                try JSONFormat.encoder(pretty: true).encode(meta).write(to: url)
            }
            try Data(bytes).write(to: weights)
        }
    }

    @Test(arguments: Damage.allCases)
    func aDamagedModelIsRefusedAndTheServingOneStays(damage: Damage) throws {
        let folder = TemporaryDatabase()
        let repository = try ModelRepository(directory: folder.directory.appendingPathComponent("models").path)
        let first = try repository.save(Self.model(seed: 1), meta: Self.meta)
        try repository.promote(first.version)
        let click = ModelSlot()
        let reloader = ModelReloader(repository: repository, click: click, conversion: ModelSlot())
        #expect(reloader.reload() == [.loaded(target: .click, version: 1)])
        let serving = try #require(click.predictor)

        let second = try repository.save(Self.model(seed: 2), meta: Self.meta)
        try repository.promote(second.version)  // whole when promoted, damaged on disk before the reload
        try damage.apply(to: repository.directory.appendingPathComponent("v000002"))

        let changes = reloader.reload()
        #expect(changes.count == 1)
        guard case .refused(.click, 2, let reason) = changes.first else {
            Issue.record("expected model 2 to be refused, got \(changes)")
            return
        }
        #expect(reason.contains("model 2") && reason.contains(damage.reason), "\(reason)")
        #expect(click.predictor?.meta.version == 1)
        let x = Self.features.encode(TrainingTests.input(ad: 3))
        #expect(click.predictor?.predict(x) == serving.predict(x))
        // Refused again on the next try, and never half-loaded.
        #expect(reloader.reload().count == 1)
        #expect(click.predictor?.meta.version == 1)
    }

    @Test func savedMetadataRecordsTheWeightsFilesSizeAndChecksum() throws {
        let folder = TemporaryDatabase()
        let repository = try ModelRepository(directory: folder.directory.path)
        let model = Self.model(seed: 1)
        let saved = try repository.save(model, meta: Self.meta)
        let bytes = model.serialized()
        #expect(saved.fileBytes == bytes.count)
        #expect(saved.checksum == ModelChecksum.of(bytes))
        let stored = try repository.meta(saved.version)
        #expect(stored.fileBytes == bytes.count && stored.checksum == saved.checksum)
        let loaded = try repository.load(saved.version)
        let x = Self.features.encode(TrainingTests.input(ad: 2))
        #expect(loaded.model.predict(x) == model.predict(x))
    }

    /// Metadata written before checksums has neither field; its model still loads.
    @Test func metadataFromBeforeChecksumsStillLoads() throws {
        let folder = TemporaryDatabase()
        let repository = try ModelRepository(directory: folder.directory.path)
        let saved = try repository.save(Self.model(seed: 1), meta: Self.meta)
        let url = repository.directory.appendingPathComponent("v000001/meta.json")
        var old = saved
        old.fileBytes = nil
        old.checksum = nil
        let data = try JSONFormat.encoder(pretty: true).encode(old)
        let text = String(decoding: data, as: UTF8.self)
        #expect(!text.contains("checksum") && !text.contains("file_bytes"))
        try data.write(to: url)
        #expect(try repository.load(1).meta.checksum == nil)
        try repository.promote(1)
        #expect(repository.promoted(.click) == 1)
    }

    @Test func theChecksumIsFNV1a64() {
        #expect(ModelChecksum.fnv1a64([]) == 0xcbf2_9ce4_8422_2325)
        #expect(ModelChecksum.fnv1a64(Array("a".utf8)) == 0xaf63_dc4c_8601_ec8c)
        #expect(ModelChecksum.of(Array("foobar".utf8)) == "fnv1a64:85944171f73967e8")
        #expect(ModelChecksum.of([]) == "fnv1a64:cbf29ce484222325")
    }

    /// The model formats themselves refuse non-finite numbers and a header that claims more
    /// than the file holds, whatever the metadata says.
    @Test func modelFormatsRefuseNonFiniteNumbersAndOversizedHeaders() {
        // FTRL: "ADSV-FTRL", format version, hash version, then the hash bits at byte 17.
        var ftrl = Self.model(seed: 1).serialized()
        ftrl[ftrl.count - 1] = 0x7F
        ftrl[ftrl.count - 2] = 0xC0  // the last float becomes a NaN (0x7FC0_0000)
        ftrl[ftrl.count - 3] = 0
        ftrl[ftrl.count - 4] = 0
        Self.expectRefusal(naming: "non-finite weight") { () throws(AdServeError) -> Void in _ = try FTRLProximal(serialized: ftrl) }

        var oversized = Self.model(seed: 1).serialized()
        oversized[17] = 28  // 2^28 coordinates claimed by a file that holds 2^10
        Self.expectRefusal(naming: "does not match its header") { () throws(AdServeError) -> Void in _ = try FTRLProximal(serialized: oversized) }

        // FM: "ADSV-FM", format version, hash version, bits, hash seed, k, then α_w at byte 31.
        var fm = FactorizationMachine(hasher: FeatureHasher(bits: 8)).serialized()
        let nan = Double.nan.bitPattern
        for k in 0..<8 { fm[31 + k] = UInt8(truncatingIfNeeded: nan >> (8 * k)) }
        Self.expectRefusal(naming: "non-finite parameter") { () throws(AdServeError) -> Void in _ = try FactorizationMachine(serialized: fm) }
    }

    static func expectRefusal(naming problem: String, sourceLocation: SourceLocation = #_sourceLocation, _ body: () throws(AdServeError) -> Void) {
        do throws(AdServeError) {
            try body()
            Issue.record("expected a refusal naming \(problem)", sourceLocation: sourceLocation)
        } catch {
            #expect(error.message.contains(problem), "\(error)", sourceLocation: sourceLocation)
        }
    }
}
