import FoundationEssentials
import Glibc
import Logging
import ReleaseKit
import ReleaseWatcher
import SystemPackage

/// Runs one release from its plan to its record: the tasks in order, each with its own
/// environment and time limit; the first failure stops the rest (`not-run`) except tasks that
/// run after failures (notify), which then report the outcome.
struct ReleaseRunner: Sendable {
    let spool: Spool
    let registry: [any ReleaseTask.Type]
    let processGuard: ProcessGuard?
    let releaseTimeout: Duration
    let killGrace: Duration
    let identity: TaskIdentity?
    let logger: Logger
    /// Told when a task starts: (task, 1-based index, number of tasks that will run).
    let onProgress: @Sendable (String, Int, Int) -> Void

    /// Claims the request: moves it from `incoming/` to `running/`, durably, before any task
    /// starts (so that after a crash it is known to have been running and is never re-run).
    func claim(_ request: ReleaseRequest) -> Bool {
        let id = request.id.rawValue
        do {
            try spool.move(FilePath.Component("\(id).json")!, from: .incoming, to: .running, as: "\(id).json")
            return true
        } catch {
            logger.error("cannot claim \(id): \(error)", metadata: ["release.id": "\(id)"])
            return false
        }
    }

    /// Makes the outcome durable: the record into `done/`, then the request beside it. A
    /// failure (disk full) is retried with backoff for up to ten minutes — the app's next
    /// release waits meanwhile, so the order holds; after that the request stays in `running/`
    /// and the next start records it `interrupted`.
    func commit(_ record: ReleaseRecord) async {
        let id = record.id
        var delay = Duration.seconds(1)
        let clock = ContinuousClock()
        let giveUp = clock.now + .seconds(600)
        while true {
            do {
                try spool.writeAtomically(record.encoded(), to: .done, name: "\(id).record.json", syncFolder: false)
                try spool.move(FilePath.Component("\(id).json")!, from: .running, to: .done, as: "\(id).json", replace: true)
                break
            } catch {
                guard clock.now < giveUp else {
                    logger.critical("giving up recording the outcome of \(id) (\(record.state.rawValue)): \(error)", metadata: ["release.id": "\(id)"])
                    return
                }
                logger.critical("cannot record the outcome of \(id) (\(record.state.rawValue)); retrying in \(DurationParser.format(delay)): \(error)",
                                metadata: ["release.id": "\(id)"])
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(30))
            }
        }
        spool.remove(.running, "\(id).record.json")
        spool.remove(.cancel, id)
    }

    func run(_ request: ReleaseRequest, plan: ReleasePlan, control: ReleaseControl) async -> ReleaseRecord {
        // Built on a thread of its own: with a request full of long secrets it takes a while,
        // and it must not hold a thread of the cooperative pool meanwhile.
        let env = request.env
        let masking = await BlockingCall.run { Masking(env: env) }
        var logger = logger
        logger[metadataKey: "release.id"] = "\(request.id)"
        logger[metadataKey: "release.app"] = "\(request.app)"
        logger[metadataKey: "release.name"] = "\(masking.apply(request.release))"
        // Every entry of a release says its state (journal field RELEASE_STATE); milestones override it.
        logger[metadataKey: "release.state"] = "running"
        let log = ReleaseLog(spool: spool, id: request.id.rawValue, masking: masking, logger: logger)
        defer { log.close() }

        let started = Date()
        let clock = ContinuousClock()
        let startInstant = clock.now
        let releaseDeadline = startInstant + releaseTimeout
        var record = ReleaseRecord(id: request.id.rawValue, app: request.app, release: request.release, state: .running,
                                   warnings: plan.warnings, directory: request.directory, submittedAt: request.submittedAt,
                                   retryOf: request.retryOf?.rawValue)
        record.startedAt = started
        record.tasks = plan.steps.map { step in
            var t = TaskRecord(name: step.name, state: step.willRun ? .pending : .skipped,
                               reason: step.willRun ? nil : step.reason, gate: step.gate, command: step.command?.arguments)
            t.command = t.command.map { $0.map(masking.apply) }
            return t
        }
        let toRun = plan.steps.filter(\.willRun)
        // The progress record (running/<id>.record.json) is written as each task starts, with
        // the outcome of those before it: a write here, or as a task ends, would be replaced
        // within the millisecond by the next task's or by the final record, and each write
        // makes a file (on ext4, a new inode: the most expensive part of a release).

        let names = toRun.map(\.name)
        log.note("\(request.app) \(request.release): " + (names.isEmpty ? "no tasks to run" : "running \(names.joined(separator: ", "))"),
                 metadata: ["message.id": "\(MessageID.releaseStarted)", "release.state": "running"])
        for warning in plan.warnings {
            log.note("warning: \(warning)", level: .warning)
        }

        let home = identity?.home ?? Self.home(of: getuid())
        var failure: (task: String, failure: TaskFailure)?
        var index = 0
        // Ordinary tasks first, then those that report (notify).
        let ordered = plan.steps.enumerated().filter { !isReporter($0.element.name) } + plan.steps.enumerated().filter { isReporter($0.element.name) }
        for (position, step) in ordered where step.willRun {
            let reporter = isReporter(step.name)
            if !reporter, failure != nil || control.reason != nil {
                record.tasks[position].state = .notRun
                record.tasks[position].reason = control.reason != nil ? "the release was \(Self.stopWord(control.reason!))" : "an earlier task failed"
                continue
            }
            if reporter, control.reason == .shutdown {
                record.tasks[position].state = .notRun
                record.tasks[position].reason = "the daemon shut down"
                continue
            }
            if reporter {
                // The outcome as it stands, for the report.
                let (state, reason) = Self.outcome(failure: failure, control: control)
                record.state = state
                record.reason = reason
            }
            index += 1
            onProgress(step.name, index, toRun.count)
            let taskStart = Date()
            let taskStartInstant = clock.now
            record.tasks[position].state = .running
            record.tasks[position].startedAt = taskStart
            writeProgress(record)
            var deadline = releaseDeadline
            if let t = step.timeout { deadline = min(deadline, taskStartInstant + t) }
            // A report gets its own short limit, whatever is left of the release's.
            if reporter { deadline = clock.now + Self.reportLimit }
            log.note("\(step.name)" + (step.command.map { ": \($0)" } ?? ""),
                     metadata: ["release.task": "\(step.name)", "release.state": "running"])

            let taskLogger: Logger = {
                var l = logger
                l[metadataKey: "release.task"] = "\(step.name)"
                return l
            }()
            let runner = SubprocessTaskRunner(log: log, control: control, processGuard: processGuard, killGrace: killGrace, identity: identity)
            let context = TaskContext(
                request: request, task: step.name,
                environment: TaskEnvironment.make(request: request, task: step.name, home: home),
                directory: FilePath(request.directory), command: step.command, deadline: deadline,
                outcome: record, masking: masking, logger: taskLogger, runner: runner)
            var result: TaskFailure?
            if let problem = step.problem {
                result = TaskFailure(.failed, reason: problem)
            } else if let type = registry.first(where: { $0.name == step.name }) {
                do {
                    if type.takesCommand {
                        // Its process runner applies the deadline and stops (SIGTERM, SIGKILL).
                        try await type.init().run(in: context)
                    } else {
                        // A report still goes out for a cancelled release; only a shutdown stops it.
                        try await Self.bounded(deadline: deadline, control: control, stopOn: { !reporter || $0 == .shutdown }) {
                            try await type.init().run(in: context)
                        }
                    }
                } catch let f as TaskFailure {
                    result = f
                } catch {
                    result = TaskFailure(.failed, reason: masking.apply("\(error)"))
                }
            }
            if let f = result, f.state == .timedOut {
                let limit = step.timeout.map { deadline == taskStartInstant + $0 } ?? false
                    ? "its timeout of \(DurationParser.format(step.timeout!))"
                    : "the release's time limit of \(DurationParser.format(releaseTimeout))"
                result = TaskFailure(.timedOut, reason: "timed out after \(limit)")
            }
            let ms = (clock.now - taskStartInstant).milliseconds
            record.tasks[position].durationMs = ms
            if let f = result {
                record.tasks[position].state = f.state
                record.tasks[position].reason = masking.apply(f.reason)
                record.tasks[position].exitStatus = f.exitStatus
                record.tasks[position].signal = f.signal
                let level: Logger.Level = f.state == .cancelled ? .notice : .error
                log.note("\(step.name) \(Summary.taskResult(record.tasks[position])) after \(Summary.duration(ms))", level: level,
                         metadata: ["release.task": "\(step.name)", "release.state": "\(f.state.rawValue)"])
                if reporter {
                    if plan.notifyRequired {
                        failure = failure ?? (step.name, f)
                    } else {
                        let w = "\(step.name) failed: \(masking.apply(f.reason)) (set \(ReleasePlan.notifyRequiredVariable)=true to fail the release)"
                        record.warnings.append(w)
                    }
                } else if failure == nil {
                    failure = (step.name, f)
                }
            } else {
                record.tasks[position].state = .succeeded
                log.note("\(step.name) succeeded in \(Summary.duration(ms))",
                         metadata: ["release.task": "\(step.name)", "release.state": "succeeded"])
            }
        }

        let (state, reason) = Self.outcome(failure: failure, control: control)
        record.state = state
        record.reason = reason.map(masking.apply)
        record.finishedAt = Date()
        record.durationMs = (clock.now - startInstant).milliseconds
        let messageID = switch state {
        case .succeeded: MessageID.releaseSucceeded
        case .cancelled: MessageID.releaseCancelled
        case .interrupted: MessageID.releaseInterrupted
        default: MessageID.releaseFailed
        }
        let level: Logger.Level = switch state {
        case .succeeded: .notice
        case .cancelled, .interrupted: .warning
        default: .error
        }
        log.note("release \(state.rawValue)" + (record.reason.map { ": \($0)" } ?? "") + " in \(Summary.duration(record.durationMs!))",
                 level: level, metadata: ["message.id": "\(messageID)", "release.state": "\(state.rawValue)",
                                          "duration.usec": "\(record.durationMs! * 1000)"])
        return record
    }

    /// How long a reporting task (notify) may take, at most.
    static let reportLimit = Duration.seconds(120)

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
                if stopOn(reason) { return .stopped(reason) }
                return .ignored  // a stop this task outlives
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
            case .stopped(let reason): throw TaskFailure(.cancelled, reason: "the release was \(stopWord(reason))")
            }
        }
    }

    func isReporter(_ name: String) -> Bool {
        registry.first { $0.name == name }?.runsAfterFailure ?? false
    }

    static func outcome(failure: (task: String, failure: TaskFailure)?, control: ReleaseControl) -> (ReleaseState, String?) {
        switch control.reason {
        case .shutdown?: return (.interrupted, "interrupted: the daemon shut down before the release finished")
        case .cancelled?: return (.cancelled, "cancelled by releasectl cancel")
        default: break
        }
        if let (task, f) = failure { return (.failed, "\(task) \(f.reason)") }
        return (.succeeded, nil)
    }

    static func stopWord(_ r: StopReason) -> String {
        switch r {
        case .cancelled: "cancelled"
        case .shutdown: "interrupted"
        }
    }

    /// Records progress in `running/<id>.record.json` for `status` and for recovery.
    func writeProgress(_ record: ReleaseRecord) {
        try? spool.writeAtomically(record.encoded(), to: .running, name: "\(record.id).record.json", durable: false)
    }

    static func home(of uid: uid_t) -> String {
        guard let pw = getpwuid(uid), let dir = pw.pointee.pw_dir else { return "/" }
        return String(cString: dir)
    }
}
