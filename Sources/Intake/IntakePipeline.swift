import Glibc
import ReleaseContainers
import ReleaseKit

/// The one intake: what a request asks for, validated in full, as a function of the request,
/// the app's files or image, and the operator's policy — an accepted plan, or the reason it is
/// rejected. The daemon runs it once per request (on a thread of its own, never on its event
/// loop) and again only when something it read has changed; `releasectl plan` runs the same.
///
/// In order: the app directory (absolute, inside the app roots) or the image (mounted
/// read-only, nothing of it run), the app's files read as the app's user (`credentials`), the
/// gates and tasks (`ReleasePlan`), then each task's limits within the operator's ceilings —
/// and a host task's limits only where a systemd scope can enforce them.
public enum IntakePipeline {
    /// What intake needs besides the request: the operator's settings and the means to read.
    public struct Settings: Sendable {
        public var config: DaemonConfig
        public var policy: IntakePolicy
        public var registry: [any ReleaseTask.Type]
        /// The engine image releases are read through.
        public var engine: ContainerEngine
        /// The app's user's file credentials (nil: this process's own).
        public var credentials: FileCredentials?
        /// Why host tasks cannot get limits here (no systemd scope), or nil when they can —
        /// then a host task with limits is rejected, saying so (a limit is never dropped).
        public var hostLimitsMissing: String?

        public init(config: DaemonConfig, policy: IntakePolicy, registry: [any ReleaseTask.Type], engine: ContainerEngine,
                    credentials: FileCredentials?, hostLimitsMissing: String?) {
            self.config = config
            self.policy = policy
            self.registry = registry
            self.engine = engine
            self.credentials = credentials
            self.hostLimitsMissing = hostLimitsMissing
        }
    }

    /// An accepted request's plan and what it was made from.
    public struct Accepted: Sendable {
        public var validation: AppValidation.Validation
        /// For an image release: the image as the engine had it (nil while it is not there
        /// yet: it is pulled, and the release planned again from it, when the release starts).
        public var image: ContainerEngine.Image?
        /// For an image release: where its tasks run in the container.
        public var workingDirectory: String?

        public var plan: ReleasePlan { validation.plan }
    }

    /// Validates `request` in full (see above).
    public static func accept(_ request: ReleaseRequest, _ settings: Settings) throws(RejectReason) -> Accepted {
        var accepted: Accepted
        if request.image != nil {
            let result = try ImageValidation.validate(request, engine: settings.engine, policy: settings.policy,
                                                      registry: settings.registry, credentials: settings.credentials)
            accepted = Accepted(validation: result.validation, image: result.image, workingDirectory: result.workingDirectory)
        } else {
            guard let directory = request.directory else { throw RejectReason(.schema, "the request has no \"directory\"") }
            accepted = Accepted(validation: try AppValidation.validate(app: request.app, directory: directory, env: request.env,
                                                                       tasks: request.tasks, phase: request.phase, policy: settings.policy,
                                                                       registry: settings.registry, credentials: settings.credentials))
        }
        try accepted.validation.plan.applyLimits(accepted.validation.config, policy: settings.config.limitPolicy(for: request.app))
        accepted.validation.plan.applyLocks(accepted.validation.config, appDefault: settings.config.settings(for: request.app).lock,
                                            env: request.env)
        if request.image == nil, let missing = settings.hostLimitsMissing, let step = accepted.plan.limitedSteps.first {
            let what = ResourceLimits.keys.compactMap { key in step.limits.describe(key).map { "\($0) from \(step.limitSources[key]!)" } }
            throw RejectReason(.limits, "\(step.name) has limits (\(what.joined(separator: ", "))), which a task on the host gets only from a systemd scope, and \(missing); or release the app as an image (its containers take the limits)")
        }
        return accepted
    }
}

extension IntakePolicy {
    /// The policy of a daemon's configuration: who may submit (users and groups by name or
    /// number; by default the daemon's own user and group, and root) and where apps may live
    /// (symlinks resolved). `unknown` is told each user or group name that does not exist.
    public init(config: DaemonConfig, unknown: (String) -> Void = { _ in }) {
        var users: Set<uid_t> = [0, getuid(), geteuid()]
        var groups: Set<gid_t> = [getgid(), getegid()]
        if let names = config.allowUsers {
            users = [0]
            for name in names {
                if let uid = uid_t(name) { users.insert(uid) }
                else if let pw = UserDatabase.user(named: name) { users.insert(pw.uid) }
                else { unknown("allow-users: no such user \(name)") }
            }
        }
        if let names = config.allowGroups {
            groups = []
            for name in names {
                if let gid = gid_t(name) { groups.insert(gid) }
                else if let gid = UserDatabase.groupID(named: name) { groups.insert(gid) }
                else { unknown("allow-groups: no such group \(name)") }
            }
        }
        self.init(allowedUsers: users, allowedGroups: groups, appRoots: config.appRoots.map { RequestIntake.realPath($0) ?? $0 })
    }
}
