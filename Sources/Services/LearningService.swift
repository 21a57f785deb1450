import Domain
import Learning
import Logging
import Metrics
import ServiceLifecycle
import Serving

/// Learning and logging off the request path: every `drainInterval` it passes what serving
/// buffered (`ObserverBuffer`: decisions and recorded events) to online learning's join and to
/// the serve log; every `learnInterval` online learning closes the windows that have ended,
/// learns and publishes its models to the serving slots. Exports the buffer's depth and drops
/// (`adserve_learning_buffer_waiting`, `adserve_learning_dropped_total`) and logs new drops.
public struct LearningService: Service {
    let buffer: ObserverBuffer
    let learner: OnlineLearner?
    let clock: any WallClock
    let drainInterval: Duration
    let learnInterval: Duration
    let logger: Logger

    public init(
        buffer: ObserverBuffer, learner: OnlineLearner?, clock: any WallClock, drainInterval: Duration = .milliseconds(100),
        learnInterval: Duration = .seconds(5), logger: Logger
    ) {
        self.buffer = buffer
        self.learner = learner
        self.clock = clock
        self.drainInterval = drainInterval
        self.learnInterval = learnInterval
        self.logger = logger
    }

    public func run() async throws {
        let waiting = Gauge(label: "adserve_learning_buffer_waiting")
        let dropped = Counter(label: "adserve_learning_dropped_total")
        let forgotten = Counter(label: "adserve_learning_unreported_total")
        await cancelWhenGracefulShutdown {
            var reported = (dropped: 0, forgotten: 0)
            var nextLearn = ContinuousClock.now + learnInterval
            while !Task.isCancelled {
                try? await Task.sleep(for: drainInterval)
                let counts = buffer.counts
                waiting.record(counts.waiting)
                buffer.drain()
                if counts.dropped > reported.dropped {
                    dropped.increment(by: counts.dropped - reported.dropped)
                    logger.warning("learning buffer full: oldest work dropped", metadata: ["dropped_total": "\(counts.dropped)", "capacity": "\(buffer.capacity)"])
                    reported.dropped = counts.dropped
                }
                guard let learner, ContinuousClock.now >= nextLearn else { continue }
                learner.advance(to: clock.now())
                nextLearn = ContinuousClock.now + learnInterval
                let unreported = learner.counts.forgotten
                if unreported > reported.forgotten {
                    forgotten.increment(by: unreported - reported.forgotten)
                    reported.forgotten = unreported
                }
            }
        }
        buffer.drain()
    }
}
