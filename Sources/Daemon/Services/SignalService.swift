import Logging
import ReleaseKit
import ServiceLifecycle
import UnixSignals

/// SIGHUP re-reads the configuration: `RELOADING=1` (with `MONOTONIC_USEC`), the new
/// configuration applied to the scheduler, then `READY=1` with the current status. A bad file
/// is logged and the old configuration kept; the daemon is ready again either way.
///
/// With `--test-stall-on-sigusr2` (hidden, for the watchdog tests), SIGUSR2 blocks the
/// scheduler actor's thread, as a deadlock would.
struct SignalService: Service {
    let scheduler: Scheduler
    let notifier: SystemdNotifier
    let logger: Logger
    /// Loads the configuration again, with the command-line flags applied.
    let reload: @Sendable () throws -> DaemonConfig
    let onReload: @Sendable (DaemonConfig) async -> Void
    /// The signals, trapped before the daemon says READY=1 (see `trapping`): one sent right
    /// after it is never lost to the default action.
    let signals: UnixSignalsSequence

    /// The signals this service handles, trapped now.
    static func trapping(stallOnSIGUSR2: Bool) async -> UnixSignalsSequence {
        await UnixSignalsSequence(trapping: stallOnSIGUSR2 ? [.sighup, .sigusr2] : [.sighup])
    }

    func run() async throws {
        for await signal in signals.cancelOnGracefulShutdown() {
            if signal == .sigusr2 {
                logger.warning("SIGUSR2: blocking the event loop (test hook)")
                await scheduler.stall()
                continue
            }
            // Before READY (still starting) or while stopping there is nothing to reload into.
            guard notifier.isRunning else {
                logger.notice("SIGHUP ignored: the daemon is not running (starting or stopping)")
                continue
            }
            notifier.reloading()
            logger.notice("SIGHUP: reloading the configuration")
            do {
                let config = try reload()
                await onReload(config)
                logger.notice("configuration reloaded")
            } catch {
                logger.error("configuration not reloaded, keeping the old one: \(error)")
            }
            // The scheduler's status as it now stands goes out with READY=1.
            await scheduler.refreshStatus()
            notifier.ready()
        }
    }
}
