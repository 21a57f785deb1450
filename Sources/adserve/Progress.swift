import Foundation

/// Progress of long work, one line per step on stderr (stdout stays one table or one JSON
/// document), each with the seconds since the command started.
struct Progress: Sendable {
    let started = ContinuousClock.now

    func step(_ message: String) {
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        FileHandle.standardError.write(Data("[\(String(format: "%6.1f", seconds)) s] \(message)\n".utf8))
    }
}
