import ReleaseSupport

/// What a release will do, worked out before anything runs: which tasks, why, with which
/// command and limits. The daemon runs from it; `releasectl plan` prints it.
public struct ReleasePlan: Sendable {
    public struct Step: Sendable {
        public var name: String
        public var willRun: Bool
        /// Why it runs or not, in words.
        public var reason: String
        public var gate: GateReading
        public var command: Command?
        public var timeout: Duration?
        /// Set when the task will run but cannot succeed (no command for this app, notify
        /// without a URL): the task fails with this reason, and `plan` marks it FAIL.
        public var problem: String?
        /// Set for a task skipped because a task that covers it runs (the Procfile's
        /// release: line): that task's name.
        public var leftTo: String?
        /// The task runs after the others, even after a failure, to report (notify).
        public var runsAfterFailure: Bool
        /// Whether the task's own failure fails the release (else it is a warning).
        public var failureFailsRelease: Bool
        /// For a failure that does not fail the release: how to make it do so.
        public var failureHint: String?
        /// One more line about what the task will do, for `plan`.
        public var note: String?
        /// Its resource limits (see `applyLimits`), and where each came from, by key.
        public var limits = ResourceLimits()
        public var limitSources: [String: String] = [:]
    }

    public var app: String
    public var directory: String
    public var preset: String?
    public var steps: [Step]
    public var warnings: [String]

    /// Works out the plan. Throws a `RejectReason` for anything that rejects the release:
    /// an unknown task in `tasks`, a gate value that is neither on nor off, a variable that
    /// looks like a misspelt gate and is not off, a task's own variable that is invalid
    /// (`ReleaseTask.validate`).
    public static func make(app: String, directory: String, env: [String: String], tasks requested: [String]?,
                            registry: [any ReleaseTask.Type], inspection: AppInspection) throws(RejectReason) -> ReleasePlan {
        let names = registry.map { $0.name }
        if let requested {
            for name in requested where !names.contains(name) {
                throw RejectReason(.unknownTask, "unknown task \(Masking.preview(name)) (known: \(names.joined(separator: ", ")))")
            }
        }
        // Every gate is read, requested or not: a typo anywhere rejects.
        var on: [String: Bool] = [:]
        for task in registry {
            let value = try Gate.parse(variable: task.gate, value: env[task.gate])
            let requestedHere = requested?.contains(task.name) ?? true
            on[task.name] = requestedHere && (value.map { $0 == .on } ?? task.isOnByDefault(in: inspection))
        }
        // A task that covers the others runs only when it has a command to run.
        let covering = registry.first { task in
            task.coverage != nil && on[task.name] == true
                && (inspection.config.tasks[task.name]?.command ?? task.defaultCommand(in: inspection)) != nil
        }

        var steps: [Step] = []
        for task in registry {
            let reading = GateReading(variable: task.gate, value: env[task.gate])
            let settings = inspection.config.tasks[task.name]
            var step = Step(name: task.name, willRun: false, reason: "", gate: reading, command: nil, timeout: settings?.timeout,
                            problem: nil, leftTo: nil, runsAfterFailure: task.runsAfterFailure,
                            failureFailsRelease: try task.failureFailsRelease(env: env), failureHint: task.failureHint, note: nil)
            let why = reading.value.map { "\(task.gate)=\($0)" } ?? "on by default"
            if let requested, !requested.contains(task.name) {
                step.reason = "not requested (tasks: \(requested.joined(separator: ", ")))"
            } else if on[task.name] != true {
                step.reason = reading.value.map { "\(task.gate) is off (\($0))" } ?? "\(task.gate) is off (unset)"
            } else if !task.takesCommand {
                step.willRun = true
                step.reason = why
            } else if let command = settings?.command {
                step.willRun = true
                step.command = command
                step.reason = "\(why); command from release.toml"
            } else if let covering, covering.name != task.name, let coverage = covering.coverage {
                step.reason = coverage
                step.leftTo = covering.name
            } else if let command = task.defaultCommand(in: inspection) {
                step.willRun = true
                step.command = command
                step.reason = "\(why); command from \(task.defaultCommandSource(in: inspection))"
            } else {
                step.willRun = true
                step.reason = "\(why); no command"
                step.problem = task.missingCommand(in: inspection)
            }
            if step.willRun {
                try task.validate(env: env)
                step.problem = step.problem ?? task.knownProblem(env: env)
                step.note = task.planNote(env: env)
            }
            steps.append(step)
        }
        // A variable that looks like a misspelt gate: switched on, it rejects — the task it
        // meant to switch on would be skipped while the deploy goes ahead; off, a warning.
        let known = Set(registry.flatMap { $0.variables })
        var warnings: [String] = []
        for (variable, gate) in Gate.nearMisses(in: env, gates: registry.map { $0.gate } + registry.flatMap { $0.switches }, known: known) {
            let value = env[variable] ?? ""
            // (With the gate itself set too, the look-alike decides nothing: a warning.)
            guard env[gate] != nil || (try? Gate.parse(variable: variable, value: value)) == .off else {
                throw RejectReason(.gate, "\(variable)=\(Masking.preview(value, limit: Quoting.tokenLimit)) looks like a misspelling of \(gate), which is not set: the task it switches on would be skipped; name the variable \(gate)")
            }
            warnings.append("\(variable) looks like \(gate)")
        }
        return ReleasePlan(app: app, directory: directory, preset: inspection.preset?.name, steps: steps, warnings: warnings)
    }

    /// Gives each task that runs a command its limits: release.toml's (`config`), within the
    /// operator's `policy` (see `LimitPolicy.resolve`). A value over a ceiling rejects the
    /// release, whether or not its task runs this time.
    public mutating func applyLimits(_ config: AppConfig, policy: LimitPolicy) throws(RejectReason) {
        for i in steps.indices {
            let (limits, sources) = try policy.resolve(task: steps[i].name, taskLimits: config.tasks[steps[i].name]?.limits ?? ResourceLimits(),
                                                       releaseLimits: config.limits)
            guard steps[i].willRun, steps[i].command != nil else { continue }
            steps[i].limits = limits
            steps[i].limitSources = sources
        }
    }

    /// The tasks that will run with limits.
    public var limitedSteps: [Step] { steps.filter { $0.willRun && !$0.limits.isEmpty } }
}
