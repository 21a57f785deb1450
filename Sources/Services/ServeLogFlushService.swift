import ServiceLifecycle
import Training

/// Writes the serve log's buffer every `interval`, and once more at shutdown.
public struct ServeLogFlushService: Service {
    let writer: ServeLogWriter
    let interval: Duration

    public init(writer: ServeLogWriter, interval: Duration = .seconds(1)) {
        self.writer = writer
        self.interval = interval
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                writer.flush()
            }
        }
        writer.flush()
    }
}
