import Logging
import ReleaseKit
import ReleaseSupport
import ServiceLifecycle

/// Retention at start and hourly; rejections that could not be filed (disk full) looked at
/// again every 30 s.
struct MaintenanceService: Service {
    let scheduler: Scheduler
    let spool: Spool
    let logger: Logger

    func run() async throws {
        var lastSweep: ContinuousClock.Instant?
        while !Task.isShuttingDownGracefully && !Task.isCancelled {
            if lastSweep.map({ ContinuousClock.now - $0 >= .seconds(3600) }) ?? true {
                let config = await scheduler.config
                let spool = spool, logger = logger
                _ = await BlockingCall.run {
                    Retention.sweep(spool: spool, days: config.retentionDays, keep: config.retentionKeep, logger: logger)
                }
                lastSweep = .now
            }
            if await scheduler.takeRetryRequest() { await WatchService.rescan(spool: spool, scheduler: scheduler) }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(30)) }
        }
    }
}
