import Glibc
import ReleaseKit
import ReleaseSupport
import SystemPackage

/// What a request asks of an app directory or an image's working directory, validated in
/// full: the directory (absolute, inside the app roots), the app's files (release.toml, the
/// Procfile, the preset's files) read as the app's user, the gates and the tasks — a plan, and
/// what it was made from.
public enum AppValidation {
    /// Checks the request's app directory: absolute, no `..`, no control characters, an
    /// existing directory, inside an allowed app root once symlinks are resolved.
    public static func checkDirectory(_ directory: String, policy: IntakePolicy) throws(RejectReason) {
        func fail(_ message: String) -> RejectReason { RejectReason(.directory, message) }
        guard directory.hasPrefix("/") else {
            throw fail("\"directory\" \(Masking.preview(directory)) is not an absolute path")
        }
        guard !Syntax.hasControlCharacters(directory), !directory.utf8.contains(0) else {
            throw fail("\"directory\" \(Masking.preview(directory)) contains control characters")
        }
        guard !directory.split(separator: "/").contains("..") else {
            throw fail("\"directory\" \(Masking.preview(directory)) contains '..'")
        }
        let st: stat
        do { st = try Syscalls.statPath(FilePath(directory)) } catch {
            throw fail("the directory \(directory) does not exist or cannot be read (\(error))")
        }
        guard st.st_mode & S_IFMT == S_IFDIR else {
            throw fail("\(directory) is not a directory")
        }
        guard !policy.appRoots.isEmpty else { return }
        guard let resolved = RequestIntake.realPath(directory) else { throw fail("cannot resolve \(directory)") }
        let inside = policy.appRoots.contains { root in
            resolved == root || resolved.hasPrefix(root.hasSuffix("/") ? root : root + "/")
        }
        guard inside else {
            throw fail("\(directory) is outside the allowed app roots (\(policy.appRoots.joined(separator: ", ")))")
        }
    }

    /// A request's plan, and what it was made from.
    public struct Validation: Sendable {
        public var plan: ReleasePlan
        /// What the plan depended on in the app directory (see `AppDirectory.fingerprint`).
        public var fingerprint: [String: FileIdentity?]
        /// release.toml's `workdir` (for an image release).
        public var workdir: String?
        /// release.toml's `[limits]` and each task's, by task name (see `ReleasePlan.Step.limits`).
        public var config: AppConfig = AppConfig()

        public init(plan: ReleasePlan, fingerprint: [String: FileIdentity?], config: AppConfig = AppConfig()) {
            self.plan = plan
            self.fingerprint = fingerprint
            self.workdir = config.workdir
            self.config = config
        }
    }

    /// Validates what a request asks for, in full, as intake does: the directory, then the
    /// app's files (release.toml, Procfile, preset files), then the gates and tasks. With
    /// `credentials` (a root daemon releasing an app with a user of its own) the directory and
    /// the app's files are looked at as that user, never with more privilege than its tasks
    /// will have.
    public static func validate(app: String, directory: String, env: [String: String], tasks: [String]?,
                                phase: ReleasePhase = .default, policy: IntakePolicy,
                                registry: [any ReleaseTask.Type], credentials: FileCredentials?) throws(RejectReason) -> Validation {
        try asUser(credentials) { () throws(RejectReason) -> Validation in
            try checkDirectory(directory, policy: policy)
            let files = try AppDirectory.open(directory)
            let inspection = try AppInspection.inspect(files, path: TaskEnvironment.path(for: env), registry: registry)
            let plan = try ReleasePlan.make(app: app, directory: directory, env: env, tasks: tasks, phase: phase, registry: registry,
                                            inspection: inspection)
            return Validation(plan: plan, fingerprint: files.fingerprint, config: inspection.config)
        }
    }

    /// Plans a release from its app's files as `files` holds them (an app directory, or an
    /// image's working directory), release.toml from `configFrom` when it has one, the gates
    /// and tasks from the request. The fingerprint is of what the app directory parts hold.
    public static func validate(app: String, files: AppDirectory, configFrom: AppDirectory?, env: [String: String], tasks: [String]?,
                                phase: ReleasePhase = .default, registry: [any ReleaseTask.Type]) throws(RejectReason) -> Validation {
        let inspection = try AppInspection.inspect(files, configFrom: configFrom, path: TaskEnvironment.path(for: env), registry: registry)
        let plan = try ReleasePlan.make(app: app, directory: files.shownPath, env: env, tasks: tasks, phase: phase, registry: registry,
                                        inspection: inspection)
        return Validation(plan: plan, fingerprint: configFrom?.fingerprint ?? [:], config: inspection.config)
    }



    /// Whether the app directory still holds exactly what `validation` read (looked at as
    /// `credentials`): then validating again would give the same plan, and need not be done.
    public static func isUnchanged(_ validation: Validation, directory: String, credentials: FileCredentials?) -> Bool {
        (try? asUser(credentials) { () throws(RejectReason) -> Bool in
            try AppDirectory.open(directory).matches(validation.fingerprint)
        }) ?? false
    }

    /// Runs `body` with file access checked as `credentials` (nil: as this process).
    public static func asUser<T>(_ credentials: FileCredentials?, _ body: () throws(RejectReason) -> T) throws(RejectReason) -> T {
        guard let credentials else { return try body() }
        let work = { () -> Result<T, RejectReason> in Result { () throws(RejectReason) -> T in try body() } }
        guard let result = credentials.perform(work) else {
            throw RejectReason(.user, "cannot look at the app's files as uid \(credentials.uid): the daemon could not switch its file credentials (it needs CAP_SETUID and CAP_SETGID)")
        }
        return try result.get()
    }
}
