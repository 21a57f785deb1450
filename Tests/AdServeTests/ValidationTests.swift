import Domain
import Foundation
import Models
import TestSupport
import Testing
import Training

/// Text is what it claims: bounded in characters and in bytes, free of control characters.
@Suite struct TextLimitTests {
    @Test func aFewCharactersThatAreManyBytesAreRefused() {
        // One character (a base letter with 300 combining marks) but over 600 bytes.
        let heavy = "e" + String(repeating: "\u{0301}", count: 300)
        #expect(heavy.count == 1)
        #expect(throws: AdServeError.self) { try Limits.checkText(heavy, field: "company", characters: 100, required: true, multiline: false) }
        #expect(throws: Never.self) { try Limits.checkText("Café 東京 🎉", field: "company", characters: 100, required: true, multiline: false) }
    }

    @Test func newlinesAndTabsOnlyInLongText() throws {
        try Limits.checkText("line one\n\tline two", field: "caption", characters: 100, required: false, multiline: true)
        #expect(throws: AdServeError.invalid("name", "must not contain control characters (found U+A)")) {
            try Limits.checkText("a\nb", field: "name", characters: 100, required: true, multiline: false)
        }
    }
}

/// Secrets stay the owner's: the store file (it holds the token-signing key) and model files.
@Suite struct FilePermissionTests {
    static func mode(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        return (attributes[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func theStoreFileIsTheOwnersOnly() async throws {
        let database = TemporaryDatabase()
        let store = try database.open()
        _ = try await store.secret(named: "s") { [1, 2, 3] }
        #expect(try Self.mode(database.path) == 0o600)
    }

    @Test func theServeLogIsTheOwnersOnly() throws {
        let folder = TemporaryDatabase()
        let path = folder.directory.appendingPathComponent("serve-log.jsonl").path
        let writer = try ServeLogWriter(path: path)
        writer.write(["a": 1])
        writer.close()
        #expect(try Self.mode(path) == 0o600)
    }

    @Test func modelFilesAreTheOwnersOnly() throws {
        let folder = TemporaryDatabase()
        let repository = try ModelRepository(directory: folder.directory.appendingPathComponent("models").path)
        let features = ClickFeatures(hasher: FeatureHasher(bits: 10))
        let meta = ModelMeta.untrained(kind: FTRLProximal.kind, target: .click, features: features, at: Timestamp(milliseconds: 0))
        let saved = try repository.save(FTRLProximal(hasher: features.hasher), meta: meta)
        try repository.promote(saved.version)
        let root = repository.directory.path
        #expect(try Self.mode(root) == 0o700)
        #expect(try Self.mode(root + "/v000001/model.bin") == 0o600)
        #expect(try Self.mode(root + "/v000001/meta.json") == 0o600)
        #expect(try Self.mode(root + "/promoted-click.json") == 0o600)
        #expect(try repository.load(1).meta.version == 1)
    }
}
