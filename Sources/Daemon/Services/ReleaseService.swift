import Glibc
import Logging
import ReleaseKit
import ReleaseWatcher
import ServiceLifecycle

/// The daemon's main service: arms the watch on `incoming/` and `cancel/`, takes in what is
/// already there, says READY, then runs releases as the scheduler starts them. On graceful
/// shutdown it stops claiming, gives running releases the shutdown grace, then interrupts
/// what still runs; queued requests stay queued.
struct ReleaseService: Service {
    let context: DaemonContext
    let scheduler: Scheduler
    let jobs: AsyncStream<Job>
    let jobsContinuation: AsyncStream<Job>.Continuation
    let shutdownGrace: @Sendable () async -> Duration

    func run() async throws {
        let spool = context.spool
        let logger = context.logger
        // Watch first, then scan: a file arriving in between is seen by one or the other.
        // IN_CREATE too: a symlink, FIFO, directory or hard link made right in incoming/ gets
        // no IN_MOVED_TO or IN_CLOSE_WRITE, and must still be looked at (and rejected).
        let watcher = try DirectoryWatcher(folders: [spool.path(.incoming), spool.path(.cancel)],
                                           mask: DirectoryWatcher.arrivals | UInt32(IN_CREATE))

        await withDiscardingTaskGroup { group in
            group.addTask {
                // What is already there, then READY, then what arrives. The releases the scan
                // starts run at once (the loop below takes them), so thousands of waiting
                // requests do not hold up the first one until all have been read.
                await scheduler.rescan()
                context.notifier.ready()
                logger.notice("ready: watching \(spool.root)")
                for await batch in watcher.events() {
                    if batch.overflowed {
                        logger.warning("inotify queue overflowed; rescanning the spool")
                        await scheduler.rescan()
                        continue
                    }
                    let arrivals = batch.events.filter { $0.folder == 0 && !Self.isBeingWritten($0, in: spool) }.compactMap(\.name)
                    let cancels = batch.events.filter { $0.folder == 1 }.compactMap(\.name)
                    if !arrivals.isEmpty { await scheduler.arrived(arrivals) }
                    if !cancels.isEmpty { await scheduler.processCancels(cancels) }
                }
            }
            group.addTask {
                // Maintenance: retention at start and hourly; requests that could not be filed
                // (disk full) looked at again every 30 s.
                var lastSweep: ContinuousClock.Instant?
                while !Task.isShuttingDownGracefully && !Task.isCancelled {
                    if lastSweep.map({ ContinuousClock.now - $0 >= .seconds(3600) }) ?? true {
                        let config = await scheduler.currentConfig
                        _ = await BlockingCall.run {
                            Retention.sweep(spool: spool, days: config.retentionDays, keep: config.retentionKeep, logger: logger)
                        }
                        lastSweep = .now
                    }
                    await scheduler.retryIntake()
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(30)) }
                }
            }
            group.addTask {
                // Returns when a graceful shutdown starts (or throws when cancelled).
                try? await gracefulShutdown()
                context.notifier.stopping(status: "stopping")
                await scheduler.stopAccepting()
                watcher.shutdown()
                jobsContinuation.finish()
                let grace = await shutdownGrace()
                let running = await scheduler.runningCount
                if running > 0 {
                    logger.notice("shutting down: waiting up to \(DurationParser.format(grace)) for \(running) running release(s)")
                    let finished = await withTaskGroup(of: Bool.self) { race in
                        race.addTask { await scheduler.waitUntilIdle(); return true }
                        race.addTask { (try? await Task.sleep(for: grace)) != nil ? false : true }
                        let first = await race.next()!
                        race.cancelAll()
                        return first
                    }
                    if !finished {
                        logger.warning("shutdown grace of \(DurationParser.format(grace)) ran out; interrupting running releases")
                        await scheduler.interruptAll()
                    }
                }
            }
            for await job in jobs {
                group.addTask {
                    // Claim and commit run here, not on the scheduler, so that one release's
                    // fsyncs do not hold up the others.
                    // Known to the guard before any task of it can start.
                    context.processGuard?.register(release: job.request.id.rawValue)
                    defer { context.processGuard?.unregister(release: job.request.id.rawValue) }
                    guard job.runner.claim(job.request) else {
                        try? await Task.sleep(for: .seconds(2))
                        await scheduler.claimFailed(job.request)
                        return
                    }
                    let record = await job.runner.run(job.request, plan: job.plan, control: job.control)
                    await job.runner.commit(record)
                    await scheduler.finished(job.request, record: record)
                }
            }
        }
        logger.notice("stopped")
    }

    /// A new regular file of its own (IN_CREATE alone) is still being written: its
    /// IN_CLOSE_WRITE will follow. Anything else that was created is looked at now.
    static func isBeingWritten(_ event: DirectoryWatcher.Event, in spool: Spool) -> Bool {
        guard event.mask & UInt32(IN_CREATE) != 0, event.mask & DirectoryWatcher.arrivals == 0, let name = event.name else { return false }
        var st = stat()
        guard spool.path(.incoming).appending(name).withPlatformString({ lstat($0, &st) }) == 0 else { return true }
        return st.st_mode & S_IFMT == S_IFREG && st.st_nlink == 1
    }
}
