import FoundationEssentials
import Glibc
import Logging
import ReleaseKit
import SystemPackage

/// Runs one admitted release from its plan to its record: asks `ReleaseProgress` (the
/// outcome rules) what to do next, runs each task with its own environment and time limit
/// through the task executor, and writes each step's progress and log lines. The record it
/// returns is not durable yet: the release service has the spool finish it.
struct ReleaseRunner: Sendable {
    let spool: Spool
    let registry: [any ReleaseTask.Type]
    /// The executor for the release's tasks, given its admission (ready to run).
    let executor: @Sendable (Admission) -> any TaskExecutor
    /// Makes an image release's image ready (see `ImagePreparation`).
    let preparation: ImagePreparation?
    let releaseTimeout: Duration
    let logger: Logger
    /// Told when a task starts: (task, 1-based index, number of tasks that will run).
    let onProgress: @Sendable (String, Int, Int) async -> Void
    /// Told everything the release log gets (a cluster publishes it to followers).
    var logTap: (@Sendable ([UInt8]) -> Void)? = nil
    /// In a cluster: this node and the release's deploy key, for the records.
    var cluster: ClusterInfo? = nil
    var node: String? = nil
    /// Whether this is the app's first successful release of its phase, asked only when a
    /// first-deploy-only task would run (see `ReleasePlan.settleFirstDeploy`); nil: it cannot
    /// be known now (the cluster database is away), and the release fails before its tasks.
    var firstDeploy: @Sendable (_ tasks: [String]) async -> ReleasePlan.FirstDeploy? = { _ in .first }

    /// How long a reporting task (notify) may take, at most.
    static let reportLimit = Duration.seconds(120)

    /// A release run to its end: its record, and the executor whose `finish` is due once the
    /// record is durable (an image release's last container is then taken down: the outcome
    /// does not wait for the engine's clean-up).
    struct Ran: Sendable {
        var record: ReleaseRecord
        var executor: any TaskExecutor
    }

    func run(_ admitted: Admission, control: ReleaseControl) async -> Ran {
        var admission = admitted
        let request = admission.request
        let masking = await Masking.forRelease(env: request.env)
        var logger = logger
        for (key, value) in Logger.Metadata.release(request, state: "running") { logger[metadataKey: key] = value }
        logger[metadataKey: "release.name"] = "\(masking.apply(request.release))"
        let log = ReleaseLog(spool: spool, id: request.id.rawValue, masking: masking, logger: logger, tap: logTap)
        defer { log.close() }

        let clock = ContinuousClock()
        let startInstant = clock.now
        let releaseDeadline = startInstant + releaseTimeout
        var base = ReleaseRecord(id: request.id.rawValue, app: request.app, release: request.release, phase: request.phase, state: .running,
                                 warnings: admission.plan.warnings, directory: request.directory, submittedAt: request.submittedAt,
                                 retryOf: request.retryOf?.rawValue)
        base.startedAt = Date()
        base.image = request.image
        base.node = node
        base.cluster = cluster
        // An image release's image first: pulled, looked up, the plan made again from it if need be.
        var unprepared: TaskFailure?
        if let preparation, request.image != nil {
            switch await preparation.prepare(admission, log: log) {
            case .success(let ready):
                admission = ready
                base.imageID = ready.image?.id
                base.warnings = ready.plan.warnings
            case .failure(let failure):
                unprepared = failure
            }
        }
        // First-deploy-only tasks, decided now that the release holds its serial key: an
        // earlier release of the app that succeeded meanwhile counts.
        var undecided: String?
        if unprepared == nil, admission.plan.hasFirstDeployTasks {
            if let answer = await firstDeploy(admission.plan.firstDeployTasks) {
                admission.accepted.validation.plan.settleFirstDeploy(answer)
            } else {
                undecided = "cannot tell whether this is \(request.app)'s first deploy (the cluster database cannot be reached); its first-deploy-only tasks neither run nor are skipped blindly"
            }
        }
        var progress = ReleaseProgress(plan: admission.plan, record: base, masking: masking)
        if let unprepared { progress.failBeforeTasks(unprepared.reason) }
        if let undecided { progress.failBeforeTasks(undecided) }
        let executor = executor(admission)
        let directory = admission.workingDirectory ?? request.directory ?? "/"
        let names = progress.toRun
        log.note("\(request.app) \(request.release): " + (names.isEmpty ? "no tasks to run" : "running \(names.joined(separator: ", "))"),
                 metadata: ["message.id": "\(MessageID.releaseStarted)", "release.state": "running"])
        for warning in admission.plan.warnings {
            log.note("warning: \(warning)", level: .warning)
        }
        if let unprepared { log.note(unprepared.reason, level: .error) }
        if let undecided { log.note(undecided, level: .error) }

        let home = admission.identity?.home ?? TaskIdentity.home(of: getuid())
        var count = 0
        while case .run(let index) = progress.next(stop: control.checkFence(), now: Date()) {
            let step = progress.step(index)
            count += 1
            await onProgress(step.name, count, names.count)
            // The progress record is written as each task starts, with the outcome of those
            // before it: a write as a task ends would be replaced at once by the next one's
            // or by the final record (and each write makes a file, the costly part).
            spool.recordProgress(progress.record)
            let taskStart = clock.now
            var deadline = step.timeout.map { min(releaseDeadline, taskStart + $0) } ?? releaseDeadline
            // A report gets its own short limit, whatever is left of the release's.
            if step.runsAfterFailure { deadline = taskStart + Self.reportLimit }
            log.note("\(step.name)" + (step.command.map { ": \($0)" } ?? ""), metadata: ["release.task": "\(step.name)", "release.state": "running"])
            var taskLogger = logger
            taskLogger[metadataKey: "release.task"] = "\(step.name)"
            let runner = ExecutorRunner(executor: executor, log: log, control: control)
            var environment = TaskEnvironment.make(request: request, task: step.name, home: home, directory: directory)
            // A migration's lock settings, for its libpq clients (after the app's own PGOPTIONS).
            if let options = step.pgOptions { environment["PGOPTIONS"] = options }
            let context = TaskContext(
                request: request, task: step.name, environment: environment,
                directory: FilePath(directory), command: step.command, deadline: deadline, outcome: progress.record,
                masking: masking, limits: step.limits, logger: taskLogger, runner: runner)
            // A migration: what its framework says is applied and pending, before it runs.
            var before: MigrationStatus.Report?
            if step.isMigration, let preset = step.statusPreset, step.command != nil {
                before = await migrationStatus(preset, of: step, context: context, executor: executor, log: log, control: control)
                if step.skipWhenNonePending, let before, before.pending.isEmpty {
                    let tool = MigrationStatus.command(for: preset).description
                    progress.skipped(index, reason: "nothing pending (\(tool)): skipped, as skip-when-none-pending asks",
                                     migrations: MigrationStatus.record(tool: tool, before: before, after: before))
                    log.note("\(step.name) skipped: \(tool) lists nothing pending (skip-when-none-pending)",
                             metadata: ["release.task": "\(step.name)", "release.state": "skipped"])
                    continue
                }
            }
            var (failure, attempts) = await runAttempts(step, context: context, control: control, deadline: deadline, log: log)
            if let f = failure, f.state == .timedOut {
                let limit = step.timeout.map { deadline == taskStart + $0 } ?? false
                    ? "its timeout of \(DurationParser.format(step.timeout!))"
                    : "the release's time limit of \(DurationParser.format(releaseTimeout))"
                failure = TaskFailure(.timedOut, reason: "timed out after \(limit)")
            }
            let ms = (clock.now - taskStart).milliseconds
            let used = runner.usage
            // …and after it: what it applied (also after a failure: a migration may be half done).
            var migrations: MigrationRecord?
            if step.isMigration, let preset = step.statusPreset, step.command != nil, control.reason == nil, clock.now < deadline {
                let after = await migrationStatus(preset, of: step, context: context, executor: executor, log: log, control: control)
                migrations = MigrationStatus.record(tool: MigrationStatus.command(for: preset).description, before: before, after: after)
            }
            progress.ended(index, failure: failure, durationMs: ms, cpuMs: used?.cpuMs, peakMemoryBytes: used?.peakMemoryBytes,
                           attempts: attempts, migrations: migrations)
            let task = progress.record.tasks[index]
            // `migrate succeeded in 12.3s · peak 312 MiB · cpu 9.8s`
            let usage = Summary.usage(task)
            if let f = failure {
                // A time-out's reason says how long it ran already.
                let ran = f.state == .timedOut ? "" : " after \(Summary.duration(ms))"
                log.note("\(step.name) \(Summary.taskResult(task))\(ran)\(usage)", level: f.state == .cancelled ? .notice : .error,
                         metadata: ["release.task": "\(step.name)", "release.state": "\(f.state.rawValue)"])
            } else {
                log.note("\(step.name) succeeded in \(Summary.duration(ms))\(usage)", metadata: ["release.task": "\(step.name)", "release.state": "succeeded"])
            }
        }

        let record = progress.finish(stop: control.reason, now: Date(), durationMs: (clock.now - startInstant).milliseconds)
        let (messageID, level): (String, Logger.Level) = switch record.state {
        case .succeeded: (MessageID.releaseSucceeded, .notice)
        case .cancelled: (MessageID.releaseCancelled, .warning)
        case .interrupted: (MessageID.releaseInterrupted, .warning)
        default: (MessageID.releaseFailed, .error)
        }
        log.note("release \(record.state.rawValue)" + (record.reason.map { ": \($0)" } ?? "") + " in \(Summary.duration(record.durationMs!))",
                 level: level, metadata: ["message.id": "\(messageID)", "release.state": "\(record.state.rawValue)",
                                          "duration.usec": "\(record.durationMs! * 1000)"])
        return Ran(record: record, executor: executor)
    }

    /// How long before attempt `n + 1` of a migration that hit a lock timeout: 1 s, 2 s, 4 s …
    /// at most 30 s (a waiting migration holds nothing; the lock it waits for is another's).
    static func backoff(after attempt: Int) -> Duration { .seconds(min(30, 1 << min(attempt - 1, 5))) }

    /// Runs a task; a migration with `lock-retries` again, after a backoff, each time it failed
    /// with a lock timeout in its output (`MigrationStatus.lockTimeoutMarkers`), until it
    /// succeeds, fails otherwise, runs out of attempts or time, or the release is stopped.
    /// Returns its failure (nil: it succeeded) and, for such a migration, each attempt.
    private func runAttempts(_ step: ReleasePlan.Step, context: TaskContext, control: ReleaseControl, deadline: ContinuousClock.Instant,
                             log: ReleaseLog) async -> (TaskFailure?, [AttemptRecord]?) {
        let retries = step.isMigration ? (step.lock.lockRetries ?? 0) : 0
        guard retries > 0 else { return (await run(step, context: context, control: control, deadline: deadline), nil) }
        let clock = ContinuousClock()
        var attempts: [AttemptRecord] = []
        while true {
            let watch = log.watch(task: step.name, markers: MigrationStatus.lockTimeoutMarkers)
            let started = Date(), t0 = clock.now
            let failure = await run(step, context: context, control: control, deadline: deadline)
            log.endWatch(task: step.name)
            let marker = failure?.state == .failed ? watch.seen : nil
            attempts.append(AttemptRecord(startedAt: started, durationMs: (clock.now - t0).milliseconds,
                                          outcome: failure == nil ? "succeeded" : marker != nil ? "lock-timeout" : failure!.state.rawValue,
                                          exitStatus: failure?.exitStatus, reason: failure.map { context.masking.apply($0.reason) }))
            guard let failure, let marker else { return (failure, attempts) }
            func ended(_ why: String) -> TaskFailure {
                TaskFailure(failure.state, reason: "\(failure.reason): \(why)", exitStatus: failure.exitStatus, signal: failure.signal)
            }
            let attempt = attempts.count
            guard attempt <= retries else {
                return (ended("a lock timeout on each of \(attempt) attempts (lock-retries \(retries))"), attempts)
            }
            let backoff = Self.backoff(after: attempt)
            guard clock.now + backoff < deadline else {
                return (ended("a lock timeout, and no time left for another attempt before the task's deadline"), attempts)
            }
            log.note("\(step.name) hit a lock timeout (\(marker)); attempt \(attempt + 1) of \(retries + 1) in \(DurationParser.format(backoff))",
                     level: .warning, metadata: ["release.task": "\(step.name)", "release.state": "running"])
            // The backoff, or the release's stop, whichever comes first; then the fence.
            let stopped: StopReason? = await withTaskGroup(of: StopReason?.self) { group in
                group.addTask { try? await Task.sleep(for: backoff); return nil }
                group.addTask { await control.wait() }
                let first = await group.next()!
                group.cancelAll()
                return first
            }
            if let reason = stopped ?? control.checkFence() {
                return (TaskFailure(.cancelled, reason: "the release was \(reason.word) while waiting to try again after a lock timeout"), attempts)
            }
        }
    }

    /// Runs the framework's migration status command in the task's place, as its user, its
    /// output read rather than shown; what it lists, or nil (said in the log) when it lists
    /// nothing readable.
    private func migrationStatus(_ preset: Preset, of step: ReleasePlan.Step, context: TaskContext, executor: any TaskExecutor,
                                 log: ReleaseLog, control: ReleaseControl) async -> MigrationStatus.Report? {
        let command = MigrationStatus.command(for: preset)
        let task = "\(step.name) status"
        let deadline = min(context.deadline, ContinuousClock.now + Self.statusLimit)
        let statusContext = TaskContext(request: context.request, task: task, environment: context.environment, directory: context.directory,
                                        command: command, deadline: deadline, outcome: context.outcome, masking: context.masking,
                                        limits: context.limits, logger: context.logger,
                                        runner: ExecutorRunner(executor: executor, log: log, control: control))
        log.beginCapture(task: task)
        let outcome = await executor.run(command, for: statusContext, log: log, control: control)
        let output = log.endCapture(task: task)
        // Only a whole list from a command that ended as it should is believed: a failed,
        // ended or cut status may list some migrations and not the pending one.
        let problem: String? = if output == nil {
            "it printed more than \(ReleaseLog.maximumCapture / 1024) KiB"
        } else if let failure = outcome.failure, !MigrationStatus.failureIsAnswer(outcome: failure.exitStatus, output: output!, preset: preset) {
            failure.reason
        } else {
            nil
        }
        guard problem == nil, let output, let report = MigrationStatus.parse(output, preset: preset) else {
            log.note("\(step.name): \(command) gave no list of migrations this daemon can rely on (\(problem ?? "none it can read")); the record says nothing of them" + (step.skipWhenNonePending ? ", and the task runs" : ""),
                     level: .warning, metadata: ["release.task": "\(step.name)"])
            return nil
        }
        return report
    }

    /// How long a migration status command may take.
    static let statusLimit = Duration.seconds(120)

    /// Runs one task; its failure, or nil when it succeeded.
    private func run(_ step: ReleasePlan.Step, context: TaskContext, control: ReleaseControl,
                     deadline: ContinuousClock.Instant) async -> TaskFailure? {
        if let problem = step.problem { return TaskFailure(.failed, reason: problem) }
        guard let type = registry.first(where: { $0.name == step.name }) else {
            return TaskFailure(.failed, reason: "no task \(step.name) in this daemon")
        }
        do {
            if type.takesCommand {
                // Its executor applies the deadline and the stop (SIGTERM, SIGKILL).
                try await type.init().run(in: context)
            } else {
                // A report still goes out for a cancelled release; only a shutdown stops it.
                let reporter = step.runsAfterFailure
                try await Self.bounded(deadline: deadline, control: control, stopOn: { !reporter || $0 == .shutdown || $0 == .leaseLost }) {
                    try await type.init().run(in: context)
                }
            }
            return nil
        } catch let f as TaskFailure {
            return f
        } catch {
            return TaskFailure(.failed, reason: context.masking.apply("\(error)"))
        }
    }

    /// Runs a task that spawns no process (its work is cancellable Swift code) so that its
    /// deadline and the release's stop end it: its work is cancelled and the task is
    /// `timed-out` or `cancelled`.
    static func bounded(deadline: ContinuousClock.Instant, control: ReleaseControl, stopOn: @escaping @Sendable (StopReason) -> Bool,
                        _ work: @escaping @Sendable () async throws -> Void) async throws {
        enum Outcome: Sendable { case finished, deadline, stopped(StopReason), ignored }
        try await withThrowingTaskGroup(of: Outcome.self) { group in
            group.addTask { try await work(); return .finished }
            group.addTask {
                do { try await Task.sleep(until: deadline, clock: .continuous) } catch { return .ignored }
                return .deadline
            }
            group.addTask {
                guard let reason = await control.wait() else { return .ignored }
                return stopOn(reason) ? .stopped(reason) : .ignored  // a stop this task outlives
            }
            var first = Outcome.ignored
            while let next = try await group.next() {
                if case .ignored = next { continue }
                first = next
                break
            }
            group.cancelAll()
            switch first {
            case .finished, .ignored: return
            case .deadline: throw TaskFailure(.timedOut, reason: "timed out")
            case .stopped(let reason): throw TaskFailure(.cancelled, reason: "the release was \(reason.word)")
            }
        }
    }
}
