import FoundationEssentials

/// Why a running release is being stopped.
public enum StopReason: Sendable, Equatable {
    /// `releasectl cancel`.
    case cancelled
    /// The daemon is shutting down and the shutdown grace ran out.
    case shutdown
    /// This node could not renew the release's cluster lease in time: it ends its tasks
    /// before the lease runs out (another node then marks the release interrupted).
    case leaseLost

    /// How a release stopped for this reason is described: "cancelled", "interrupted".
    public var word: String {
        switch self {
        case .cancelled: "cancelled"
        case .shutdown, .leaseLost: "interrupted"
        }
    }
}

/// The outcome rules of a release, as a pure state machine over its plan: the runner asks
/// what to do next, does it, and says how it went; this decides everything else.
///
/// - Tasks run one at a time in the plan's order, those that report (`runsAfterFailure`,
///   notify) after all the others.
/// - After a failure, or once the release is stopped, the remaining tasks are `not-run`,
///   saying why; a task that reports still runs (it reports the failure, or the cancel) —
///   except after a shutdown, when nothing more runs.
/// - A task that reports sees the outcome as it stands (`record.state` and `reason` are
///   set before it runs). Its own failure fails the release only when its step says so;
///   otherwise it becomes a warning.
/// - The release ends `interrupted` after a shutdown, `cancelled` after a cancel, `failed`
///   with the first failure's reason, else `succeeded`.
public struct ReleaseProgress: Sendable {
    /// What the runner is to do next.
    public enum Action: Sendable, Equatable {
        /// Run the plan's step at this index (its record is `record.tasks[index]`).
        case run(Int)
        /// Nothing more to run: call `finish`.
        case finish
    }

    /// The release's record as it stands (masked).
    public private(set) var record: ReleaseRecord
    private let steps: [ReleasePlan.Step]
    private let masking: Masking
    /// The indexes of the steps that will run, in running order.
    private let order: [Int]
    private var cursor = 0
    /// The release's failure so far: the reason it will end with.
    private var failure: String?

    /// Starts from the plan: steps that will run are `pending`, the others `skipped` with
    /// the plan's reason; commands are masked.
    public init(plan: ReleasePlan, record base: ReleaseRecord, masking: Masking) {
        record = base
        steps = plan.steps
        self.masking = masking
        record.tasks = plan.steps.map { step in
            TaskRecord(name: step.name, state: step.willRun ? .pending : .skipped, reason: step.willRun ? nil : step.reason,
                       gate: step.gate, command: step.command?.arguments.map(masking.apply))
        }
        let running = plan.steps.indices.filter { plan.steps[$0].willRun }
        order = running.filter { !plan.steps[$0].runsAfterFailure } + running.filter { plan.steps[$0].runsAfterFailure }
    }

    /// The names of the tasks that will run, in running order.
    public var toRun: [String] { order.map { steps[$0].name } }

    /// The step at an index.
    public func step(_ index: Int) -> ReleasePlan.Step { steps[index] }

    /// The next action given the release's stop (nil while it runs): tasks that are not to
    /// run any more are marked `not-run` on the way; the task returned is marked `running`
    /// from `now`.
    public mutating func next(stop: StopReason?, now: Date) -> Action {
        while cursor < order.count {
            let index = order[cursor]
            cursor += 1
            let reporter = steps[index].runsAfterFailure
            if !reporter, failure != nil || stop != nil {
                record.tasks[index].state = .notRun
                record.tasks[index].reason = stop.map { "the release was \($0.word)" } ?? "an earlier task failed"
                continue
            }
            if reporter, stop == .shutdown || stop == .leaseLost {
                record.tasks[index].state = .notRun
                record.tasks[index].reason = stop == .shutdown ? "the daemon shut down" : "the cluster lease was lost"
                continue
            }
            if reporter {
                (record.state, record.reason) = outcome(stop: stop)
            }
            record.tasks[index].state = .running
            record.tasks[index].startedAt = now
            return .run(index)
        }
        return .finish
    }

    /// A task ended: by succeeding when `failure` is nil, else as it says.
    /// `cpuMs` and `peakMemoryBytes`: what it used, when known.
    /// `attempts`, `migrations`: a migration task's runs and effect on the schema.
    public mutating func ended(_ index: Int, failure taskFailure: TaskFailure?, durationMs: Int64, cpuMs: Int64? = nil,
                               peakMemoryBytes: Int64? = nil, attempts: [AttemptRecord]? = nil, migrations: MigrationRecord? = nil) {
        record.tasks[index].durationMs = durationMs
        record.tasks[index].cpuMs = cpuMs
        record.tasks[index].peakMemoryBytes = peakMemoryBytes
        record.tasks[index].attempts = attempts
        record.tasks[index].migrations = migrations
        guard let f = taskFailure else {
            record.tasks[index].state = .succeeded
            return
        }
        let step = steps[index]
        let reason = masking.apply(f.reason)
        record.tasks[index].state = f.state
        record.tasks[index].reason = reason
        record.tasks[index].exitStatus = f.exitStatus
        record.tasks[index].signal = f.signal
        if step.runsAfterFailure && !step.failureFailsRelease {
            record.warnings.append("\(step.name) failed: \(reason)" + (step.failureHint.map { " (\($0))" } ?? ""))
        } else if failure == nil {
            failure = "\(step.name) \(reason)"
        }
    }

    /// A task let run turned out to have nothing to do (a migration with nothing pending):
    /// `skipped`, saying why.
    public mutating func skipped(_ index: Int, reason: String, migrations: MigrationRecord? = nil) {
        record.tasks[index].state = .skipped
        record.tasks[index].reason = masking.apply(reason)
        record.tasks[index].migrations = migrations
    }

    /// The release cannot run its tasks (its image could not be made ready): every task but
    /// those that report is `not-run`, and the release fails with `reason` — a report still
    /// goes out, as after any failure.
    public mutating func failBeforeTasks(_ reason: String) {
        if failure == nil { failure = masking.apply(reason) }
    }

    /// The final record: state and reason from the rules above, with the end time.
    public mutating func finish(stop: StopReason?, now: Date, durationMs: Int64) -> ReleaseRecord {
        (record.state, record.reason) = outcome(stop: stop)
        record.finishedAt = now
        record.durationMs = durationMs
        return record
    }

    /// The release's outcome as it stands.
    private func outcome(stop: StopReason?) -> (ReleaseState, String?) {
        switch stop {
        case .shutdown?: return (.interrupted, "interrupted: the daemon shut down before the release finished")
        case .leaseLost?: return (.interrupted, "interrupted: this node could not renew its cluster lease in time")
        case .cancelled?: return (.cancelled, "cancelled by releasectl cancel")
        case nil: break
        }
        if let failure { return (.failed, failure) }
        return (.succeeded, nil)
    }
}
