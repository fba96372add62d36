import ServiceLifecycle

/// Pings the systemd watchdog (`WATCHDOG=1`) at half of `WATCHDOG_USEC`, each ping sent from
/// the scheduler actor — the daemon's event loop. When that loop is stuck (a blocked thread, a
/// deadlock) the pings stop and systemd kills and restarts the daemon (`WatchdogSec=`,
/// `Restart=on-failure`).
///
/// Without a watchdog (no `WATCHDOG_USEC`, or `WATCHDOG_PID` naming another process) it only
/// waits for the shutdown. In a graceful shutdown the service group stops this service last,
/// so the pings go on while running releases use their shutdown grace; then it ends at once,
/// not after its current interval.
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
            await scheduler.pingWatchdog(notifier)
            // A fixed cadence: a slow round trip does not push every later ping back; but a
            // late ping is not followed by one at once (systemd needs one per timeout, not a
            // burst).
            next = max(next + interval, clock.now + interval * 0.9)
            do {
                try await cancelWhenGracefulShutdown { [next] in try await Task.sleep(until: next, clock: clock) }
            } catch {
                return
            }
        }
    }
}

extension Scheduler {
    /// Sends `WATCHDOG=1` from the scheduler's executor, so a ping goes out only while the event
    /// loop runs. The ping must be sent here: a round trip through an isolated method that does
    /// nothing proves nothing, since release builds optimize the hop to an empty method away.
    func pingWatchdog(_ notifier: SystemdNotifier) {
        notifier.watchdog()
    }
}
