import ArgumentParser
import FoundationEssentials
import Glibc
import ReleaseContainers
import ReleaseIntake
import ReleaseKit
import ReleasePlugins
import ReleaseSupport
import SystemPackage

/// `releasectl plan`: what a release would do, without running anything.
///
/// It reads the app directory exactly as the daemon will (release.toml, the Procfile, the
/// preset) and applies the same gates, so what it prints is what a `submit` of the same
/// request would run. Nothing is spooled and no task runs. Exits 2 when the daemon would
/// reject the request, 1 when a task that would run is already known to fail (no command for
/// it, notify without a URL: marked FAIL, `"willFail": true`), else 0.
struct Plan: RunnableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show what a release would run, and why, without running anything (exit 2 if it would be rejected, 1 if a task would fail).",
        discussion: """
            For each task: whether it will run, why (its gate variable and value, or "no command"), \
            the exact command and working directory, and its timeout; and the framework preset \
            detected in the app directory.
            """)

    @OptionGroup var spoolOptions: SpoolOptions
    @Option(name: .long, help: ArgumentHelp("The app.", valueName: "name")) var app: String
    @Option(name: .long, help: ArgumentHelp("The app directory (with --image: optional).", valueName: "dir")) var dir: String?
    @Option(name: .long, help: ArgumentHelp("An image release: its files are read from this image (as root: podman image mount).", valueName: "ref"))
    var image: String?
    @OptionGroup var phaseOptions: PhaseOptions
    @OptionGroup var envOptions: EnvOptions
    @OptionGroup var taskOptions: TaskOptions
    @Option(name: .long, help: ArgumentHelp("The daemon's configuration, for app-roots and the release time limit (default: /etc/releasectl/released.toml if readable).", valueName: "file"))
    var config: String?
    @Flag(name: .long, help: "Print {app, directory, preset, tasks: [{name, willRun, willFail, reason, gate, command, timeout, problem}]} as JSON.")
    var json = false
    @Flag(name: .long, help: "Also list the migrations each migration task would apply: runs the framework's status command in the app directory (it boots the app), as the app's user when run as root.")
    var pending = false

    func validate() throws {
        guard Syntax.isValidAppName(app) else { throw ValidationError("--app \(Masking.preview(app)) is not a valid app name") }
        if let dir, dir.isEmpty { throw ValidationError("--dir must not be empty") }
        guard dir != nil || image != nil else { throw ValidationError("give --dir, --image, or both") }
        if let image, !Syntax.isValidImageReference(image) { throw ValidationError("--image \(Masking.preview(image)) is not an image reference") }
        if pending, image != nil {
            throw ValidationError("--pending runs the framework's status command in an app directory; an image release's would need a container of the image: run it there (podman run --rm IMAGE bin/rails db:migrate:status)")
        }
    }

    /// The `--json` shape: the contract's fields, then extras (`workingDirectory`,
    /// `releaseTimeout`, `warnings`). Each task says `willFail`, with the reason in `problem`
    /// when it will; `preset` is null when none was detected. Members in this order, always.
    static func json(_ plan: ReleasePlan, releaseTimeout: String, masking: Masking, image: String? = nil,
                     privileges: ContainerPrivileges? = nil, pendingByTask: [String: [String]] = [:]) -> String {
        var w = PrettyJSONWriter()
        w.beginObject()
        w.key("app"); w.string(plan.app)
        w.key("directory"); w.string(plan.directory)
        w.key("phase"); w.string(plan.phase.rawValue)
        if let image { w.key("image"); w.string(image) }
        w.key("preset"); w.string(plan.preset)
        w.key("tasks")
        w.beginArray()
        for step in plan.steps {
            w.element()
            w.beginObject()
            w.key("name"); w.string(step.name)
            w.key("willRun"); w.bool(step.willRun)
            w.key("willFail"); w.bool(step.willRun && step.problem != nil)
            w.key("reason"); w.string(step.reason)
            w.key("firstDeployOnly"); w.bool(step.firstDeployOnly)
            w.key("gate")
            w.beginObject()
            w.key("variable"); w.string(step.gate.variable)
            if let value = step.gate.value { w.key("value"); w.string(value) }
            w.endObject()
            w.key("command")
            if let command = step.command {
                w.beginArray()
                for argument in command.arguments { w.element(); w.string(masking.apply(argument)) }
                w.endArray()
            } else {
                w.null()
            }
            w.key("timeout"); w.string(step.timeout.map(DurationParser.format))
            if !step.limits.isEmpty {
                // {"memory": {"value": 1073741824, "from": "release.toml [limits]"}, "cpus": …, "pids": …}
                w.key("limits")
                w.beginObject()
                for key in ResourceLimits.keys {
                    let value: Double? = switch key {
                    case "memory": step.limits.memoryBytes.map(Double.init)
                    case "cpus": step.limits.cpus
                    default: step.limits.pids.map(Double.init)
                    }
                    guard let value else { continue }
                    w.key(key)
                    w.beginObject()
                    w.key("value"); w.double(value)
                    w.key("from"); w.string(step.limitSources[key])
                    w.endObject()
                }
                w.endObject()
            }
            if !step.lock.isEmpty {
                w.key("locks")
                w.beginObject()
                if let t = step.lock.lockTimeout { w.key("lockTimeout"); w.string(DurationParser.format(t)) }
                if let t = step.lock.statementTimeout { w.key("statementTimeout"); w.string(DurationParser.format(t)) }
                if let n = step.lock.lockRetries { w.key("lockRetries"); w.int(n) }
                w.key("pgOptions"); w.string(step.pgOptions.map(masking.apply))
                w.key("notes")
                w.beginArray()
                for note in step.lockNotes { w.element(); w.string(note) }
                w.endArray()
                w.endObject()
            }
            if let pending = pendingByTask[step.name] {
                w.key("pending")
                w.beginArray()
                for m in pending { w.element(); w.string(m) }
                w.endArray()
            }
            if let problem = step.problem { w.key("problem"); w.string(masking.apply(problem)) }
            w.endObject()
        }
        w.endArray()
        w.key("workingDirectory"); w.string(plan.directory)
        w.key("releaseTimeout"); w.string(releaseTimeout)
        if let privileges {
            // What the image release's containers may do (released.toml's [apps.<name>]).
            w.key("container")
            w.beginObject()
            w.key("noNewPrivileges"); w.bool(privileges.noNewPrivileges)
            w.key("capabilities")
            w.beginArray()
            for capability in privileges.capabilities { w.element(); w.string(capability) }
            w.endArray()
            w.key("readOnlyRoot"); w.bool(privileges.readOnlyRoot)
            w.endObject()
        }
        w.key("warnings")
        w.beginArray()
        for warning in plan.warnings { w.element(); w.string(warning) }
        w.endArray()
        w.endObject()
        return w.text
    }

    func execute() async throws {
        let env = try envOptions.resolve()
        let tasks = try taskOptions.resolve(known: Registry.tasks.map { $0.name })
        let directory = dir.map { FilePath($0).absolute().string }
        let daemonConfig: DaemonConfig
        do { daemonConfig = try DaemonConfig.load(path: config) } catch {
            // Only an explicit --config is an error; an unreadable default file is skipped.
            if config != nil { throw CLIError.usage("--config \(error)") }
            daemonConfig = DaemonConfig()
        }
        let masking = Masking(env: env)
        let phase = try phaseOptions.resolve()
        var plan: ReleasePlan
        let request = ReleaseRequest(id: ReleaseID.generate(), app: app, release: "plan", directory: directory, image: image,
                                     env: env, tasks: tasks, phase: phase)
        do throws(RejectReason) {
            // The daemon's own intake (an image is read as it will be: mounted, nothing of it
            // run), by this user; limits on the host are noted below rather than refused.
            let environment = ProcessInfo.processInfo.environment.map { "\($0.key)=\($0.value)" }
            let settings = IntakePipeline.Settings(
                config: daemonConfig, policy: IntakePolicy(config: daemonConfig), registry: Registry.tasks,
                engine: ContainerEngine(executable: daemonConfig.containerEngine, environment: environment), credentials: nil,
                hostLimitsMissing: nil)
            let accepted = try IntakePipeline.accept(request, settings)
            plan = accepted.plan
            if plan.hasFirstDeployTasks {
                // What this host's records say (a cluster's database may know of deploys elsewhere).
                plan.settleFirstDeploy(DeployHistory(spoolOptions.resolved.finishedRecords())
                    .firstDeploy(app: app, key: ReleaseRequest.defaultDeployKey(app: app, release: request.release), tasks: plan.firstDeployTasks))
            }
            if let image, accepted.image == nil {
                Output.error("the engine does not have \(image) yet: planned without its files (release.toml, Procfile, preset) until it is pulled")
            }
        } catch {
            throw CLIError(2, "the release would be rejected: \(masking.apply(error.message))")
        }
        let releaseTimeout = DurationParser.format(daemonConfig.releaseTimeout)
        let privileges = image == nil ? nil : daemonConfig.settings(for: app).privileges
        var pendingByTask: [String: [String]] = [:]
        if pending, let directory {
            pendingByTask = try Self.pendingMigrations(plan, request: request, directory: directory, config: daemonConfig,
                                                       spool: spoolOptions.resolved, masking: masking)
        }
        if json {
            Output.line(Self.json(plan, releaseTimeout: releaseTimeout, masking: masking, image: image, privileges: privileges,
                                  pendingByTask: pendingByTask))
        } else {
            Output.out(Self.text(plan, releaseTimeout: releaseTimeout, masking: masking, user: Self.user(of: app, in: daemonConfig),
                                 image: image, container: privileges?.describe(app: app), pendingByTask: pendingByTask))
        }
        // A task that would run and is already known to fail: the release would fail (exit 1).
        let failing = plan.steps.filter { $0.willRun && $0.problem != nil }.map(\.name)
        if !failing.isEmpty {
            throw CLIError(1, "the release would fail: \(failing.joined(separator: ", ")) cannot succeed (marked FAIL)")
        }
    }

    /// The plan for people: a header, then one block per task.
    ///
    /// ```
    /// shop in /srv/apps/shop/v42
    ///   preset:            rails
    ///   working directory: /srv/apps/shop/v42
    ///   release limit:     1h (per-task timeouts below)
    ///
    ///   run   procfile     on by default; command from the Procfile release: line
    ///                      $ /bin/sh -c 'bash ./release-tasks.sh'
    ///   skip  migrate      left to the Procfile release: line
    /// ```
    /// `notes`: an extra line for a task that runs (notify: where it posts).
    /// `container`: what an image release's containers may do, in words.
    static func text(_ plan: ReleasePlan, releaseTimeout: String, masking: Masking, user: String? = nil, image: String? = nil,
                     container: String? = nil, pendingByTask: [String: [String]] = [:]) -> String {
        let pad = String(repeating: " ", count: 8 + max(13, (plan.steps.map(\.name.count).max() ?? 0) + 2))
        var out = "\(plan.app) in " + (image.map { "image \($0)" } ?? plan.directory) + "\n"
        out += "  phase:             \(plan.phase.rawValue) (\(plan.phase.moment))\n"
        out += "  preset:            \(plan.preset ?? "none detected")\n"
        out += "  working directory: \(plan.directory)" + (image == nil ? "" : " (in the container)") + "\n"
        if let user { out += "  runs as:           \(user)\n" }
        if let container { out += "  container:         \(container)\n" }
        out += "  release limit:     \(releaseTimeout)\n\n"
        let width = max(13, (plan.steps.map(\.name.count).max() ?? 0) + 2)
        for step in plan.steps {
            let mark = step.willRun ? (step.problem == nil ? "run " : "FAIL") : "skip"
            out += "  \(mark)  \(step.name.padding(width))\(step.reason)\n"
            if let command = step.command {
                // The exact argv the daemon will execute, quoted so it can be pasted into a shell.
                out += pad + "$ " + Command.argv(command.arguments.map(masking.apply)).description + "\n"
            }
            if step.willRun, let note = step.note {
                out += pad + masking.apply(note) + "\n"
            }
            if step.willRun, let timeout = step.timeout {
                out += pad + "timeout \(DurationParser.format(timeout))\n"
            }
            if step.willRun, !step.lockNotes.isEmpty {
                out += pad + "locks: " + step.lockNotes.joined(separator: "; ") + "\n"
                if let options = step.pgOptions { out += pad + "PGOPTIONS=" + masking.apply(options) + "\n" }
            }
            if let pending = pendingByTask[step.name] {
                out += pad + (pending.isEmpty ? "pending: none" : "pending: " + pending.joined(separator: ", ")) + "\n"
            }
            if step.willRun, step.skipWhenNonePending, step.statusPreset != nil {
                out += pad + "skipped when \(MigrationStatus.command(for: step.statusPreset!)) lists nothing pending\n"
            }
            if step.willRun, !step.limits.isEmpty {
                let each = ResourceLimits.keys.compactMap { key in step.limits.describe(key).map { "\($0) (\(step.limitSources[key]!))" } }
                out += pad + "limits: " + each.joined(separator: ", ") + "\n"
            }
            if let problem = step.problem {
                out += pad + "will fail: \(problem)\n"
            }
        }
        if image == nil, !plan.limitedSteps.isEmpty {
            out += "note: limits of tasks on the host are enforced by a systemd scope of their own: released must run under systemd, else the release is rejected\n"
        }
        for w in plan.warnings { out += "warning: \(w)\n" }
        return out
    }
}

extension Plan {
    /// `--pending`: each migration task's pending migrations, by its framework's status command
    /// run in the app directory with the task's environment — as the app's user when this runs
    /// as root (never as root itself), else as this user. Bounded to two minutes.
    static func pendingMigrations(_ plan: ReleasePlan, request: ReleaseRequest, directory: String, config: DaemonConfig,
                                  spool: Spool, masking: Masking) throws(CLIError) -> [String: [String]] {
        var result: [String: [String]] = [:]
        for step in plan.steps where step.isMigration && step.willRun && step.command != nil {
            guard let preset = step.statusPreset else {
                Output.error("--pending: \(step.name) has no framework preset whose status command lists migrations; skipped")
                continue
            }
            // The app's code runs as its tasks would — the app's user — and never as anyone
            // with more: as root, switched to that user (root itself only where the
            // configuration allows root tasks); as another user, only when that is the app's.
            var prefix: [String] = []
            var home = UserDatabase.user(id: getuid())?.home ?? "/"
            let appUser = (config.apps[request.app]?.user ?? config.defaultUser).flatMap(UserDatabase.user(named:))
            if let name = config.apps[request.app]?.user ?? config.defaultUser, appUser == nil {
                throw CLIError(2, "--pending: no such user \(name) (the user \(request.app)'s tasks run as)")
            }
            if geteuid() == 0 {
                if let user = appUser {
                    prefix = ["/usr/bin/setpriv", "--reuid=\(user.uid)", "--regid=\(user.gid)", "--init-groups", "--"]
                    home = user.home
                } else if !config.allowRootTasks {
                    throw CLIError(2, "--pending boots the app: as root it runs as the app's user, and \(request.app) has none (released.toml [apps.\(request.app)] user, or default-user); or run plan --pending as the user its tasks run as")
                }
            } else {
                // Without a user of its own, the app's tasks run as the daemon's user: the
                // spool's owner.
                let taskUID = appUser?.uid ?? (try? Syscalls.statPath(spool.root))?.st_uid
                guard taskUID == getuid() else {
                    throw CLIError(2, "--pending boots the app, which runs its code as whoever runs it: run it as the user \(request.app)'s tasks run as (\(appUser?.name ?? "the daemon's user")), or as root")
                }
            }
            var environment = TaskEnvironment.make(request: request, task: step.name, home: home, directory: directory)
            if let options = step.pgOptions { environment["PGOPTIONS"] = options }
            let command = MigrationStatus.command(for: preset)
            let (output, status) = try run(prefix + command.arguments, environment: environment, directory: directory)
            // Only a whole list from a command that ended as it should (see ReleaseRunner).
            guard let output else { throw CLIError(1, "--pending: \(command) printed more than 1 MiB; not read") }
            guard status == 0 || MigrationStatus.failureIsAnswer(outcome: status, output: output, preset: preset),
                  let report = MigrationStatus.parse(output, preset: preset) else {
                throw CLIError(1, "--pending: \(command) (exit status \(status)) listed no migrations that can be read:\n" + masking.apply(String(output.suffix(2000))))
            }
            result[step.name] = report.pending
        }
        return result
    }

    /// Runs `argv` (its first element looked up in the environment's PATH) in a session of
    /// its own, its stdout and stderr read together (nil past 1 MiB), for at most two minutes
    /// in all: then, and when it ends, whatever is left of its session is killed.
    static func run(_ argv: [String], environment: [String: String], directory: String) throws(CLIError) -> (String?, Int32) {
        guard let executable = argv[0].hasPrefix("/") ? argv[0] : ExecutableLookup.find(argv[0], path: environment["PATH"] ?? TaskEnvironment.defaultPath)
        else { throw CLIError(1, "--pending: \(argv[0]) is not on the task's PATH") }
        let child: ChildProcess
        do {
            child = try Spawn.start(FilePath(executable), argv: argv, environment: environment.map { "\($0.key)=\($0.value)" },
                                    directory: FilePath(directory))
        } catch {
            throw CLIError(1, "--pending: cannot start \(argv[0]): \(error)")
        }
        let limit = 1 << 20
        var output: [UInt8] = []
        let deadline = ContinuousClock.now + .seconds(120)
        var buffer = [UInt8](repeating: 0, count: 65536)
        var open = child.output != nil
        var exited = child.pidfd < 0  // (without a pidfd: until the output closes)
        var exitedAt: ContinuousClock.Instant?
        func timedOut() -> CLIError {
            kill(-child.pid, SIGKILL)
            _ = child.wait()
            return CLIError(1, "--pending: \(argv.joined(separator: " ")) did not finish within 2 minutes; ended")
        }
        // Until the output is closed and the process has ended (its pidfd readable).
        while open || !exited {
            var fds = [pollfd(fd: open ? child.output! : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: exited ? -1 : child.pidfd, events: Int16(POLLIN), revents: 0)]
            let left = (deadline - ContinuousClock.now).milliseconds
            guard left > 0 else { throw timedOut() }
            if poll(&fds, 2, Int32(min(left, 1000))) < 0, errno != EINTR { throw timedOut() }
            if fds[1].revents != 0 { exited = true; exitedAt = .now }
            // Output still held open by something it left behind: a second more, then no more.
            if let exitedAt, ContinuousClock.now - exitedAt > .seconds(1) { break }
            if open, fds[0].revents != 0 {
                let n = read(child.output!, &buffer, buffer.count)
                if n <= 0 { open = false } else if output.count <= limit { output += buffer.prefix(n) }
            }
        }
        if let fd = child.output { close(fd) }
        let status = child.wait().code
        kill(-child.pid, SIGKILL)  // what it left behind in its session
        return (output.count > limit ? nil : String(decoding: output, as: UTF8.self), status)
    }

    /// Whom the app's tasks run as, by the daemon's configuration, and who else runs as that
    /// user: apps that share a user are one trust domain (each one's tasks can read the
    /// others' processes, their environments — secrets included — and files).
    static func user(of app: String, in config: DaemonConfig) -> String? {
        let own = config.apps[app]?.user
        guard let user = own ?? config.defaultUser else { return nil }
        var sharing = config.apps.filter { $0.key != app && $0.value.user == user }.keys.sorted()
        if user == config.defaultUser {
            sharing.append(own == nil ? "every other app without a user of its own (default-user)" : "every app without a user of its own (default-user)")
        }
        guard !sharing.isEmpty else { return user }
        return "\(user), shared with \(sharing.joined(separator: ", ")): one trust domain (their tasks can read each other's processes, secrets and files)"
    }
}

extension String {
    func padding(_ width: Int) -> String {
        count >= width ? self + " " : self + String(repeating: " ", count: width - count)
    }
}
