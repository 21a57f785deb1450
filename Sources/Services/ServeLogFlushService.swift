import Logging
import ServiceLifecycle
import Training

/// Writes the serve log's buffer every `interval`, and once more at shutdown. When lines are
/// dropped (a full disk, an I/O error), it says so in the server's log, once per new loss.
public struct ServeLogFlushService: Service {
    let writer: ServeLogWriter
    let interval: Duration
    let logger: Logger?

    public init(writer: ServeLogWriter, interval: Duration = .seconds(1), logger: Logger? = nil) {
        self.writer = writer
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var reported = 0
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                writer.flush()
                let dropped = writer.droppedLines
                if dropped > reported, let error = writer.lastError {
                    logger?.error("serve log lines dropped", metadata: ["dropped": "\(dropped)", "error": "\(error.message)"])
                    reported = dropped
                }
            }
        }
        writer.flush()
    }
}
