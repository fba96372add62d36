import ServiceLifecycle

/// The cluster coordinator's loops, one `Service` each, run while the daemon runs and shut
/// down after the releases (the leases are renewed while they finish):
///
/// - `ClusterLeaseService`: every third of the lease, the schema and what this node left
///   (until settled), the heartbeat, the lease renewals, the sweep of expired leases, the ends
///   not written yet, and the status file `releasectl cluster status` reads;
/// - `ClusterDeadlineService`: every 200 ms, the lease book's stop times (a lease not renewed
///   in time ends its release's tasks before it runs out);
/// - `ClusterOutputService`: every 100 ms, the running releases' output to the database;
/// - `ClusterListenService`: LISTEN on the cluster's channel, waking followers and the
///   scheduler;
/// - `ClusterRegistrationService`: admitted releases registered in order of admission.
enum ClusterServices {
    /// The services of `coordinator` (none without a cluster).
    static func all(_ coordinator: ClusterCoordinator?) -> [any Service] {
        guard let coordinator else { return [] }
        return [ClusterLeaseService(coordinator: coordinator), ClusterDeadlineService(coordinator: coordinator),
                ClusterOutputService(coordinator: coordinator), ClusterListenService(coordinator: coordinator),
                ClusterRegistrationService(coordinator: coordinator)]
    }
}

/// Repeats `body` every `interval` until the daemon shuts down.
private func every(_ interval: @escaping @Sendable () -> Duration, _ body: @escaping @Sendable () async -> Void) async {
    await cancelWhenGracefulShutdown {
        while !Task.isCancelled {
            await body()
            try? await Task.sleep(for: interval())
        }
    }
}

struct ClusterLeaseService: Service {
    let coordinator: ClusterCoordinator
    func run() async throws { await every({ coordinator.settings.lease / 3 }) { await coordinator.tick() } }
}

struct ClusterDeadlineService: Service {
    let coordinator: ClusterCoordinator
    func run() async throws { await every({ .milliseconds(200) }) { coordinator.watchDeadlines() } }
}

struct ClusterOutputService: Service {
    let coordinator: ClusterCoordinator
    func run() async throws { await every({ .milliseconds(100) }) { await coordinator.flushOutput() } }
}

struct ClusterListenService: Service {
    let coordinator: ClusterCoordinator
    func run() async throws { await cancelWhenGracefulShutdown { await coordinator.listen() } }
}

struct ClusterRegistrationService: Service {
    let coordinator: ClusterCoordinator
    func run() async throws { await cancelWhenGracefulShutdown { await coordinator.registerAdmitted() } }
}
