import Foundation
import Synchronization

/// Appends one JSON object per line to a file, buffered; safe to call from any task.
public final class JSONLinesWriter: Sendable {
    private struct State {
        var handle: FileHandle
        var buffer = Data()
    }

    private let state: Mutex<State>
    private let encoder: JSONEncoder

    /// Truncates the file, or with `append` adds to its end (a server's log across restarts).
    public init(path: String, append: Bool = false) throws {
        if !append || !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        guard let handle = FileHandle(forWritingAtPath: path) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        if append { handle.seekToEndOfFile() }
        self.state = Mutex(State(handle: handle))
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        self.encoder = encoder
    }

    public func write(_ value: some Encodable) {
        guard let data = try? encoder.encode(value) else { return }
        state.withLock { s in
            s.buffer.append(data)
            s.buffer.append(0x0A)
            if s.buffer.count >= 1 << 20 {
                s.handle.write(s.buffer)
                s.buffer.removeAll(keepingCapacity: true)
            }
        }
    }

    /// Writes what is buffered.
    public func flush() {
        state.withLock { s in
            s.handle.write(s.buffer)
            s.buffer.removeAll(keepingCapacity: true)
        }
    }

    public func close() {
        flush()
        state.withLock { s in try? s.handle.close() }
    }
}
