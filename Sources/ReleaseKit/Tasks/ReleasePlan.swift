import ReleaseSupport

/// What a release will do, worked out before anything runs: which tasks, why, with which
/// command and limits. The daemon runs from it; `releasectl plan` prints it.
public struct ReleasePlan: Sendable {
    /// What says a release is not its app's first deploy: another deploy of the app that
    /// succeeded (either phase), or a first-deploy-only task that already succeeded.
    public struct FirstDeploy: Sendable, Equatable {
        /// The app's other deploy that succeeded, in words ("release v41 (01J…) succeeded on
        /// web-1"); nil: none.
        public var deployedBefore: String?
        /// First-deploy-only tasks that already succeeded for the app, each with where.
        public var ranBefore: [String: String]

        public init(deployedBefore: String? = nil, ranBefore: [String: String] = [:]) {
            self.deployedBefore = deployedBefore
            self.ranBefore = ranBefore
        }

        /// Nothing says it is not the first deploy.
        public static let first = FirstDeploy()

        /// Both answers together (this node's records and a cluster's database).
        public func merged(with other: FirstDeploy) -> FirstDeploy {
            FirstDeploy(deployedBefore: deployedBefore ?? other.deployedBefore, ranBefore: ranBefore.merging(other.ranBefore) { a, _ in a })
        }
    }

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
        /// The task runs only on the app's first successful release of the phase (see
        /// `settleFirstDeploy`).
        public var firstDeployOnly = false
        /// A migration task: its framework's status is read around it (`statusPreset`), it
        /// may be run again on a lock timeout (`lock`), and it may be skipped when nothing is
        /// pending.
        public var isMigration = false
        /// The preset whose status command lists the migrations (nil: none known).
        public var statusPreset: Preset?
        public var skipWhenNonePending = false
        /// Its lock settings (release.toml's over released.toml's for the app; see
        /// `applyLocks`), the `PGOPTIONS` its clients get (nil: the app's own, untouched), and
        /// what `plan` says of them.
        public var lock = LockSettings()
        public var pgOptions: String?
        public var lockNotes: [String] = []
    }

    public var app: String
    public var directory: String
    public var phase: ReleasePhase = .default
    public var preset: String?
    public var steps: [Step]
    public var warnings: [String]

    /// Works out the plan of a release of `phase`: that phase's tasks. Throws a `RejectReason`
    /// for anything that rejects the release: an unknown task in `tasks` (or one of the other
    /// phase), a gate value that is neither on nor off (of either phase: a typo in a
    /// postdeploy gate is found before traffic moves), a variable that looks like a misspelt
    /// gate and is not off, a task's own variable that is invalid (`ReleaseTask.validate`).
    ///
    /// `firstDeploy`: whether this is the app's first successful release of the phase, when
    /// known (nil: decided when the release starts, `settleFirstDeploy`).
    public static func make(app: String, directory: String, env: [String: String], tasks requested: [String]?,
                            phase: ReleasePhase = .default, firstDeploy: FirstDeploy? = nil,
                            registry all: [any ReleaseTask.Type], inspection: AppInspection) throws(RejectReason) -> ReleasePlan {
        let registry = all.filter { $0.phase == phase }
        let names = registry.map { $0.name }
        if let requested {
            for name in requested where !names.contains(name) {
                if let other = all.first(where: { $0.name == name }) {
                    throw RejectReason(.unknownTask, "task \(name) runs in the \(other.phase.rawValue) phase, not in this \(phase.rawValue) (submit it with --phase \(other.phase.rawValue))")
                }
                throw RejectReason(.unknownTask, "unknown task \(Masking.preview(name)) (known: \(all.map { $0.name }.joined(separator: ", ")))")
            }
        }
        // Every gate is read, requested or not, of either phase: a typo anywhere rejects.
        var on: [String: Bool] = [:]
        for task in all {
            let value = try Gate.parse(variable: task.gate, value: env[task.gate])
            guard task.phase == phase else { continue }
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
            } else if let covering, covering.name != task.name, task.isCoverable, let coverage = covering.coverage {
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
            step.firstDeployOnly = settings?.firstDeploy ?? task.isFirstDeployOnly
            if task.isMigration {
                step.isMigration = true
                step.statusPreset = inspection.preset
                step.skipWhenNonePending = settings?.skipWhenNonePending ?? false
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
        let known = Set(all.flatMap { $0.variables })
        var warnings: [String] = []
        for (variable, gate) in Gate.nearMisses(in: env, gates: all.map { $0.gate } + all.flatMap { $0.switches }, known: known) {
            let value = env[variable] ?? ""
            // (With the gate itself set too, the look-alike decides nothing: a warning.)
            guard env[gate] != nil || (try? Gate.parse(variable: variable, value: value)) == .off else {
                throw RejectReason(.gate, "\(variable)=\(Masking.preview(value, limit: Quoting.tokenLimit)) looks like a misspelling of \(gate), which is not set: the task it switches on would be skipped; name the variable \(gate)")
            }
            warnings.append("\(variable) looks like \(gate)")
        }
        var plan = ReleasePlan(app: app, directory: directory, phase: phase, preset: inspection.preset?.name, steps: steps, warnings: warnings)
        if let firstDeploy { plan.settleFirstDeploy(firstDeploy) }
        return plan
    }

    /// Decides the first-deploy-only tasks that would run: they run on the app's first deploy
    /// — no other deploy of it succeeded, and the task itself never succeeded for it — and are
    /// skipped otherwise, saying what made it not.
    public mutating func settleFirstDeploy(_ answer: FirstDeploy) {
        for i in steps.indices where steps[i].firstDeployOnly && steps[i].willRun {
            let why: String? = if let ran = answer.ranBefore[steps[i].name] {
                "it already succeeded for \(app) (\(ran))"
            } else if let deployed = answer.deployedBefore {
                "\(app) has been deployed before (\(deployed))"
            } else {
                nil
            }
            guard let why else {
                if !steps[i].reason.contains("first deploy") { steps[i].reason += "; first deploy of \(app)" }
                continue
            }
            steps[i].willRun = false
            steps[i].command = nil
            steps[i].problem = nil
            steps[i].note = nil
            steps[i].reason = "first deploy only, and \(why)"
        }
    }

    /// The first-deploy-only tasks that would run.
    public var firstDeployTasks: [String] { steps.filter { $0.firstDeployOnly && $0.willRun }.map(\.name) }

    /// Whether any task that would run is first-deploy-only (then the release asks its history).
    public var hasFirstDeployTasks: Bool { steps.contains { $0.firstDeployOnly && $0.willRun } }

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

    /// Gives each migration task that will run its lock settings: release.toml's (`config`)
    /// over the app's in released.toml (`appDefault`), and the `PGOPTIONS` that carries them to
    /// libpq clients, after the app's own `PGOPTIONS` (from `env`) and never over a setting it
    /// makes itself; notes for `plan` where a client is not known to read it.
    public mutating func applyLocks(_ config: AppConfig, appDefault: LockSettings, env: [String: String]) {
        for i in steps.indices where steps[i].isMigration && steps[i].willRun && steps[i].command != nil {
            let lock = (config.tasks[steps[i].name]?.lock ?? LockSettings()).over(appDefault)
            guard !lock.isEmpty else { continue }
            steps[i].lock = lock
            var notes = [lock.described]
            if let (value, leftToApp) = lock.pgOptions(appOptions: env["PGOPTIONS"]) {
                steps[i].pgOptions = value
                if !leftToApp.isEmpty { notes.append("\(leftToApp.joined(separator: ", ")) left as the app's PGOPTIONS sets it") }
                switch steps[i].statusPreset {
                case let preset? where !MigrationStatus.honoursPGOptions(preset):
                    notes.append("PGOPTIONS is set, but \(MigrationStatus.client(preset)) does not read it: set the timeouts in the app's database config")
                case nil:
                    notes.append("PGOPTIONS is set; this task's database client is not known (no framework preset): libpq clients read it, others may not")
                default: break
                }
            }
            if steps[i].skipWhenNonePending && steps[i].statusPreset == nil {
                notes.append("skip-when-none-pending needs a framework preset to list pending migrations: the task runs")
            }
            steps[i].lockNotes = notes
        }
        for i in steps.indices where steps[i].isMigration && steps[i].willRun && steps[i].skipWhenNonePending && steps[i].lockNotes.isEmpty {
            if steps[i].statusPreset == nil {
                steps[i].lockNotes = ["skip-when-none-pending needs a framework preset to list pending migrations: the task runs"]
            }
        }
    }

    /// The tasks that will run with limits.
    public var limitedSteps: [Step] { steps.filter { $0.willRun && !$0.limits.isEmpty } }
}
