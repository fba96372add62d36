// swift-tools-version: 6.2
import PackageDescription

// Dependencies, each chosen for one job:
// - swift-argument-parser: both executables' command lines, completions and man pages.
// - swift-log: one logging API; the daemon bootstraps a journal or console handler.
// - swift-service-lifecycle: the daemon is a group of services with one graceful shutdown.
// - swift-system: FilePath and Errno instead of raw strings and Int32s.
// - swift-subprocess: the end-to-end tests' way to run the binaries (the daemon and the CLI
//   start their processes with ReleaseSupport's own spawner).
// (release.toml and released.toml are read by the project's own TOML parser, ReleaseTOML: TOMLKit 0.6.0's
//  toml++ aborts on some malformed input and leaks on every table, unacceptable for files
//  the daemon reads from untrusted app directories.)
// - async-http-client: the notify task's webhooks (HTTPS, timeouts, redirects).
// - swift-crypto: HMAC-SHA256 for signed webhooks.
// - swift-nio: ByteBuffer and HTTP types for the notify task's requests, and the tests' HTTP
//   server (already part of async-http-client's graph).
// - postgres-nio: the cluster coordinator's PostgreSQL, on the same swift-nio (and swift-nio-ssl
//   for TLS to it).
let package = Package(
    name: "releasectl",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "released", targets: ["released"]),
        .executable(name: "releasectl", targets: ["releasectl"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", from: "4.5.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
    ],
    targets: [
        // Linux system calls Swift cannot reach through glibc (openat2, per-thread credentials,
        // renameat2, pidfds, the vfork spawn), each a one-line C wrapper behind ReleaseSupport's Syscalls and Spawn.
        .target(name: "CLinuxSyscalls", path: "Sources/CLinuxSyscalls"),
        // The one syscall shim every module uses (descriptors, listings, small files, EINTR),
        // whole writes, the quoting of untrusted input in messages, and the threads blocking
        // calls run on.
        .target(
            name: "ReleaseSupport",
            dependencies: ["CLinuxSyscalls", .product(name: "SystemPackage", package: "swift-system")],
            path: "Sources/Support"
        ),
        // release.toml's and released.toml's parser: TOML 1.0.0 in full, for untrusted input.
        .target(name: "ReleaseTOML", dependencies: ["ReleaseSupport"], path: "Sources/TOML"),
        .target(
            name: "ReleaseKit",
            dependencies: [
                "CLinuxSyscalls", "ReleaseSupport", "ReleaseTOML",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "SystemPackage", package: "swift-system"),
            ]
        ),
        .target(
            name: "ReleasePlugins",
            dependencies: [
                "ReleaseKit",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Sources/Plugins"
        ),
        // The container engine (podman's command line): image lookups and mounts, its commands,
        // and releasectl-init, which starts a task in its container.
        .target(
            name: "ReleaseContainers",
            dependencies: ["ReleaseKit", "ReleaseSupport", .product(name: "SystemPackage", package: "swift-system")],
            path: "Sources/Containers"
        ),
        // The one intake: a request, its app's files or image and the operator's policy → an
        // accepted plan or a rejection; the daemon's and `releasectl plan`'s.
        .target(
            name: "ReleaseIntake",
            dependencies: ["ReleaseKit", "ReleaseSupport", "ReleaseContainers", .product(name: "SystemPackage", package: "swift-system")],
            path: "Sources/Intake"
        ),
        .target(
            name: "ReleaseWatcher",
            dependencies: ["ReleaseSupport", .product(name: "SystemPackage", package: "swift-system")],
            path: "Sources/Watcher"
        ),
        .systemLibrary(name: "CSystemd", path: "Sources/CSystemd", pkgConfig: "libsystemd",
                       providers: [.apt(["libsystemd-dev"])]),
        // Transient units over sd-bus (its message building is variadic C): a task's slice
        // and scope, with its limits.
        .target(name: "CSystemdBus", dependencies: ["CSystemd"], path: "Sources/CSystemdBus"),
        // The daemon: all of it a library (so its logic is testable as a module), with a thin
        // executable.
        .target(
            name: "ReleaseDaemon",
            dependencies: [
                "ReleaseKit", "ReleaseSupport", "ReleaseIntake", "ReleasePlugins", "ReleaseWatcher", "ReleaseContainers", "CSystemd",
                "CSystemdBus",
                "CLinuxSyscalls",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            path: "Sources/Daemon"
        ),
        .executableTarget(name: "released", dependencies: ["ReleaseDaemon"], path: "Sources/released"),
        .executableTarget(
            name: "releasectl",
            dependencies: [
                "ReleaseKit", "ReleaseSupport", "ReleaseIntake", "ReleasePlugins", "ReleaseWatcher", "ReleaseContainers",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            path: "Sources/CLI"
        ),
        // The parsers of untrusted input under libFuzzer (script/fuzz builds it with
        // -sanitize=fuzzer -DFUZZING); a normal build gets a seeded random driver instead.
        .executableTarget(
            name: "ReleaseFuzz",
            dependencies: ["ReleaseKit", "ReleaseSupport", "ReleaseTOML"],
            path: "Fuzz/ReleaseFuzz"
        ),
        .testTarget(name: "TOMLTests", dependencies: ["ReleaseTOML", "ReleaseSupport"]),
        .testTarget(
            name: "SupportTests",
            dependencies: ["ReleaseSupport", .product(name: "SystemPackage", package: "swift-system")]
        ),
        .testTarget(
            name: "WatcherTests",
            dependencies: ["ReleaseWatcher", .product(name: "SystemPackage", package: "swift-system")]
        ),
        .testTarget(name: "ContainersTests", dependencies: ["ReleaseContainers", "ReleaseSupport"]),
        .testTarget(
            name: "ReleaseKitTests",
            dependencies: ["ReleaseKit", "ReleaseSupport", "ReleaseTOML"]
        ),
        .testTarget(
            name: "ReleasePluginsTests",
            dependencies: ["ReleaseKit", "ReleaseSupport", "ReleasePlugins"]
        ),
        // The daemon's logic (scheduler, guard registry, status text, journal writer, metrics,
        // run-as encoding), without a daemon.
        .testTarget(
            name: "DaemonTests",
            dependencies: ["ReleaseDaemon", "ReleaseKit", "ReleaseSupport"]
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "ReleaseKit", "ReleaseSupport", "CLinuxSyscalls",
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "SystemPackage", package: "swift-system"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
    ]
)
