import FoundationEssentials
import Glibc
import Logging
import ReleaseContainers
import ReleaseKit
import SystemPackage

/// A request read and validated in full: what it asks for, what will run, and as whom — and
/// what all that was read from, so that it need not be read again while nothing changed.
struct Admission: Sendable {
    let request: ReleaseRequest
    /// The plan, and the app's files it was made from.
    let validation: RequestIntake.Validation
    let identity: TaskIdentity?
    /// The request's file in `incoming/`.
    let file: FileIdentity
    /// For an image release: the image as the engine had it (nil while it is not there yet:
    /// it is pulled, and the release planned again from it, when the release starts).
    var image: ContainerEngine.Image? = nil
    /// For an image release: where its tasks run in the container.
    var workingDirectory: String? = nil

    var plan: ReleasePlan { validation.plan }
}

/// Takes files found in `incoming/` in, by the configuration of the moment: reads and checks
/// each (`RequestIntake`: the file, its owner, its schema), then validates what it asks for in
/// full — the directory, the app's files read as the app's user, the gates and tasks — and
/// builds the record of a file that cannot be accepted. Holds no state of its own beyond the
/// configuration: the scheduler decides what to do with each answer.
struct Intake: Sendable {
    let config: DaemonConfig
    let policy: IntakePolicy
    let registry: [any ReleaseTask.Type]
    /// The engine image releases run through, with the daemon's environment.
    let engine: ContainerEngine

    init(config: DaemonConfig, registry: [any ReleaseTask.Type], logger: Logger, environment: [String]) {
        self.config = config
        self.registry = registry
        policy = Self.policy(for: config, logger: logger)
        engine = ContainerEngine(executable: config.containerEngine, environment: environment)
    }

    /// Who may submit (users and groups by name or number) and where apps may live.
    static func policy(for config: DaemonConfig, logger: Logger) -> IntakePolicy {
        var users: Set<uid_t> = [0, getuid(), geteuid()]
        var groups: Set<gid_t> = [getgid(), getegid()]
        if let names = config.allowUsers {
            users = [0]
            for name in names {
                if let uid = uid_t(name) { users.insert(uid) }
                else if let pw = UserDatabase.user(named: name) { users.insert(pw.uid) }
                else { logger.warning("allow-users: no such user \(name)") }
            }
        }
        if let names = config.allowGroups {
            groups = []
            for name in names {
                if let gid = gid_t(name) { groups.insert(gid) }
                else if let gid = UserDatabase.groupID(named: name) { groups.insert(gid) }
                else { logger.warning("allow-groups: no such group \(name)") }
            }
        }
        let roots = config.appRoots.map { RequestIntake.realPath($0) ?? $0 }
        return IntakePolicy(allowedUsers: users, allowedGroups: groups, appRoots: roots)
    }

    /// The serial key of an app: its releases run one at a time, and with those of every app
    /// of the same key.
    func serialKey(for app: String) -> String { config.apps[app]?.serialKey ?? app }

    /// A request's place in the queue: its serial key and deploy key.
    func entry(for request: ReleaseRequest) -> ReleaseQueue.Entry {
        ReleaseQueue.Entry(id: request.id, serialKey: serialKey(for: request.app), app: request.app, release: request.release,
                           deployKey: request.deployKeyOrDefault)
    }

    /// What intake made of one file.
    enum Evaluation: Sendable {
        /// The file is gone (moved by an earlier event).
        case gone
        /// It cannot be read as a request.
        case unreadable(RequestIntake.Rejection)
        /// It is a request, but one that cannot be accepted.
        case invalid(RequestIntake.RequestFile, RejectReason)
        /// It is accepted.
        case admitted(RequestIntake.RequestFile, Admission)
    }

    /// Reads `incoming/<name>` and validates what it asks for: the whole of intake but what
    /// depends on the scheduler's state (duplicates, cancels). No event-loop state is
    /// touched, so it runs on a thread of its own.
    func evaluate(_ name: SpoolName, spool: Spool) -> Evaluation {
        switch read(name, spool: spool) {
        case .failure(let rejection):
            if rejection.reason.code == .unreadable, !spool.exists(.incoming, name) { return .gone }
            return .unreadable(rejection)
        case .success(let file):
            switch admit(file) {
            case .failure(let reason): return .invalid(file, reason)
            case .success(let admission): return .admitted(file, admission)
            }
        }
    }

    /// Reads and checks `incoming/<name>`.
    func read(_ name: SpoolName, spool: Spool) -> Result<RequestIntake.RequestFile, RequestIntake.Rejection> {
        Result { () throws(RequestIntake.Rejection) in try RequestIntake.read(name, spool: spool, policy: policy) }
    }

    /// Validates what a request asks for, in full: its app's user, its directory and the
    /// app's files (read as that user), its gates and tasks.
    func admit(_ file: RequestIntake.RequestFile) -> Result<Admission, RejectReason> {
        Result { () throws(RejectReason) -> Admission in
            let request = file.request
            let identity = try TaskIdentity.resolve(app: request.app, config: config)
            guard request.image != nil else {
                guard let directory = request.directory else { throw RejectReason(.schema, "the request has no \"directory\"") }
                var validation = try RequestIntake.validate(app: request.app, directory: directory, env: request.env,
                                                            tasks: request.tasks, policy: policy, registry: registry,
                                                            credentials: identity?.credentials)
                try applyLimits(&validation, app: request.app, host: true)
                return Admission(request: request, validation: validation, identity: identity, file: file.identity)
            }
            return try admitImage(request, identity: identity, file: file.identity)
        }
    }

    /// An image release: its app files read from the image (see `ImageIntake`).
    func admitImage(_ request: ReleaseRequest, identity: TaskIdentity?, file: FileIdentity) throws(RejectReason) -> Admission {
        var result = try ImageIntake.validate(request, engine: engine, policy: policy, registry: registry, credentials: identity?.credentials)
        try applyLimits(&result.validation, app: request.app, host: false)
        return Admission(request: request, validation: result.validation, identity: identity, file: file, image: result.image,
                         workingDirectory: result.workingDirectory)
    }

    /// Gives the plan's tasks their limits (release.toml's within the operator's; see
    /// `ReleasePlan.applyLimits`). A host task gets its limits from a systemd scope: on a
    /// daemon not under systemd, a host task with limits rejects the release — a limit is
    /// never silently dropped.
    func applyLimits(_ validation: inout RequestIntake.Validation, app: String, host: Bool) throws(RejectReason) {
        try validation.plan.applyLimits(validation.config, policy: config.limitPolicy(for: app))
        guard host, let missing = ServiceManager.scopesMissing, let step = validation.plan.limitedSteps.first else { return }
        let what = ResourceLimits.keys.compactMap { key in step.limits.describe(key).map { "\($0) from \(step.limitSources[key]!)" } }
        throw RejectReason(.limits, "\(step.name) has limits (\(what.joined(separator: ", "))), which a task on the host gets only from a systemd scope, and \(missing); or release the app as an image (its containers take the limits)")
    }

    /// Whether an admission still holds: its request file and every app file it was made
    /// from are what they were, and its app's user is the same. Then reading and validating
    /// again would give the same admission.
    func stillHolds(_ admission: Admission, spool: Spool) -> Bool {
        let request = admission.request
        guard let st = spool.fileStatus(.incoming, SpoolName("\(request.id).json")), FileIdentity(st) == admission.file,
              (try? TaskIdentity.resolve(app: request.app, config: config)) == admission.identity else { return false }
        // (An image release's image is looked at again when it starts.)
        guard let directory = request.directory else { return true }
        return RequestIntake.isUnchanged(admission.validation, directory: directory, credentials: admission.identity?.credentials)
    }

    /// The record of a file that cannot be accepted. What could be read of a broken file is
    /// kept only if it is valid as such; the reason is masked with the request's secrets
    /// when the request could be read.
    static func rejection(stem: String, reason: RejectReason, partial: ReleaseRequest.Partial, request: ReleaseRequest?,
                          now: Date = Date()) -> ReleaseRecord {
        let partialApp = partial.app.flatMap { Syntax.isValidAppName($0) ? $0 : nil }
        let partialRelease = partial.release.flatMap { Syntax.isValidReleaseLabel($0) && $0.utf8.count <= 512 ? $0 : nil }
        let message = request.map { Masking.apply(reason.message, secretsOf: $0.env) } ?? reason.message
        var record = ReleaseRecord(id: stem, app: request?.app ?? partialApp, release: request?.release ?? partialRelease,
                                   state: .rejected, reason: message, directory: request?.directory,
                                   submittedAt: request?.submittedAt ?? partial.submittedAt,
                                   retryOf: request?.retryOf?.rawValue ?? partial.retryOf.flatMap { ReleaseID($0)?.rawValue })
        record.reasonCode = reason.code.rawValue
        record.finishedAt = now
        return record
    }

    /// A file name made safe to use as a record id: `[A-Za-z0-9._-]`, no leading dot, at most
    /// 100 characters, and never a name a record has (`<stem>.record.json`).
    static func safeStem(_ name: String) -> String {
        var stem = name.hasSuffix(".json") ? String(name.dropLast(5)) : name
        stem = String(stem.unicodeScalars.map { c -> Character in
            (c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "-" || c == "_" || c == ".")) ? Character(c) : "_"
        }.prefix(100))
        while stem.hasPrefix(".") { stem.removeFirst() }
        if stem.hasSuffix(".record") { stem = String(stem.dropLast(".record".count)) + "_record" }
        return stem.isEmpty ? "unnamed" : stem
    }
}
