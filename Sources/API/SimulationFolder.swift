import Domain
import Foundation

/// A folder written by `adserve simulate --out DIR`, shown on the dashboard: its report.json
/// and its SVG charts, read when asked (a new run shows on the next refresh).
public struct SimulationFolder: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    /// The run's report (`SimulationReport` as `simulate --json` prints it).
    func report() throws(AdServeError) -> Data {
        guard let data = FileManager.default.contents(atPath: (directory as NSString).appendingPathComponent("report.json")) else {
            throw AdServeError.notFound("simulation report in \(directory) (run adserve simulate --out \(directory))")
        }
        return data
    }

    /// The charts in the folder, by file name.
    func charts() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter(Self.isChartName).sorted()
    }

    /// One chart; only a plain `name.svg` in the folder itself is ever read.
    func chart(_ name: String) throws(AdServeError) -> String {
        guard Self.isChartName(name) else { throw AdServeError.invalid("name", "must be a chart file name such as ctr.svg") }
        guard let data = FileManager.default.contents(atPath: (directory as NSString).appendingPathComponent(name)) else {
            throw AdServeError.notFound("chart \(name)")
        }
        return String(decoding: data, as: UTF8.self)
    }

    static func isChartName(_ name: String) -> Bool {
        name.hasSuffix(".svg") && name.count <= 64 && name.dropLast(4).allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }
            && name.count > 4
    }
}
