import ServiceLifecycle
import Simulator

/// `serve --demo`'s background traffic as a service: stops on graceful shutdown.
public struct DemoTrafficService: Service {
    let traffic: LiveTraffic

    public init(traffic: LiveTraffic) { self.traffic = traffic }

    public func run() async throws {
        await cancelWhenGracefulShutdown { await traffic.run() }
    }
}
