#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Runs `body(worker)` for each `worker` in `0..<count` on its own thread (worker 0 on the
/// calling thread) and returns when all have finished. Plain pthreads: the build is CPU-bound,
/// synchronous work that should neither block the cooperative pool nor need Foundation.
func runWorkers(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    guard count > 1 else {
        body(0)
        return
    }
    var threads: [pthread_t] = []
    for worker in 1..<count {
        let context = Unmanaged.passRetained(WorkerContext(worker: worker, body: body)).toOpaque()
        #if canImport(Glibc)
        var thread = pthread_t()
        let status = pthread_create(&thread, nil, { raw in
            WorkerContext.run(raw!)
            return nil
        }, context)
        precondition(status == 0, "pthread_create failed: \(status)")
        threads.append(thread)
        #else
        var thread: pthread_t?
        let status = pthread_create(&thread, nil, { raw in
            WorkerContext.run(raw)
            return nil
        }, context)
        precondition(status == 0, "pthread_create failed: \(status)")
        threads.append(thread!)
        #endif
    }
    body(0)
    for thread in threads { pthread_join(thread, nil) }
}

/// What one spawned thread runs, passed through pthread's untyped argument.
private final class WorkerContext: Sendable {
    let worker: Int
    let body: @Sendable (Int) -> Void

    init(worker: Int, body: @escaping @Sendable (Int) -> Void) {
        self.worker = worker
        self.body = body
    }

    /// Takes back the reference `runWorkers` retained for the thread and runs the body.
    static func run(_ raw: UnsafeMutableRawPointer) {
        let context = Unmanaged<WorkerContext>.fromOpaque(raw).takeRetainedValue()
        context.body(context.worker)
    }
}
