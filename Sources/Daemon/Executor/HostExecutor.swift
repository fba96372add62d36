import Glibc
import ReleaseKit
import ReleaseWatcher
import Subprocess
import SystemPackage

/// Runs task commands as processes on this host: each in a session and process group of its
/// own, in the app directory, with exactly the task's environment (as the app's user when it
/// has one, through the run-as helper), output (stdout and stderr together, in order) streamed
/// into the release log. Its deadline and the release's stop end the whole group; what the
/// task leaves behind when it exits — in its group, in groups of its own carrying its
/// `RELEASE_ID`, or (for an app's user) any process of that user started since — is ended too,
/// so nothing outlives its task. Waits for the leader through its pidfd, without a thread.
///
/// Under systemd each task runs in a transient scope of its own (with the task's limits:
/// `MemoryMax=`, `CPUQuota=`, `TasksMax=`) inside a slice of its own that the daemon holds
/// until it has read the task's figures; stopping the slice at the end ends whatever the task
/// left in it. The task starts through the run-as helper, which waits until it is in its
/// scope before it execs the task.
struct HostExecutor: TaskExecutor {
    let processGuard: ProcessGuard?
    let killGrace: Duration
    let identity: TaskIdentity?
    let running: RunningTasks
    /// Whether each task gets a scope (the daemon runs under systemd).
    let scopes: Bool

    /// Why a task was ended before it finished by itself.
    enum Stop: Sendable {
        case deadline
        case stopped(StopReason)

        /// In words, for the release log.
        var why: String {
            switch self {
            case .stopped(.cancelled): "the release was cancelled"
            case .stopped(.shutdown): "the daemon is shutting down"
            case .stopped(.leaseLost): "this node could not renew its cluster lease"
            case .deadline: "time limit reached"
            }
        }
    }

    private struct Finished: Sendable {
        var stop: Stop?
        var usage: TaskUsage?
        var oomKilled = false
        /// Why it could not be started in its scope.
        var notStarted: String?
    }

    func run(_ command: Command, for context: TaskContext, log: ReleaseLog, control: ReleaseControl) async -> TaskOutcome {
        let argv = command.arguments
        guard let program = argv.first else { return TaskOutcome(ending: .notStarted("empty command")) }
        let executable: FilePath
        if program.contains("/") {
            executable = program.hasPrefix("/") ? FilePath(program) : context.directory.appending(program)
            guard access(executable.string, X_OK) == 0 else {
                return TaskOutcome(ending: .notStarted("cannot run \(program): \(String(cString: strerror(errno))) (in \(context.directory))"))
            }
        } else {
            let path = TaskEnvironment.path(for: context.environment)
            guard let found = ExecutableLookup.find(program, path: path) else {
                return TaskOutcome(ending: .notStarted("command not found: \(program) (PATH=\(path))"))
            }
            executable = FilePath(found)
        }
        var options = PlatformOptions()
        options.createSession = true
        let result: ExecutionResult<Finished, SequenceOutput, CombinedErrorOutput>
        do {
            if identity != nil || scopes {
                // Ids are switched by a freshly exec'd helper, not in the child Subprocess forks
                // from this many-threaded process (see RunAs); the environment goes on its
                // stdin, once the helper is in its scope.
                let environment = RunAs.encode(environment: context.environment)
                result = try await spawn(
                    FilePath("/proc/self/exe"),
                    Arguments(executablePathOverride: "released",
                              remainingValues: RunAs.arguments(for: identity, executable: executable.string, argv: argv)),
                    environment: ["SWIFT_BACKTRACE=enable=no", "PATH=/usr/bin:/bin", "RELEASE_ID=\(context.request.id.rawValue)"],
                    input: .inputWriter, options: options, context: context, log: log, control: control,
                    feed: { execution in
                        let writer = execution.standardInputWriter
                        _ = try? await writer.write(environment)
                        try? await writer.finish()
                    })
            } else {
                result = try await spawn(
                    executable, Arguments(executablePathOverride: program, remainingValues: Array(argv.dropFirst())),
                    environment: RunAs.assignments(context.environment), input: .none, options: options, context: context,
                    log: log, control: control, feed: { _ in })
            }
        } catch {
            return TaskOutcome(ending: .notStarted("cannot start \(program): \(error)"))
        }
        let usage = result.closureResult.usage
        if let why = result.closureResult.notStarted { return TaskOutcome(ending: .notStarted("could not start: \(why)")) }
        switch result.closureResult.stop {
        case .stopped(let reason)?: return TaskOutcome(ending: .stopped(reason), usage: usage)
        case .deadline?: return TaskOutcome(ending: .timedOut, usage: usage)
        case nil: break
        }
        if result.closureResult.oomKilled { return TaskOutcome(ending: .oomKilled(limit: context.limits.memoryBytes), usage: usage) }
        switch result.terminationStatus {
        case .exited(let code): return TaskOutcome(ending: .exited(code), usage: usage)
        case .signaled(let signal): return TaskOutcome(ending: .signaled(signal), usage: usage)
        }
    }

    /// Starts the process and supervises it to its end: output into the release log, the
    /// deadline and stops enforced on its group, leftovers ended. Still inside Subprocess's
    /// body when the leader has exited, so it is not reaped yet and its pid (the group's id)
    /// cannot be reused while what it left is ended.
    private func spawn<Input: InputProtocol>(
        _ executable: FilePath, _ arguments: Arguments, environment: [String], input: Input, options: PlatformOptions,
        context: TaskContext, log: ReleaseLog, control: ReleaseControl,
        feed: @escaping (Execution<Input, SequenceOutput, CombinedErrorOutput>) async -> Void
    ) async throws -> ExecutionResult<Finished, SequenceOutput, CombinedErrorOutput> {
        let grace = killGrace
        let task = context.task
        let release = context.request.id.rawValue
        let deadline = context.deadline
        let processGuard = processGuard
        let running = running
        let user = identity?.uid
        let scoped = scopes
        let limits = context.limits
        return try await Subprocess.run(
            .path(executable), arguments: arguments, environment: .custom(environment.map { Array("\($0)\0".utf8) }),
            workingDirectory: context.directory, platformOptions: options, input: input, output: .sequence, error: .combinedWithOutput
        ) { execution in
            let leader = ProcessHandle(pid: execution.processIdentifier.value, pidfd: execution.processIdentifier.processDescriptor)
            let group = ProcessGroupTarget(group: leader.pid)
            let spawned = ContinuousClock.now
            processGuard?.register(processGroup: leader.pid)
            if let user { processGuard?.register(user: user) }
            running.insert(group: leader.pid, release: release)
            defer {
                running.remove(group: leader.pid)
                processGuard?.unregister(processGroup: leader.pid)
                if let user { processGuard?.unregister(user: user) }
            }
            // Its scope first (the helper waits on stdin meanwhile: nothing of the task runs).
            var units: TaskUnits?
            if scoped {
                let pid = leader.pid
                switch await BlockingCall.run({ Result { () throws(ServiceManager.UnitError) in
                    try TaskUnits(release: release, task: task, pid: pid, limits: limits)
                } }) {
                case .success(let made):
                    units = made
                case .failure(let error):
                    leader.send(SIGKILL)
                    for try await _ in execution.standardOutput {}
                    await leader.exit()
                    return Finished(stop: nil, usage: nil, notStarted: "cannot put it in a systemd scope of its own: \(error)")
                }
            }
            await feed(execution)
            let stop = await withTaskGroup(of: Stop?.self) { race in
                race.addTask {
                    guard let stop = await Self.stop(deadline: deadline, control: control) else { return nil }
                    await Termination.end(group, grace: grace,
                                          onTerm: { log.note("\(task): \(stop.why); sending SIGTERM to its processes", level: .warning) },
                                          onKill: { log.note("\(task): still running after \(DurationParser.format(grace)); sending SIGKILL", level: .warning) })
                    return stop
                }
                do {
                    for try await buffer in execution.standardOutput {
                        buffer.withUnsafeBytes { log.output($0, task: task) }
                    }
                } catch {
                    log.note("reading the output of \(task) failed: \(error)", level: .warning)
                }
                log.flush(task: task)
                // The output can end before the process does (it may close stdout).
                await leader.exit()
                race.cancelAll()
                var stop: Stop?
                for await s in race where s != nil { stop = s }
                return stop
            }
            let ending = leader.ending()
            var usage = ending?.usage
            var oomKilled = false
            if let units {
                let cgroup = TaskCgroup(path: units.slicePath)
                let (cpu, peak) = cgroup.usage()
                usage = TaskUsage(cpuMs: cpu, peakMemoryBytes: peak).over(usage)
                oomKilled = cgroup.oomKilled(killed: ending?.killedBy == SIGKILL, limit: limits.memoryBytes)
            }
            let recent = ContinuousClock.now - spawned < ProcessTable.recent
            if await !group.isGone(recent: recent) {
                await Termination.end(group, grace: grace,
                                      onTerm: { log.note("\(task) left processes behind; sending them SIGTERM", level: .warning) },
                                      onKill: { log.note("\(task): leftover processes still running after \(DurationParser.format(grace)); sending SIGKILL", level: .warning) })
            }
            await Self.endEscapees(release: release, leader: leader.pid, user: user, recent: recent, running: running, grace: grace,
                                   log: log, task: task)
            // Whatever is still in its scope ends with it.
            if let units {
                if case .failure(let error) = await BlockingCall.run({ Result { () throws(ServiceManager.UnitError) in try units.stop() } }) {
                    log.note("\(task): stopping its systemd units failed: \(error)", level: .warning)
                }
            }
            return Finished(stop: stop, usage: usage, oomKilled: oomKilled)
        }
    }

    /// Waits for the deadline or a stop; nil when cancelled first (the task ended by itself).
    static func stop(deadline: ContinuousClock.Instant, control: ReleaseControl) async -> Stop? {
        await withTaskGroup(of: Stop?.self) { race in
            race.addTask {
                do { try await Task.sleep(until: deadline, clock: .continuous) } catch { return nil }
                return .deadline
            }
            race.addTask { await control.wait().map(Stop.stopped) }
            let first = await race.next() ?? nil
            race.cancelAll()
            return Task.isCancelled ? nil : first
        }
    }

    /// Ends processes the task started that left its process group (`setsid`, `setpgid`):
    /// those carrying the release's `RELEASE_ID` (tasks of a release run one after another, so
    /// at the end of one every live process with the id, started no earlier than the task, is
    /// its leftover), and, when the task ran as an app's user, every process of that user
    /// started since the task that is not in another running task's group nor carries another
    /// release's id — which also catches one that cleared its environment. For a task that
    /// started moments ago only the pids allocated since are looked at (see `ProcessTable`).
    /// Environments are read on a thread of their own (reading one can block).
    private static func endEscapees(release id: String, leader: pid_t, user: uid_t?, recent: Bool, running: RunningTasks,
                                    grace: Duration, log: ReleaseLog, task: String) async {
        guard let since = ProcessTable.stat(of: leader)?.startTime else { return }
        // Started since the task, alive, not in the task's own group (ended already) nor another
        // task's, and a process rather than one of its threads; and the other releases' ids.
        let look = { @Sendable () -> (candidates: [pid_t], others: Set<String>) in
            let (groups, others) = running.snapshot(excluding: id)
            let candidates = (ProcessTable.pids(after: leader, recent: recent) ?? []).filter { pid in
                guard pid != leader, let stat = ProcessTable.stat(of: pid), stat.isLive, stat.startTime >= since,
                      stat.group != leader, !groups.contains(stat.group) else { return false }
                return ProcessTable.isProcess(pid)
            }
            return (candidates, others)
        }
        // A task that started moments ago: the few pids allocated since are looked at here (their
        // stat files only); with none (the usual case) no thread is needed for reading environments.
        if recent, look().candidates.isEmpty { return }
        let escapees = ProcessSetTarget {
            let (candidates, others) = look()
            var found = Set(ProcessTable.processes(withReleaseIn: [id], among: candidates))
            if let user {
                let theirs = candidates.filter { !found.contains($0) && ProcessTable.realUID(of: $0) == user }
                let ofOthers = others.isEmpty ? [] : Set(ProcessTable.processes(withReleaseIn: others, among: theirs))
                found.formUnion(theirs.filter { !ofOthers.contains($0) })
            }
            return found.sorted().compactMap { ProcessHandle(pid: $0, startTime: ProcessTable.stat(of: $0)?.startTime) }
        }
        let first = await escapees.refresh()
        guard !first.isEmpty else { return }
        await Termination.end(escapees, grace: grace,
                              onTerm: { log.note("\(task) left processes outside its process group (pids \(first.map { String($0.pid) }.joined(separator: ", "))); sending them SIGTERM", level: .warning) },
                              onKill: { log.note("\(task): processes outside its group still running after \(DurationParser.format(grace)); sending SIGKILL", level: .warning) })
        escapees.close()
    }
}
