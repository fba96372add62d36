import CLinuxSyscalls
import Glibc
import ReleaseContainers
import ReleaseKit
import ReleaseSupport
import Synchronization
import SystemPackage

/// Runs task commands in a fresh container of the release's image, through the container
/// engine: `run --rm`, named `releasectl-<id>-<task>`, labelled with the release, the task and
/// the spool, in the container's working directory, with the app's network, volumes and user
/// from released.toml (the user: `container-user`, else the app's host `user`, else the
/// image's own), and the least privilege (`ContainerPrivileges`: no new privileges, no
/// capabilities, a read-only root, unless the operator relaxed them for the app). The task is
/// started by `ContainerInit`, which reads its command and environment from its stdin: no
/// value of the task's is ever in the argv or the environment of the engine (or any other
/// process on the host). Output streams into the release log as a host task's does. A
/// deadline or a stop ends the container (SIGTERM, then SIGKILL after the kill grace, through
/// the engine), and nothing is left behind: the container is removed when the task ends, by
/// the process guard if the daemon dies, and at start-up otherwise. The engine's own failures
/// (exit 125–127 with its `Error: ` line: no such image, a bad option) are reported as such,
/// not as the task's exit status.
struct ContainerExecutor: TaskExecutor {
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

    /// The name of a task's container.
    static func containerName(release: String, task: String) -> String { "releasectl-\(release)-\(task)" }

    /// The program that starts tasks in their containers, found once beside this executable.
    static let initProgram = ContainerInit.locate(besides: Released.executablePath)

    func run(_ command: Command, for context: TaskContext, log: ReleaseLog, control: ReleaseControl) async -> TaskOutcome {
        let release = context.request.id.rawValue
        let name = Self.containerName(release: release, task: context.task)
        // Past the release's fence (a cluster lease it may no longer hold) nothing starts.
        if let reason = control.checkFence() { return TaskOutcome(ending: .stopped(reason)) }
        guard let program = ExecutableLookup.find(engine.executable, path: Self.path(of: engine.environment)) ?? absolute(engine.executable) else {
            return Self.notStarted("the container engine \(engine.executable) is not installed (container-engine in released.toml)")
        }
        let initProgram: ContainerInit
        switch Self.initProgram {
        case .success(let found): initProgram = found
        case .failure(let missing): return Self.notStarted("\(missing)")
        }
        var arguments = ["run", "--rm", "--interactive", "--name", name,
                         "--label", "\(ContainerEngine.releaseLabel)=\(release)", "--label", "\(ContainerEngine.taskLabel)=\(context.task)",
                         "--label", "\(ContainerEngine.spoolLabel)=\(spool.root.string)",
                         "--workdir", workingDirectory, "--pull", "never"]
        arguments += Self.privilegeArguments(settings.privileges)
        if let network = settings.network { arguments += ["--network", network] }
        for volume in settings.volumes { arguments += ["--volume", volume] }
        if let user = settings.containerUser ?? identity.map({ "\($0.uid):\($0.gid)" }) { arguments += ["--user", user] }
        arguments += Self.limitArguments(context.limits)
        // The cgroup the container goes under: the task's figures are read from it afterwards.
        let accounting = await ContainerAccounting.make(engine: engine, release: release, task: context.task)
        if let accounting { arguments += ["--cgroup-parent", accounting.cgroupParent] }
        arguments += initProgram.engineArguments
        arguments += ["--", image, context.task]
        // What the init reads from its stdin, through the engine: the command and environment.
        let message = ContainerInit.message(argv: command.arguments, environment: context.environment)
        let engineProcess: SpawnedProcess
        do throws(Errno) {
            engineProcess = SpawnedProcess(try Spawn.start(FilePath(program), argv: [engine.executable] + arguments, environment: engine.environment,
                                                           input: .pipe, output: .pipe, errors: .toOutput, group: .session))
        } catch {
            if let accounting { await BlockingCall.run { accounting.finish() } }
            return Self.notStarted("cannot start the container engine: \(error)")
        }
        // Written on a thread of its own as the engine reads (a message may be larger than a
        // pipe holds); an engine that fails before it reads it all makes the write fail, not
        // the task (the engine's own message says why).
        let feeder = engineProcess.input!
        Task.detached { await BlockingCall.run { FileOutput.write(feeder, message); _ = close(feeder) } }

        processGuard?.register(container: name, release: release)
        defer { processGuard?.unregister(container: name) }
        let target = ContainerTarget(engine: engine, name: name)
        // The engine's output is the task's: into the release log as it comes, its last lines
        // kept (they hold the engine's or the init's message when the task did not start).
        let tail = Mutex(OutputTail())
        let watched: ProcessMonitor.Watched
        do throws(Errno) {
            watched = try ProcessMonitor.shared.watch(pidfd: engineProcess.leader.pidfd, output: engineProcess.output) { bytes in
                log.output(bytes, task: context.task)
                tail.withLock { $0.add(bytes) }
            }
        } catch {
            engineProcess.leader.send(SIGKILL)
            _ = await BlockingCall.run { engineProcess.reap() }
            await BlockingCall.run { engine.remove([name]) }
            if let accounting { await BlockingCall.run { accounting.finish() } }
            return Self.notStarted("cannot watch the container engine's output: \(error)")
        }
        var stop: HostExecutor.Stop?
        switch await ProcessMonitor.shared.wait(for: watched, until: context.deadline, control: control) {
        case .exited: break
        case .deadline: stop = .deadline
        case .stopped(let reason): stop = .stopped(reason)
        case .failed(let error):
            log.note("\(context.task): the daemon can no longer watch the container engine (epoll_wait: \(error)); stopping its container", level: .critical)
            stop = .stopped(.shutdown)
        }
        if let stop {
            await Termination.end(target, grace: killGrace,
                                  onTerm: { log.note("\(context.task): \(stop.why); stopping its container", level: .warning) },
                                  onKill: { log.note("\(context.task): its container still runs after \(DurationParser.format(killGrace)); killing it", level: .warning) })
            _ = await ProcessMonitor.shared.wait(for: watched, until: nil, control: nil)
        }
        log.flush(task: context.task)
        let ended = await BlockingCall.run { engineProcess.reap() }
        let lines = tail.withLock { $0.lines }
        // `run --rm` removes the container before it exits. When it was stopped, killed or
        // failed itself, the container may still be there: removed here.
        let normalExit: Bool = if stop == nil, case .success(.exited(let code)) = ended, code < 125 { true } else { false }
        if !normalExit, await BlockingCall.run({ engine.containerExists(name) }) { await BlockingCall.run { engine.remove([name]) } }
        var usage: TaskUsage?
        var oomKilled = false
        if let accounting {
            let (cpu, peak) = accounting.cgroup.usage()
            usage = TaskUsage(cpuMs: cpu, peakMemoryBytes: peak)
            // SIGKILL of the container's first process: exit status 137.
            let killed: Bool = if case .success(.exited(137)) = ended { true } else { false }
            oomKilled = stop == nil && (killed || TaskCgroup.unified) && accounting.cgroup.oomKilled(killed: killed, limit: context.limits.memoryBytes)
            await BlockingCall.run { accounting.finish() }
        }
        if oomKilled { return TaskOutcome(ending: .oomKilled(limit: context.limits.memoryBytes), usage: usage) }
        switch stop {
        case .stopped(let reason)?: return TaskOutcome(ending: .stopped(reason), usage: usage)
        case .deadline?: return TaskOutcome(ending: .timedOut, usage: usage)
        case nil: break
        }
        switch ended {
        case .success(.exited(let code)) where (126...127).contains(code) && lines.last?.hasPrefix(Self.initPrefix) == true:
            // The init could not start the command (not found in the image, not executable).
            let line = lines.last!.dropFirst(Self.initPrefix.count)
            return Self.notStarted(context.masking.apply(String(line)) + " (in the image)")
        case .success(.exited(let code)) where (125...127).contains(code) && lines.contains(where: { $0.hasPrefix("Error: ") }):
            // The engine's own failure (it says `Error: …`), not the task's exit status.
            // The last lines of the output, which may hold what the task printed: masked.
            let message = EngineCommand.Result(status: code, output: lines.joined(separator: "\n"), errorOutput: "").message
            return Self.notStarted("the container engine failed (exit \(code)): \(context.masking.apply(message))")
        case .success(.exited(let code)): return TaskOutcome(ending: .exited(code), usage: usage)
        case .success(.signaled(let signal)): return TaskOutcome(ending: .signaled(signal), usage: usage)
        case .failure(let error): return TaskOutcome(ending: .notStarted("the container engine's exit status could not be read: \(error)"), usage: usage)
        }
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

    /// How `releasectl-init` begins the line that says why it could not start a command.
    static let initPrefix = "\(ContainerInit.name): "

    /// A task whose container could not be started, and why.
    private static func notStarted(_ why: String) -> TaskOutcome { TaskOutcome(ending: .notStarted("could not start: " + why)) }

    private func absolute(_ program: String) -> String? { program.hasPrefix("/") ? program : nil }

    /// The PATH of an environment (`KEY=value`).
    static func path(of environment: [String]) -> String {
        environment.first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? TaskEnvironment.defaultPath
    }
}

/// A task's container, ended through the engine.
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

/// The last lines of a task's output (the engine's message is among them when it failed).
struct OutputTail {
    private var text: [UInt8] = []

    mutating func add(_ bytes: UnsafeRawBufferPointer) {
        text.append(contentsOf: bytes)
        if text.count > 8192 { text.removeFirst(text.count - 8192) }
    }

    var lines: [String] {
        String(decoding: text, as: UTF8.self).split(separator: "\n").suffix(8).map(String.init)
    }
}

/// Where a container task's figures come from: a cgroup the engine puts the container under,
/// which outlives it. With the engine's systemd cgroup manager, a transient slice this daemon
/// holds (see `TaskUnits`); with its cgroupfs manager, a folder path of the task's own
/// (`/releasectl/<id>_<task>`), which the engine makes and this removes.
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
