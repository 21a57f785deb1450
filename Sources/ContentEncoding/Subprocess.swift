import Domain
import Foundation

/// A tool run to its end (pip, ffmpeg, the weight converter): its standard output, or an error.
public enum Subprocess {
    /// Runs `command` through `/usr/bin/env` with no input. A tool that is missing or cannot
    /// start is a storage error; one that exits non-zero throws `failure(its stderr's tail)`.
    public static func run(_ command: [String], failure: (String) -> AdServeError) throws(AdServeError) -> [UInt8] {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw AdServeError(.storage, "cannot run \(command[0]): \(error.localizedDescription)")
        }
        // Read stdout to its end before waiting, so a large output never fills the pipe and stalls.
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        if process.terminationStatus == 127 { throw AdServeError(.storage, "\(command[0]) is not installed") }
        guard process.terminationStatus == 0 else { throw failure(String(message.suffix(400))) }
        return [UInt8](data)
    }
}
