import Domain
import Foundation
import Logging
import Learning
import ServiceLifecycle

/// Polls the model repository and swaps newly promoted (or rolled-back-to) models into serving,
/// without a restart and without failing a request; a model that does not load is refused and
/// logged, and the serving model stays. (Online learning runs in `LearningService`.)
public struct ModelReloaderService: Service {
    let reloader: ModelReloader
    let interval: Duration
    let logger: Logger

    public init(reloader: ModelReloader, interval: Duration = .seconds(5), logger: Logger) {
        self.reloader = reloader
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await Self.reloadOnItsOwnThread(reloader, logger: logger)
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// `reload` on a thread of its own: a new two-tower model's index takes seconds to minutes
    /// to build, which would hold one of the cooperative pool's few threads, the ones requests
    /// are answered on, for as long.
    static func reloadOnItsOwnThread(_ reloader: ModelReloader, logger: Logger) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                reload(reloader, logger: logger)
                done.resume()
            }
        }
    }

    /// One reload, each change logged. A server calls it once before it listens, so that its
    /// first request is already served by the promoted models and their candidate index, not by
    /// the fallback scoring every eligible ad (about a microsecond an ad: a tenth of a second a
    /// decision at 100k ads, a second at a million).
    public static func reload(_ reloader: ModelReloader, logger: Logger) {
        for change in reloader.reload() {
            switch change {
            case .loaded(let target, let version):
                logger.info("model loaded", metadata: ["target": "\(target.rawValue)", "version": "\(version)"])
            case .refused(let target, let version, let reason):
                logger.error("model refused", metadata: ["target": "\(target.rawValue)", "version": "\(version)", "reason": "\(reason)"])
            case .loadedCandidates(let version):
                logger.info("candidate model loaded, its index built", metadata: ["version": "\(version)"])
            case .refusedCandidates(let version, let reason):
                logger.error("candidate model refused", metadata: ["version": "\(version)", "reason": "\(reason)"])
            }
        }
    }
}
