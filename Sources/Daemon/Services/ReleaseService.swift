import FoundationEssentials
import Logging
import ReleaseKit
import ServiceLifecycle

/// Runs the releases the scheduler lets start, each in a task of its own: the coordinator's
/// grant, the claim (`incoming/` → `running/`, durable before any task starts), the tasks,
/// the final record (durable before the request moves to `done/`). On graceful shutdown it
/// stops the scheduler starting more, gives running releases the shutdown grace, then
/// interrupts what still runs; waiting requests stay waiting.
struct ReleaseService: Service {
    let context: DaemonContext
    let scheduler: Scheduler
    let jobs: AsyncStream<Job>
    let jobsContinuation: AsyncStream<Job>.Continuation
    let executor: @Sendable (Job, Admission) -> any TaskExecutor
    let shutdownGrace: @Sendable () -> Duration

    func run() async throws {
        await withDiscardingTaskGroup { group in
            group.addTask {
                // Returns when a graceful shutdown starts (or throws when cancelled).
                try? await gracefulShutdown()
                context.notifier.stopping(status: "stopping")
                await scheduler.stopAccepting()
                jobsContinuation.finish()
                let grace = shutdownGrace()
                let running = await scheduler.runningCount
                guard running > 0 else { return }
                context.logger.notice("shutting down: waiting up to \(DurationParser.format(grace)) for \(running) running release(s)")
                let finished = await withTaskGroup(of: Bool.self) { race in
                    race.addTask { await scheduler.waitUntilIdle(); return true }
                    race.addTask { (try? await Task.sleep(for: grace)) != nil ? false : true }
                    let first = await race.next()!
                    race.cancelAll()
                    return first
                }
                if !finished {
                    context.logger.warning("shutdown grace of \(DurationParser.format(grace)) ran out; interrupting running releases")
                    await scheduler.interruptAll()
                }
            }
            for await job in jobs {
                group.addTask { await self.release(job) }
            }
        }
        context.logger.notice("stopped")
    }

    /// One release, from its grant to its durable end.
    private func release(_ job: Job) async {
        let id = job.admission.request.id
        switch await context.coordinator.acquire(job.entry, control: job.control) {
        case .wait(let reason, let first):
            await scheduler.release(id, .deferred(reason: reason, first: first))
            return
        case .follow(let node):
            await follow(job, runningOn: node)
            return
        case .reject(let reason):
            await scheduler.release(id, .rejected(reason, job.admission.request))
            return
        case .run:
            break
        }
        // Known to the guard before any task of it can start.
        context.processGuard?.register(release: id.rawValue)
        defer { context.processGuard?.unregister(release: id.rawValue) }
        guard await claim(job) else { return }
        await scheduler.release(id, .claimed)
        let app = job.entry.app, release = job.entry.release
        let executor = executor
        var runner = ReleaseRunner(
            spool: context.spool, registry: context.registry, executor: { admission in executor(job, admission) },
            preparation: job.admission.request.image == nil ? nil
                : ImagePreparation(intake: Intake(config: job.config, registry: context.registry, logger: context.logger,
                                                  environment: context.environment)),
            releaseTimeout: job.config.releaseTimeout,
            logger: context.logger,
            onProgress: { [scheduler] task, index, count in
                await scheduler.release(id, .progress("\(app) \(release): \(task) (\(index)/\(count))"))
            })
        let history = context.history, coordinator = context.coordinator, entry = job.entry
        // On a single host a deploy is its app and release label (as in the records).
        let key = coordinator.node == nil ? ReleaseRequest.defaultDeployKey(app: entry.app, release: entry.release) : entry.deployKey
        runner.firstDeploy = { tasks in
            await coordinator.firstDeploy(entry, tasks: tasks, local: history.read { $0.firstDeploy(app: entry.app, key: key, tasks: tasks) })
        }
        if let node = context.coordinator.node {
            runner.logTap = { coordinator.publish(entry, $0) }
            runner.node = node
            runner.cluster = ClusterInfo(deployKey: entry.deployKey, ranOn: node)
        }
        let ran = await runner.run(job.admission, control: job.control)
        // What the coordination took is the outcome recorded and told (in a cluster, the
        // same for every node's caller); nil: the daemon stops first, the release stays pending.
        guard let record = await context.coordinator.commit(job.entry, record: ran.record, control: job.control) else {
            await ran.executor.finish()
            await scheduler.release(id, .finished(nil))
            return
        }
        let inPlace = context.coordinator.node == nil
        await makeDurable(record) { [spool = context.spool] in try spool.finish($0, inPlace: inPlace) }
        // Its caller may act on the outcome at once (a postdeploy right after): the deploy
        // history has it now, not only once the release leaves its slot.
        context.history.add(record)
        await context.coordinator.ended(job.entry, record: record)
        // Every task has ended, and its caller is told: what the executor kept for a next task
        // (an image release's container, whose init has nothing left to run) is taken down
        // now, before the release leaves its slot.
        await ran.executor.finish()
        await scheduler.release(id, .finished(record))
    }

    /// A release whose deploy key runs or ran on another node of the cluster: its output is
    /// copied into this release's log as it comes, and this release ends as that one did. Its
    /// request stays in `incoming/` meanwhile, so a daemon stopped while following follows
    /// again when it starts.
    private func follow(_ job: Job, runningOn node: String) async {
        let request = job.admission.request, id = request.id
        await scheduler.release(id, .claimed)
        await scheduler.release(id, .progress("\(request.app) \(request.release): following node \(node)"))
        let masking = await Masking.forRelease(env: request.env)
        var logger = context.logger
        for (key, value) in Logger.Metadata.release(request, state: "running") { logger[metadataKey: key] = value }
        let log = ReleaseLog(spool: context.spool, id: id.rawValue, masking: masking, logger: logger)
        defer { log.close() }
        log.note("\(request.app) \(request.release): deploy \(job.entry.deployKey) runs on node \(node); following it")
        guard let outcome = await context.coordinator.follow(job.entry, write: { log.relay($0) }, control: job.control) else {
            // This daemon stops: the request waits for the next start.
            await scheduler.release(id, .finished(nil))
            return
        }
        let record = FinalRecord.followed(request, ran: outcome.record, state: outcome.state, reason: outcome.reason,
                                          node: context.coordinator.node,
                                          cluster: ClusterInfo(deployKey: job.entry.deployKey, ranOn: outcome.ranOn))
        log.note("release \(record.state.rawValue) on node \(outcome.ranOn)" + (record.reason.map { ": \($0)" } ?? ""),
                 level: record.state == .succeeded ? Logger.Level.notice : Logger.Level.warning,
                 metadata: ["release.state": "\(record.state.rawValue)"])
        await makeDurable(record) { [spool = context.spool] in try spool.finishQueued($0) }
        context.history.add(record)
        await context.coordinator.ended(job.entry, record: record)
        await scheduler.release(id, .finished(record))
    }

    /// Claims the request, retrying while the spool cannot take it (not writable, disk full):
    /// the release stays first of its key meanwhile, so nothing overtakes it. A release
    /// cancelled meanwhile ends `cancelled` without starting; one whose request is gone ends.
    private func claim(_ job: Job) async -> Bool {
        let id = job.admission.request.id
        var delay = Duration.seconds(1)
        while true {
            if job.control.reason == .cancelled {
                await scheduler.release(id, .cancelledBeforeClaim(job.admission.request))
                return false
            }
            do {
                try context.spool.claim(id)
                return true
            } catch {
                guard context.spool.exists(context.spool.requestPath(.incoming, id.rawValue)) else {
                    context.logger.warning("\(id) left incoming/ before it could start", metadata: ["release.id": "\(id)"])
                    await scheduler.release(id, .finished(nil))
                    return false
                }
                context.logger.error("cannot claim \(id); retrying in \(DurationParser.format(delay)): \(error)", metadata: ["release.id": "\(id)"])
                if job.control.reason == .shutdown { await scheduler.release(id, .finished(nil)); return false }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(30))
            }
        }
    }

    /// Makes the outcome durable (`Spool.finish` for a release that ran here, `finishQueued`
    /// for one followed on another node). A failure (disk full) is retried with backoff for up
    /// to ten minutes — the key's next release waits meanwhile, so the order holds; after that
    /// the request stays where it is (`running/`: the next start records it `interrupted`;
    /// `incoming/`: the next start follows it again).
    private func makeDurable(_ record: ReleaseRecord,
                        _ transition: (ReleaseRecord) throws -> Void) async {
        var delay = Duration.seconds(1)
        let clock = ContinuousClock()
        let giveUp = clock.now + .seconds(600)
        while true {
            do {
                try transition(record)
                return
            } catch {
                guard clock.now < giveUp else {
                    context.logger.critical("giving up recording the outcome of \(record.id) (\(record.state.rawValue)): \(error)", metadata: ["release.id": "\(record.id)"])
                    return
                }
                context.logger.critical("cannot record the outcome of \(record.id) (\(record.state.rawValue)); retrying in \(DurationParser.format(delay)): \(error)",
                                        metadata: ["release.id": "\(record.id)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(30))
            }
        }
    }
}
