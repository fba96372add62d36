import CLinuxSyscalls
import Glibc
import ReleaseContainers
import ReleaseKit
import ReleaseSupport
import Synchronization
import SystemPackage

/// Runs an image release's task commands in a container of its image, through the container
/// engine: one container for a run of tasks that share the same limits (a release's tasks
/// usually all do), each task still a task of its own — its own output, exit status, time
/// limit, stop, figures and OOM reason. `TaskInit` (`releasectl-init`, the container's
/// entrypoint) runs the tasks one after another as this executor's messages on its stdin say,
/// and reports each one's end and what it used, marked by a key only it and this executor
/// know (see `ContainerSession`).
///
/// The container is `run --rm`, named `releasectl-<id>-<task>` after its first task,
/// labelled with the release, that task and the spool, in the container's working directory,
/// with the app's network, volumes and user from released.toml (the user: `container-user`,
/// else the app's host `user`, else the image's own), and the least privilege
/// (`ContainerPrivileges`: no new privileges, no capabilities, a read-only root, unless the
/// operator relaxed them for the app). No value of a task's is ever in the argv or the
/// environment of the engine (or any other process on the host). Nothing is left behind: the
/// container ends when its run of tasks does (`finish`, or a task that had to be stopped), by
/// the process guard if the daemon dies, and at start-up otherwise.
final class ContainerExecutor: TaskExecutor {
    let engine: ContainerEngine
    /// The image to run: the id of the build the release was planned from, else its reference.
    let image: String
    let workingDirectory: String
    let settings: DaemonConfig.AppSettings
    /// The app's host user, when it has one: the container's user unless `container-user` says
    /// otherwise, so an app's container never runs with more than the app's own ids.
    let identity: TaskIdentity?
    let spool: Spool
    let processGuard: ProcessGuard?
    let killGrace: Duration
    /// The container's entrypoint, which runs its tasks.
    let initProgram: TaskInit
    /// The container the next task may run in (tasks of a release run one after another).
    private let open = Mutex<ContainerSession?>(nil)

    init(engine: ContainerEngine, image: String, workingDirectory: String, settings: DaemonConfig.AppSettings, identity: TaskIdentity?,
         spool: Spool, processGuard: ProcessGuard?, killGrace: Duration, initProgram: TaskInit) {
        self.initProgram = initProgram
        self.engine = engine
        self.image = image
        self.workingDirectory = workingDirectory
        self.settings = settings
        self.identity = identity
        self.spool = spool
        self.processGuard = processGuard
        self.killGrace = killGrace
    }

    /// The name of a container, after the first task it runs.
    static func containerName(release: String, task: String) -> String { "releasectl-\(release)-\(task)" }

    func run(_ command: Command, for context: TaskContext, log: ReleaseLog, control: ReleaseControl) async -> TaskOutcome {
        // Past the release's fence (a cluster lease it may no longer hold) nothing starts.
        if let reason = control.checkFence() { return TaskOutcome(ending: .stopped(reason)) }
        var session = open.withLock { s in defer { s = nil }; return s }
        if let current = session, current.limits != context.limits || !current.isRunning {
            await current.close()
            session = nil
        }
        if session == nil {
            switch await start(for: context) {
            case .success(let started): session = started
            case .failure(let notStarted): return notStarted.outcome
            }
        }
        let (outcome, reusable) = await session!.run(command, context: context, log: log, control: control)
        if reusable {
            open.withLock { $0 = session }
        } else {
            await session!.close()
        }
        return outcome
    }

    func finish() async {
        if let session = open.withLock({ s in defer { s = nil }; return s }) { await session.close() }
    }

    /// A container that could not be started, and why.
    private struct NotStarted: Error {
        var why: String
        var outcome: TaskOutcome { TaskOutcome(ending: .notStarted("could not start: " + why)) }
    }

    /// Starts the container a run of tasks with `context`'s limits goes in, named after its
    /// first task, `context.task`.
    private func start(for context: TaskContext) async -> Result<ContainerSession, NotStarted> {
        let release = context.request.id.rawValue
        let name = Self.containerName(release: release, task: context.task)
        guard let program = ExecutableLookup.find(engine.executable, path: Self.path(of: engine.environment)) ?? absolute(engine.executable) else {
            return .failure(NotStarted(why: "the container engine \(engine.executable) is not installed (container-engine in released.toml)"))
        }
        var arguments = ["run", "--rm", "--interactive", "--name", name,
                         "--label", "\(ContainerEngine.releaseLabel)=\(release)", "--label", "\(ContainerEngine.taskLabel)=\(context.task)",
                         "--label", "\(ContainerEngine.spoolLabel)=\(spool.root.string)",
                         "--workdir", workingDirectory, "--pull", "never",
                         // Only the init, and never an init of the engine's in front of it (it must be
                         // PID 1 to end what a task leaves); the output is not kept in a log file.
                         "--init=false", "--log-driver", "none"]
        arguments += Self.privilegeArguments(settings.privileges)
        if let network = settings.network { arguments += ["--network", network] }
        for volume in settings.volumes { arguments += ["--volume", volume] }
        if let user = settings.containerUser ?? identity.map({ "\($0.uid):\($0.gid)" }) { arguments += ["--user", user] }
        arguments += Self.limitArguments(context.limits)
        // The cgroup the container goes under: the OOM killer's count is read from it.
        let accounting = await ContainerAccounting.make(engine: engine, release: release, task: context.task)
        if let accounting { arguments += ["--cgroup-parent", accounting.cgroupParent] }
        arguments += initProgram.engineArguments
        arguments += ["--", image, context.task]
        let engineProcess: SpawnedProcess
        do throws(Errno) {
            engineProcess = SpawnedProcess(try Spawn.start(FilePath(program), argv: [engine.executable] + arguments, environment: engine.environment,
                                                           input: .pipe, output: .pipe, errors: .toOutput, group: .session))
        } catch {
            if let accounting { await BlockingCall.run { accounting.finish() } }
            return .failure(NotStarted(why: "cannot start the container engine: \(error)"))
        }
        let output = SessionOutput()
        let watched: ProcessMonitor.Watched
        do throws(Errno) {
            watched = try ProcessMonitor.shared.watch(pidfd: engineProcess.leader.pidfd, output: engineProcess.output) { output.take($0) }
        } catch {
            engineProcess.leader.send(SIGKILL)
            if let input = engineProcess.input { _ = close(input) }
            _ = await BlockingCall.run { engineProcess.reap() }
            await BlockingCall.run { self.engine.remove([name]) }
            if let accounting { await BlockingCall.run { accounting.finish() } }
            return .failure(NotStarted(why: "cannot watch the container engine's output: \(error)"))
        }
        output.watched = watched
        processGuard?.register(container: name, release: release)
        let session = ContainerSession(name: name, limits: context.limits, shared: settings.privileges.sharesContainers, engine: engine,
                                       process: engineProcess, watched: watched, output: output, accounting: accounting,
                                       processGuard: processGuard, killGrace: killGrace)
        return .success(session)
    }

    /// The engine's options for what the container may do (see `ContainerPrivileges`).
    static func privilegeArguments(_ privileges: ContainerPrivileges) -> [String] {
        var arguments = ["--cap-drop", "all"]
        for capability in privileges.capabilities { arguments += ["--cap-add", capability] }
        if privileges.noNewPrivileges { arguments += ["--security-opt", "no-new-privileges"] }
        if privileges.readOnlyRoot { arguments += ["--read-only"] }
        return arguments
    }

    /// The engine's options for a task's limits: memory (with as much swap: none beyond it),
    /// CPU share (as the exact quota per period: the engine's `--cpus` would round it),
    /// processes.
    static func limitArguments(_ limits: ResourceLimits) -> [String] {
        var arguments: [String] = []
        if let bytes = limits.memoryBytes { arguments += ["--memory", "\(bytes)b", "--memory-swap", "\(bytes)b"] }
        if let quota = limits.cpuQuotaMicros {
            arguments += ["--cpu-period", "\(ResourceLimits.cpuPeriodMicros)", "--cpu-quota", "\(quota)"]
        }
        if let pids = limits.pids { arguments += ["--pids-limit", "\(pids)"] }
        return arguments
    }

    private func absolute(_ program: String) -> String? { program.hasPrefix("/") ? program : nil }

    /// The PATH of an environment (`KEY=value`).
    static func path(of environment: [String]) -> String {
        environment.first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? TaskEnvironment.defaultPath
    }
}

/// One running container of a release and the tasks it runs, one at a time: each task's
/// command goes to its init as a message, its output into the release log as it comes, and
/// its end is the init's report (see `SessionOutput`). A deadline or a stop sends the task's
/// processes SIGTERM, then SIGKILL after the kill grace, through the init; a container whose
/// init does not answer is killed through the engine. The engine's own failures (exit 125–127
/// with its `Error: ` line: no such image, a bad option) are reported as such.
final class ContainerSession: Sendable {
    let name: String
    let limits: ResourceLimits
    /// Whether the container may take a next task (see `ContainerPrivileges.sharesContainers`).
    let shared: Bool
    private let engine: ContainerEngine
    private let process: SpawnedProcess
    private let watched: ProcessMonitor.Watched
    private let output: SessionOutput
    private let accounting: ContainerAccounting?
    private let processGuard: ProcessGuard?
    private let killGrace: Duration
    /// Writes the init's messages in order, on a thread of its own (a message may be larger
    /// than the pipe holds, and the engine reads as it can).
    private let writer = SerialQueue(idleLifetime: .seconds(2))
    private let ended = Mutex(false)

    init(name: String, limits: ResourceLimits, shared: Bool, engine: ContainerEngine, process: SpawnedProcess, watched: ProcessMonitor.Watched,
         output: SessionOutput, accounting: ContainerAccounting?, processGuard: ProcessGuard?, killGrace: Duration) {
        self.name = name
        self.limits = limits
        self.shared = shared
        self.engine = engine
        self.process = process
        self.watched = watched
        self.output = output
        self.accounting = accounting
        self.processGuard = processGuard
        self.killGrace = killGrace
    }

    /// Whether the engine still runs (the container may take another task).
    var isRunning: Bool { !watched.hasExited }

    /// Sends the init a message (after those sent before). An engine that is gone makes the
    /// write fail, not the task: its end says why.
    func send(_ message: [UInt8]) {
        guard let input = process.input else { return }
        writer.post { _ = FileOutput.write(input, message) }
    }

    /// Runs one task: how it ended, and whether the container can take the next one.
    func run(_ command: Command, context: TaskContext, log: ReleaseLog, control: ReleaseControl) async -> (TaskOutcome, reusable: Bool) {
        let task = context.task
        // A key of the task's own: a report of another task (a late one) is output, not its end.
        let key = Self.newKey()
        output.begin(task: task, log: log, key: key)
        let oomBefore = accounting?.cgroup.oomKills()
        send(TaskInit.key(key))
        send(TaskInit.task(argv: command.arguments, environment: context.environment))
        var stop: HostExecutor.Stop?
        switch await ProcessMonitor.shared.wait(for: watched, until: context.deadline, control: control) {
        case .marked, .exited: break
        case .deadline: stop = .deadline
        case .stopped(let reason): stop = .stopped(reason)
        case .failed(let error):
            log.note("\(task): the daemon can no longer watch the container engine (epoll_wait: \(error)); stopping its container", level: .critical)
            stop = .stopped(.shutdown)
        }
        if let stop {
            await Termination.end(RunningTask(session: self), grace: killGrace,
                                  onTerm: { log.note("\(task): \(stop.why); sending SIGTERM to its processes", level: .warning) },
                                  onKill: { log.note("\(task): still running after \(DurationParser.format(killGrace)); sending SIGKILL", level: .warning) })
            if !hasAnswered {
                log.note("\(task): its container does not answer; killing it", level: .warning)
                await kill()
            }
        }
        let report = output.takeReport()
        watched.unmark()
        log.flush(task: task)
        // A task that changed its init's limits (it runs as the same user) leaves them to no
        // other task: the container ends with it.
        let reusable = shared && !output.limitsChanged
        if shared && output.limitsChanged {
            log.note("\(task) changed the limits, priority or CPU affinity of its container's init; the next task gets a container of its own",
                     level: .warning)
        }
        let usage: TaskUsage? = if case .ended(_, let cpu, let rss)? = report { TaskUsage(cpuMs: cpu / 1000, peakMemoryBytes: rss * 1024) } else { nil }
        switch stop {
        case .stopped(let reason)?: return (TaskOutcome(ending: .stopped(reason), usage: usage), false)
        case .deadline?: return (TaskOutcome(ending: .timedOut, usage: usage), false)
        case nil: break
        }
        switch report {
        case .ended(.exited(let code), _, _)?:
            return (TaskOutcome(ending: .exited(code), usage: usage), reusable)
        case .ended(.signaled(let signal), _, _)?:
            let oom = signal == SIGKILL && (accounting?.cgroup.oomKilled(killed: true, limit: limits.memoryBytes, before: oomBefore ?? 0) ?? false)
            return (TaskOutcome(ending: oom ? .oomKilled(limit: limits.memoryBytes) : .signaled(signal), usage: usage), reusable)
        case .failed(_, let errno, let step)?:
            // The init could not start the command (not found in the image, not executable):
            // said from the daemon's own copy of the command and its PATH.
            let why = TaskInit.startFailure(errno: errno, step: step, program: command.arguments.first ?? "",
                                            path: context.environment["PATH"])
            return (TaskOutcome(ending: .notStarted("could not start: " + Quoting.line(context.masking.apply(why)) + " (in the image)")), reusable)
        case .ready?, .limitsChanged?, .fatal?, nil:
            return (await engineEnded(context: context, oomBefore: oomBefore), false)
        }
    }

    /// No report came: the engine ended (or the report was unreadable and the container is
    /// taken down). Why, from its exit status and its last lines.
    private func engineEnded(context: TaskContext, oomBefore: Int64?) async -> TaskOutcome {
        if !watched.hasExited { await kill() }
        let ended = await reap()
        if case .success(.exited(137)) = ended,
           accounting?.cgroup.oomKilled(killed: true, limit: limits.memoryBytes, before: oomBefore ?? 0) == true {
            return TaskOutcome(ending: .oomKilled(limit: limits.memoryBytes))
        }
        // Before the init said it runs, the output is the engine's alone (and the init's own
        // refusal): no task has run in the container yet. After it, nothing a task printed is
        // taken for the engine's or the init's word.
        let lines = output.engineLines
        switch ended {
        case .success(.exited(let code)) where !output.isReady && (125...127).contains(code) && lines.contains(where: { $0.hasPrefix("Error: ") }):
            // The engine's own failure (it says `Error: …`), not the task's exit status.
            let message = EngineCommand.Result(status: code, output: lines.joined(separator: "\n"), errorOutput: "").message
            return TaskOutcome(ending: .notStarted("could not start: the container engine failed (exit \(code)): \(Quoting.line(context.masking.apply(message)))"))
        case .success(.exited(let code)) where !output.isReady && lines.last?.hasPrefix(TaskInit.name + ": ") == true:
            return TaskOutcome(ending: .notStarted("could not start: \(Quoting.line(context.masking.apply(lines.last!))) (exit \(code))"))
        case .success(.exited(let code)) where output.fatal != nil:
            return TaskOutcome(ending: .ended("its container's init stopped: \(Quoting.line(output.fatal!)) (exit \(code))"))
        case .success(.exited(let code)):
            return TaskOutcome(ending: .ended("its container ended before the task did (the container engine exited with status \(code))"))
        case .success(.signaled(let signal)):
            return TaskOutcome(ending: .ended("its container ended before the task did (the container engine was killed by signal \(signal))"))
        case .failure(let error):
            return TaskOutcome(ending: .ended("its container ended before the task did (its exit status could not be read: \(error))"))
        }
    }

    /// Whether the running task has ended (its report came) or the whole container has.
    fileprivate var hasAnswered: Bool { output.hasReport || watched.hasExited }

    /// Ends the container: its init's stdin is closed (it exits, and the engine removes the
    /// container), or, when it does not exit within the kill grace, it is killed through the
    /// engine; either way it is removed, and the guard forgets it. Blocking calls on threads
    /// of their own.
    func close() async {
        let first = ended.withLock { e in defer { e = true }; return !e }
        guard first else { return }
        if let input = process.input { writer.post { _ = Glibc.close(input) } }
        if !(await waitForExit(until: .now + killGrace)) { await kill() }
        let status = await reap()
        let normal: Bool = if case .success(.exited(0)) = status { true } else { false }
        if !normal, await BlockingCall.run({ self.engine.containerExists(self.name) }) { await BlockingCall.run { self.engine.remove([self.name]) } }
        processGuard?.unregister(container: name)
        if let accounting { await BlockingCall.run { accounting.finish() } }
    }

    /// Kills the container through the engine and waits (bounded) for the engine to exit.
    private func kill() async {
        await Termination.end(ContainerTarget(engine: engine, name: name), grace: .zero, onTerm: {}, onKill: {})
        if !(await waitForExit(until: .now + .seconds(30))) { process.leader.send(SIGKILL) }
    }

    /// Waits until the engine's process has exited (true) or `deadline` passes (false).
    private func waitForExit(until deadline: ContinuousClock.Instant) async -> Bool {
        while true {
            switch await ProcessMonitor.shared.wait(for: watched, until: deadline, control: nil) {
            case .exited: return true
            case .marked: watched.unmark()  // a report no task waits for
            case .deadline, .stopped, .failed: return watched.hasExited
            }
        }
    }

    private let reaped = Mutex<Result<SpawnedProcess.Status, Errno>?>(nil)

    /// Reaps the engine's process once (waiting for it on a thread of its own).
    private func reap() async -> Result<SpawnedProcess.Status, Errno> {
        if let known = reaped.withLock({ $0 }) { return known }
        let process = process
        let status = await BlockingCall.run { process.reap() }
        reaped.withLock { $0 = status }
        return status
    }

    /// A key no task can guess: 128 random bits, in hex.
    private static func newKey() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<2).map { _ in
            let hex = String(generator.next() as UInt64, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }

    /// The running task's processes, signalled through the init.
    private struct RunningTask: Terminable {
        let session: ContainerSession
        func send(_ signal: Int32) async { session.send(TaskInit.signal(signal)) }
        func isGone() async -> Bool { session.hasAnswered }
    }
}

/// A container's output: the running task's, into the release log as it comes, and the
/// init's reports, taken out of it with that task's key (`ReportScanner`); a report that ends
/// the task (or says the init stops) marks the engine's process in the process monitor, which
/// wakes the task waiting for it. Until the init says it runs, the output is the engine's own:
/// its last lines are kept (they say why the container did not start).
final class SessionOutput: Sendable {
    private struct State {
        /// The running task's (nil before the first task: the output is the engine's).
        var scanner: ReportScanner?
        var task: String?
        var log: ReleaseLog?
        var engineTail = OutputTail()
        var ready = false
        var limitsChanged = false
        var fatal: String?
        /// The running task's report, once it came (`.some(nil)`: one that could not be read).
        var report: TaskInit.Report??
    }
    private let state = Mutex(State())
    private let marks = Mutex<ProcessMonitor.Watched?>(nil)

    /// The engine's process in the monitor, which a report marks.
    var watched: ProcessMonitor.Watched? {
        get { marks.withLock { $0 } }
        set { marks.withLock { $0 = newValue } }
    }

    /// The next task's output goes to `log` from now on, its reports marked by `key`.
    func begin(task: String, log: ReleaseLog, key: String) {
        state.withLock { s in
            s.scanner = ReportScanner(key: key)
            s.task = task
            s.log = log
            s.report = nil
        }
    }

    /// Bytes the engine wrote (on the monitor's thread). Once a task's report is in, what
    /// follows is no task's (until the next `begin`): the engine's, kept only before `ready`.
    func take(_ bytes: UnsafeRawBufferPointer) {
        let pieces = state.withLock { s -> [ReportScanner.Piece] in
            guard s.scanner != nil else { return [.output(Array(bytes))] }
            return s.scanner!.scan(bytes)
        }
        for piece in pieces {
            switch piece {
            case .output(let text):
                let (task, log) = state.withLock { s in
                    if !s.ready { s.engineTail.add(text) }
                    return (s.task, s.log)
                }
                if let task, let log { log.output(text, task: task) }
            case .report(.ready?):
                state.withLock { $0.ready = true }
            case .report(.limitsChanged?):
                state.withLock { $0.limitsChanged = true }
            case .report(.fatal(let why)?):
                state.withLock { $0.fatal = why }
                watched?.mark()
            case .report(let report):
                state.withLock { s in
                    s.report = .some(report)
                    s.task = nil
                    s.log = nil
                }
                watched?.mark()
            }
        }
    }

    var hasReport: Bool { state.withLock { $0.report != nil || $0.fatal != nil } }

    /// The running task's report (nil when none came, or it could not be read).
    func takeReport() -> TaskInit.Report? {
        state.withLock { s in defer { s.report = nil }; return s.report ?? nil }
    }

    /// Whether the init said it runs.
    var isReady: Bool { state.withLock { $0.ready } }
    /// Whether a task changed the init's own limits.
    var limitsChanged: Bool { state.withLock { $0.limitsChanged } }
    /// Why the init stopped, when it said so.
    var fatal: String? { state.withLock { $0.fatal } }
    /// The last lines of the engine's output before the init ran.
    var engineLines: [String] { state.withLock { $0.engineTail.lines } }
}

/// A release's container, ended through the engine.
struct ContainerTarget: Terminable {
    let engine: ContainerEngine
    let name: String

    func send(_ signal: Int32) async {
        let engine = engine, name = name
        await BlockingCall.run { engine.kill(name, signal: signal == SIGKILL ? "KILL" : "TERM") }
    }

    func isGone() async -> Bool {
        let engine = engine, name = name
        return await BlockingCall.run { !engine.containerExists(name) }
    }
}

/// The last lines of a container's output before its init ran (the engine's message is among
/// them when it could not start the container).
struct OutputTail {
    private var text: [UInt8] = []

    mutating func add(_ bytes: some Collection<UInt8>) {
        text.append(contentsOf: bytes)
        if text.count > 8192 { text.removeFirst(text.count - 8192) }
    }

    var lines: [String] {
        String(decoding: text, as: UTF8.self).split(separator: "\n").suffix(8).map(String.init)
    }
}

/// The cgroup a release's container goes under, which outlives it: the OOM killer's count is
/// read from it before and after each task (the figures come from the init's reports). With
/// the engine's systemd cgroup manager, a transient slice this daemon holds (see
/// `TaskUnits`); with its cgroupfs manager, a folder path of the container's own
/// (`/releasectl/<id>_<first task>`), which the engine makes and this removes.
struct ContainerAccounting: Sendable {
    let cgroupParent: String
    let cgroup: TaskCgroup
    let units: TaskUnits?

    private static let managers = Mutex<[String: String]>([:])

    /// Nil when the engine's cgroup manager is neither, or the slice cannot be made.
    static func make(engine: ContainerEngine, release: String, task: String) async -> ContainerAccounting? {
        let manager: String?
        if let known = managers.withLock({ $0[engine.executable] }) {
            manager = known
        } else {
            manager = await BlockingCall.run { engine.cgroupManager() }
            if let manager { managers.withLock { $0[engine.executable] = manager } }
        }
        switch manager {
        case "cgroupfs"?:
            let path = "/releasectl/" + String(ServiceManager.unitName(release: release, task: task, suffix: "").dropFirst("releasectl-".count).dropLast())
            return ContainerAccounting(cgroupParent: path, cgroup: TaskCgroup(path: path), units: nil)
        case "systemd"? where ServiceManager.isBooted:
            let made = await BlockingCall.run { try? TaskUnits(release: release, task: task, pid: nil, limits: ResourceLimits()) }
            guard let units = made else { return nil }
            return ContainerAccounting(cgroupParent: units.slice, cgroup: TaskCgroup(path: units.slicePath), units: units)
        default:
            return nil
        }
    }

    /// Once the figures are read: the slice stopped, or the folders removed. Blocking.
    func finish() {
        if let units { try? units.stop() } else { cgroup.removeFolders() }
    }
}
