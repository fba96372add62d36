import ReleaseKit

/// Runs the app's post-deployment migrations once traffic has moved: the contract step of an
/// expand/contract change (drop the column only the old version read). Its command is the
/// app's, from release.toml (`[tasks.post-migrate] command = …`): no framework has a standard
/// one.
public struct PostMigrateTask: ReleaseTask {
    public static let name = "post-migrate"
    public static let gate = "RUN_MIGRATIONS_AFTER_DEPLOY"
    public static let summary = "run post-deployment migrations after traffic moved (the contract step; command from release.toml)"
    public static let phase = ReleasePhase.postdeploy
    public static let isMigration = true
    public init() {}
}

/// Warms the app up once traffic has moved: caches, a search reindex. Command from
/// release.toml (`[tasks.warm-up] command = …`).
public struct WarmUpTask: ReleaseTask {
    public static let name = "warm-up"
    public static let gate = "WARM_UP_AFTER_DEPLOY"
    public static let summary = "warm caches or reindex after traffic moved (command from release.toml)"
    public static let phase = ReleasePhase.postdeploy
    public init() {}
}

/// Posts the postdeploy's outcome ("deployed") to the same webhooks as `notify`, last of the
/// postdeploy's tasks and also after a failure; the body carries `"phase": "postdeploy"`.
public struct NotifyDeployedTask: ReleaseTask {
    public static let name = "notify-deployed"
    public static let gate = "NOTIFY_AFTER_DEPLOY"
    public static let summary = "POST the postdeploy's outcome as JSON to RELEASE_NOTIFY_URL (runs last, also after a failure)"
    public static let phase = ReleasePhase.postdeploy
    public static let takesCommand = false
    public static let runsAfterFailure = true
    public static let variables = NotifyTask.variables
    public static let switches = NotifyTask.switches
    public static let failureHint = NotifyTask.failureHint

    public static func failureFailsRelease(env: [String: String]) throws(RejectReason) -> Bool { try NotifyTask.failureFailsRelease(env: env) }
    public static func knownProblem(env: [String: String]) -> String? { NotifyTask.knownProblem(env: env) }
    public static func planNote(env: [String: String]) -> String? { NotifyTask.planNote(env: env) }
    public static func validate(env: [String: String]) throws(RejectReason) { try NotifyTask.validate(env: env) }

    public init() {}

    public func run(in context: TaskContext) async throws { try await NotifyTask().run(in: context) }
}
