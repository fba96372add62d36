import FoundationEssentials
import Glibc
import Logging
import ReleaseContainers
import ReleaseIntake
import ReleaseKit
import SystemPackage

/// A request read and validated in full: what it asks for, what will run, and as whom — and
/// what all that was read from, so that it need not be read again while nothing changed.
struct Admission: Sendable {
    let request: ReleaseRequest
    /// The plan, the app's files it was made from, and for an image release the image.
    var accepted: IntakePipeline.Accepted
    let identity: TaskIdentity?
    /// The request's file in `incoming/`.
    let file: FileIdentity

    var validation: AppValidation.Validation { accepted.validation }
    var plan: ReleasePlan { accepted.plan }
    /// For an image release: the image as the engine had it (nil while it is not there yet).
    var image: ContainerEngine.Image? { accepted.image }
    /// For an image release: where its tasks run in the container.
    var workingDirectory: String? { accepted.workingDirectory }
}

/// Takes files found in `incoming/` in, by the configuration of the moment: reads and checks
/// each (`RequestIntake`: the file, its owner, its schema), then runs the one intake
/// (`IntakePipeline`) as the app's user, and builds the record of a file that cannot be
/// accepted. Holds no state of its own beyond the configuration: the scheduler decides what
/// to do with each answer.
struct Intake: Sendable {
    let config: DaemonConfig
    let policy: IntakePolicy
    let registry: [any ReleaseTask.Type]
    /// The engine image releases run through, with the daemon's environment.
    let engine: ContainerEngine

    init(config: DaemonConfig, registry: [any ReleaseTask.Type], logger: Logger, environment: [String]) {
        self.config = config
        self.registry = registry
        policy = IntakePolicy(config: config) { logger.warning("\($0)") }
        engine = ContainerEngine(executable: config.containerEngine, environment: environment, unmounts: ContainerEngine.pendingUnmounts,
                                 warn: { logger.warning("\($0)") })
    }

    /// The serial key of an app: its releases run one at a time, and with those of every app
    /// of the same key.
    func serialKey(for app: String) -> String { config.apps[app]?.serialKey ?? app }

    /// A request's place in the queue: its serial key and deploy key.
    func entry(for request: ReleaseRequest) -> ReleaseQueue.Entry {
        ReleaseQueue.Entry(id: request.id, serialKey: serialKey(for: request.app), app: request.app, release: request.release,
                           deployKey: request.deployKeyOrDefault, phase: request.phase, isRetry: request.retryOf != nil)
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

    /// Validates what a request asks for, in full: its app's user, then the one intake
    /// (`IntakePipeline`) as that user.
    func admit(_ file: RequestIntake.RequestFile) -> Result<Admission, RejectReason> {
        Result { () throws(RejectReason) -> Admission in
            let identity = try TaskIdentity.resolve(app: file.request.app, config: config)
            return try admit(file.request, identity: identity, file: file.identity)
        }
    }

    /// The one intake for `request`, as `identity`'s user.
    func admit(_ request: ReleaseRequest, identity: TaskIdentity?, file: FileIdentity) throws(RejectReason) -> Admission {
        let settings = IntakePipeline.Settings(config: config, policy: policy, registry: registry, engine: engine,
                                               credentials: identity?.credentials, hostLimitsMissing: ServiceManager.scopesMissing)
        return Admission(request: request, accepted: try IntakePipeline.accept(request, settings), identity: identity, file: file)
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
        return AppValidation.isUnchanged(admission.validation, directory: directory, credentials: admission.identity?.credentials)
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
