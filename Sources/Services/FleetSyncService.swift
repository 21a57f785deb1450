import Logging
import Serving
import ServiceLifecycle

/// Pulls what the other nodes over the same store wrote (`DecisionService.syncWithFleet`) every
/// `interval`, the ad counters every `countersEvery` pulls; stops on graceful shutdown. While
/// the store is unreachable it logs once per outage and keeps trying; decisions keep serving
/// from what this node knows.
public struct FleetSyncService: Service {
    let serving: DecisionService
    let interval: Duration
    let countersEvery: Int
    let logger: Logger

    public init(serving: DecisionService, interval: Duration, countersEvery: Int = 10, logger: Logger) {
        self.serving = serving
        self.interval = interval
        self.countersEvery = max(1, countersEvery)
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            var pulls = 0
            var failing = false
            while !Task.isCancelled {
                do {
                    try await Task.sleep(for: interval)
                } catch { return }
                pulls += 1
                do {
                    try await serving.syncWithFleet(counters: pulls % countersEvery == 0)
                    if failing { logger.info("fleet sync: the store answers again") }
                    failing = false
                } catch {
                    if !failing { logger.warning("fleet sync: cannot read the store; serving from this node's state", metadata: ["error": "\(error)"]) }
                    failing = true
                }
            }
        }
    }
}
