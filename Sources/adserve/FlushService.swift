import ServiceLifecycle
import Simulator

/// Writes the serve log's buffer every `interval`, and once more at shutdown.
struct FlushService: Service {
    let writer: JSONLinesWriter
    let interval: Duration

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: interval)
                writer.flush()
            }
        }
        writer.flush()
    }
}
