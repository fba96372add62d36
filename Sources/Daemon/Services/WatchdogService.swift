import ServiceLifecycle

/// Pings the systemd watchdog (`WATCHDOG=1`) at half of `WATCHDOG_USEC`, each time only after a
/// round trip through the scheduler actor — the daemon's event loop. When that loop is stuck
/// (a blocked thread, a deadlock) the pings stop and systemd kills and restarts the daemon
/// (`WatchdogSec=`, `Restart=on-failure`).
///
/// Without a watchdog (no `WATCHDOG_USEC`, or `WATCHDOG_PID` naming another process) it only
/// waits for the shutdown. In a graceful shutdown the service group stops this service last,
/// so the pings go on while running releases use their shutdown grace.
struct WatchdogService: Service {
    let scheduler: Scheduler
    let notifier: SystemdNotifier

    func run() async throws {
        guard let interval = notifier.watchdogPingInterval else {
            try? await gracefulShutdown()
            return
        }
        let clock = ContinuousClock()
        var next = clock.now
        while !Task.isCancelled, !Task.isShuttingDownGracefully {
            await scheduler.heartbeat()
            notifier.watchdog()
            // A fixed cadence: a slow heartbeat does not push every later ping back.
            next = max(next + interval, clock.now)
            do {
                try await Task.sleep(until: next, clock: clock)
            } catch {
                return
            }
        }
    }
}
