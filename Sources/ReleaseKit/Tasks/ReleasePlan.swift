/// What a release will do, worked out before anything runs: which tasks, why, with which
/// command and limits. The daemon runs from it; `releasectl plan` prints it.
public struct ReleasePlan: Sendable {
    public struct Step: Sendable, Encodable {
        public var name: String
        public var willRun: Bool
        /// Why it runs or not, in words.
        public var reason: String
        public var gate: GateReading
        public var command: Command?
        public var timeout: Duration?
        /// Set when the task will run but cannot succeed (no command for this app).
        public var problem: String?
        /// Set for a task skipped because the Procfile's release: line covers it.
        public var leftToProcfile: Bool

        enum CodingKeys: String, CodingKey { case name, willRun, reason, gate, command, timeout, problem }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(name, forKey: .name)
            try c.encode(willRun, forKey: .willRun)
            try c.encode(reason, forKey: .reason)
            try c.encode(gate, forKey: .gate)
            try c.encode(command?.arguments, forKey: .command)
            try c.encode(timeout.map(DurationParser.format), forKey: .timeout)
            try c.encodeIfPresent(problem, forKey: .problem)
        }
    }

    public var app: String
    public var directory: String
    public var preset: String?
    public var steps: [Step]
    public var warnings: [String]
    /// Whether a notify failure fails the release (RELEASE_NOTIFY_REQUIRED).
    public var notifyRequired: Bool

    /// Variables the tasks read that are not gates (never reported as misspelt gates).
    public static let knownVariables: Set<String> = [
        "RELEASE_NOTIFY_URL", "RELEASE_NOTIFY_SECRET", "RELEASE_NOTIFY_REQUIRED", "RELEASE_NOTIFY_TIMEOUT",
    ]
    public static let notifyRequiredVariable = "RELEASE_NOTIFY_REQUIRED"

    /// Works out the plan. Throws a `RejectReason` for anything that rejects the release:
    /// an unknown task in `tasks`, a gate value that is neither on nor off.
    public static func make(app: String, directory: String, env: [String: String], tasks requested: [String]?,
                            registry: [any ReleaseTask.Type], inspection: AppInspection) throws(RejectReason) -> ReleasePlan {
        let names = registry.map { $0.name }
        if let requested {
            for name in requested where !names.contains(name) {
                throw RejectReason(.unknownTask, "unknown task \(Masking.preview(name)) (known: \(names.joined(separator: ", ")))")
            }
        }
        // Every gate is read, requested or not: a typo anywhere rejects.
        var gateValues: [String: Gate.Value?] = [:]
        for task in registry {
            gateValues[task.name] = try Gate.parse(variable: task.gate, value: env[task.gate])
        }
        let notifyRequired = try Gate.parse(variable: notifyRequiredVariable, value: env[notifyRequiredVariable]) == .on

        let procfileTask = registry.first { $0.name == "procfile" }
        let procfileRuns: Bool = {
            guard let procfileTask, requested?.contains("procfile") ?? true else { return false }
            let on = (gateValues["procfile"] ?? nil).map { $0 == .on } ?? procfileTask.isOnByDefault(in: inspection)
            return on && inspection.procfileRelease != nil
        }()

        var steps: [Step] = []
        for task in registry {
            let reading = GateReading(variable: task.gate, value: env[task.gate])
            let value = gateValues[task.name] ?? nil
            let on = value.map { $0 == .on } ?? task.isOnByDefault(in: inspection)
            let settings = inspection.config.tasks[task.name]
            var step = Step(name: task.name, willRun: false, reason: "", gate: reading, command: nil,
                            timeout: settings?.timeout, problem: nil, leftToProcfile: false)
            if let requested, !requested.contains(task.name) {
                step.reason = "not requested (tasks: \(requested.joined(separator: ", ")))"
            } else if !on {
                step.reason = reading.value == nil
                    ? "\(task.gate) is off (unset)"
                    : "\(task.gate) is off (\(reading.value!))"
            } else {
                let why = reading.value == nil ? "on by default" : "\(task.gate)=\(reading.value!)"
                if !task.takesCommand {
                    step.willRun = true
                    step.reason = why
                } else if let command = settings?.command {
                    step.willRun = true
                    step.command = command
                    step.reason = "\(why); command from release.toml"
                } else if task.name != "procfile", procfileRuns {
                    step.reason = "left to the Procfile release: line"
                    step.leftToProcfile = true
                } else if let command = task.defaultCommand(in: inspection) {
                    step.willRun = true
                    step.command = command
                    step.reason = task.name == "procfile"
                        ? "\(why); command from the Procfile release: line"
                        : "\(why); command from the \(inspection.preset?.name ?? "default") preset"
                } else {
                    step.willRun = true
                    step.reason = "\(why); no command"
                    step.problem = task.name == "procfile"
                        ? "\(task.gate) is on but \(inspection.directory)/Procfile has no release: line"
                        : "no command for \(task.name) in this app: add [tasks.\(task.name)] command = \"…\" to \(inspection.directory)/\(AppConfig.fileName)"
                }
            }
            if step.willRun { try task.validate(env: env) }
            steps.append(step)
        }
        let warnings = Gate.nearMisses(in: env, gates: registry.map { $0.gate } + [notifyRequiredVariable], known: knownVariables)
            .map { "\($0.variable) looks like \($0.gate)" }
        return ReleasePlan(app: app, directory: directory, preset: inspection.preset?.name, steps: steps,
                           warnings: warnings, notifyRequired: notifyRequired)
    }
}
