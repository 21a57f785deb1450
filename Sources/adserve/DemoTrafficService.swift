import ServiceLifecycle
import Simulator

/// `serve --demo`'s background traffic as a service: stops on graceful shutdown.
struct DemoTrafficService: Service {
    let traffic: LiveTraffic

    func run() async throws {
        await cancelWhenGracefulShutdown { await traffic.run() }
    }
}
