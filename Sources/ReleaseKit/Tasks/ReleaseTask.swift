import Logging
import SystemPackage

/// A release task: one step of a release, compiled in and registered by name.
///
/// A task is gated by an environment variable of the app (`gate`): it runs only when the
/// request's env turns the gate on (or, for a task that is on by default, does not turn it
/// off). Tasks run one at a time in the registry's order, in the app directory, with exactly
/// the environment `TaskContext.environment` gives. A task reports failure by throwing; a
/// `TaskFailure` says how (exit status, signal, time-out), any other error fails the task
/// with the error's description as the reason.
///
/// A task knows everything about itself that the rest of the program needs — its other
/// variables, its default command for each framework preset, what it covers, how its failure
/// counts — so that ReleaseKit, the daemon and the CLI never name a task. Every requirement
/// but `name`, `gate`, `summary` and `init()` has a default.
public protocol ReleaseTask: Sendable {
    /// The name used in requests, release.toml and the record: `migrate`.
    static var name: String { get }
    /// The variable that turns the task on: `RUN_MIGRATIONS_DURING_RELEASE`.
    static var gate: String { get }
    /// One line for `releasectl plugins`.
    static var summary: String { get }
    /// Whether the task runs a command (from release.toml, the Procfile or a preset).
    static var takesCommand: Bool { get }
    /// Whether the task runs after the others, even when one failed or the release was
    /// cancelled, to report the outcome (notify).
    static var runsAfterFailure: Bool { get }
    /// Set for a task that, while it runs, covers every gated task with no command of its own
    /// in release.toml, which is then skipped rather than given a preset's command (the
    /// Procfile's `release:` line is the app's own release logic, as on Heroku): the reason
    /// such a task is skipped with, "left to the Procfile release: line".
    static var coverage: String? { get }
    /// The phase the task runs in: before traffic moves (predeploy) or after (postdeploy).
    static var phase: ReleasePhase { get }
    /// Whether a task that covers others (the Procfile's `release:` line) covers this one
    /// when it has no command of its own in release.toml. A task whose command is the app's
    /// own (an app.json script) is never covered.
    static var isCoverable: Bool { get }
    /// Whether the task migrates a database: it takes lock settings (`LockSettings`), is run
    /// again when it failed on a lock timeout, and its record says which migrations it applied.
    static var isMigration: Bool { get }
    /// Whether the task runs only on the app's first successful release of its phase (Heroku's
    /// `scripts.postdeploy`); release.toml's `first-deploy = true` marks any task so.
    static var isFirstDeployOnly: Bool { get }
    /// The variables other than its gate that the task reads: never taken for misspelt gates.
    static var variables: [String] { get }
    /// Those of `variables` that are on/off switches read like a gate: a variable that looks
    /// like a misspelt one is found as for a gate.
    static var switches: [String] { get }
    /// The command when release.toml names none; nil when this app has none.
    static func defaultCommand(in app: AppInspection) -> Command?
    /// Where `defaultCommand` comes from, for `plan`: "the rails preset".
    static func defaultCommandSource(in app: AppInspection) -> String
    /// Why the task cannot run when its gate is on and it has no command.
    static func missingCommand(in app: AppInspection) -> String
    /// Whether the gate is on when its variable is unset.
    static func isOnByDefault(in app: AppInspection) -> Bool
    /// When the gate is on with its variable unset, in words for `releasectl plugins`
    /// ("when the Procfile has a release: line"); nil when it is then off.
    static var onWhenUnset: String? { get }
    /// Checks the task's own variables when a request that will run the task arrives; a
    /// problem rejects the release (exit 2) before anything runs.
    static func validate(env: [String: String]) throws(RejectReason)
    /// A problem already known to make the task fail if it runs (notify with no URL), for
    /// `plan`; nil when none is known.
    static func knownProblem(env: [String: String]) -> String?
    /// One more line for `plan` about what the task will do (notify: where it posts).
    static func planNote(env: [String: String]) -> String?
    /// For a task that `runsAfterFailure`: whether its own failure fails the release (else
    /// it is a warning). Throws for a variable that says neither.
    static func failureFailsRelease(env: [String: String]) throws(RejectReason) -> Bool
    /// What a warning about the task's failure adds when that failure does not fail the
    /// release: how to make it do so.
    static var failureHint: String? { get }

    init()

    /// Does the task's work. Output goes through the context so it reaches the release log
    /// and the journal, masked.
    func run(in context: TaskContext) async throws
}

extension ReleaseTask {
    public static var takesCommand: Bool { true }
    public static var runsAfterFailure: Bool { false }
    public static var coverage: String? { nil }
    public static var phase: ReleasePhase { .predeploy }
    public static var isCoverable: Bool { true }
    public static var isFirstDeployOnly: Bool { false }
    public static var isMigration: Bool { false }
    public static var variables: [String] { [] }
    public static var switches: [String] { [] }
    public static func defaultCommand(in app: AppInspection) -> Command? { nil }
    public static func defaultCommandSource(in app: AppInspection) -> String { "the \(app.preset?.name ?? "default") preset" }
    public static func missingCommand(in app: AppInspection) -> String {
        "no command for \(name) in this app: add [tasks.\(name)] command = \"…\" to \(app.directory)/\(AppConfig.fileName)"
    }
    public static func isOnByDefault(in app: AppInspection) -> Bool { false }
    public static var onWhenUnset: String? { nil }
    public static func validate(env: [String: String]) throws(RejectReason) {}
    public static func knownProblem(env: [String: String]) -> String? { nil }
    public static func planNote(env: [String: String]) -> String? { nil }
    public static func failureFailsRelease(env: [String: String]) throws(RejectReason) -> Bool { true }
    public static var failureHint: String? { nil }

    /// Runs the task's resolved command.
    public func run(in context: TaskContext) async throws {
        guard let command = context.command else {
            throw TaskFailure(.failed, reason: "no command for \(Self.name)")
        }
        try await context.run(command)
    }
}

/// How a task ended other than by succeeding.
public struct TaskFailure: Error, Sendable, CustomStringConvertible {
    public var state: TaskState
    public var reason: String
    public var exitStatus: Int32?
    public var signal: Int32?

    public init(_ state: TaskState, reason: String, exitStatus: Int32? = nil, signal: Int32? = nil) {
        self.state = state
        self.reason = reason
        self.exitStatus = exitStatus
        self.signal = signal
    }

    public var description: String { reason }
}

/// Runs commands for tasks: provided by the daemon, which streams output into the release log
/// and the journal and applies the time limits and cancellation.
public protocol TaskProcessRunner: Sendable {
    /// Runs a command to its end; throws `TaskFailure` for a non-zero exit, a signal, a
    /// time-out or cancellation.
    func run(_ command: Command, for context: TaskContext) async throws(TaskFailure)
    /// Writes one line of the task's own output (masked) to the release log and the journal.
    func say(_ line: String, for context: TaskContext)
}

/// What a task may use while it runs.
public struct TaskContext: Sendable {
    /// The request being released.
    public let request: ReleaseRequest
    /// The task's name.
    public let task: String
    /// The task's environment: the request's env plus RELEASE_*, PATH, HOME, LANG.
    public let environment: [String: String]
    /// The app directory, where commands run.
    public let directory: FilePath
    /// The command resolved for this task, if it takes one.
    public let command: Command?
    /// When the task must end (the earlier of its own timeout and the release's).
    public let deadline: ContinuousClock.Instant
    /// The release as it stands (masked): for `notify`, its provisional final state.
    public let outcome: ReleaseRecord
    /// The masking of this release's secrets.
    public let masking: Masking
    /// The task's resource limits (enforced by the executor).
    public let limits: ResourceLimits
    public let logger: Logger
    let runner: any TaskProcessRunner

    public init(request: ReleaseRequest, task: String, environment: [String: String], directory: FilePath,
                command: Command?, deadline: ContinuousClock.Instant, outcome: ReleaseRecord, masking: Masking,
                limits: ResourceLimits = ResourceLimits(), logger: Logger, runner: any TaskProcessRunner) {
        self.limits = limits
        self.request = request
        self.task = task
        self.environment = environment
        self.directory = directory
        self.command = command
        self.deadline = deadline
        self.outcome = outcome
        self.masking = masking
        self.logger = logger
        self.runner = runner
    }

    /// Runs a command in the app directory with the task's environment, streaming its output.
    public func run(_ command: Command) async throws(TaskFailure) {
        try await runner.run(command, for: self)
    }

    /// Writes a line into the release's output.
    public func say(_ line: String) {
        runner.say(line, for: self)
    }
}
