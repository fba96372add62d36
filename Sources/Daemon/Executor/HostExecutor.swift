import CLinuxSyscalls
import Glibc
import ReleaseContainers
import ReleaseKit
import ReleaseSupport
import SystemPackage

/// Runs task commands as processes on this host: each in a session and process group of its
/// own, in the app directory, with exactly the task's environment (as the app's user when it
/// has one), output (stdout and stderr together, in order) streamed into the release log. Its
/// deadline and the release's stop end the whole group; what the task leaves behind when it
/// exits — in its group, in groups of its own carrying its `RELEASE_ID`, or (for an app's
/// user) any process of that user started since — is ended too, so nothing outlives its task.
/// Its starter, `releasectl-init --run-as` (see `TaskInit`), is started by `Spawn` (vfork and
/// execve); it takes the app's ids, forks the task into its group and reports what the task
/// used; its output, its exit (through its pidfd) and its deadline are watched by the
/// `ProcessMonitor`'s one thread.
///
/// Under systemd each task runs in a transient scope of its own (with the task's limits:
/// `MemoryMax=`, `CPUQuota=`, `TasksMax=`) inside a slice of its own that the daemon holds
/// until it has read the task's figures; stopping the slice at the end ends whatever the task
/// left in it. The starter waits for its environment on stdin, which comes once the starter
/// is in its scope, so nothing of the task runs outside it.
struct HostExecutor: TaskExecutor {
    /// `releasectl-init`, every task's starter.
    let starter: TaskInit
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
        /// How the leader ended, from reaping it.
        var status: Result<SpawnedProcess.Status, Errno>?
        /// Why the process monitor stopped watching it (it was ended then).
        var unwatched: Errno?
    }

    func run(_ command: Command, for context: TaskContext, log: ReleaseLog, control: ReleaseControl) async -> TaskOutcome {
        // Past the release's fence (a cluster lease it may no longer hold) nothing starts.
        if let reason = control.checkFence() { return TaskOutcome(ending: .stopped(reason)) }
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
        // Every task starts through releasectl-init (see TaskInit): it switches ids (which a
        // child of this many-threaded process must not do), forks the task so that its peak is
        // its own, and reports what it used on descriptor 3. The environment goes on its
        // stdin, once it is in its scope.
        let process: SpawnedProcess
        var reports: [Int32] = [-1, -1]
        guard rc_pipe_cloexec(&reports) == 0 else {
            return TaskOutcome(ending: .notStarted("cannot start \(program): cannot make a pipe: \(Errno(rawValue: errno))"))
        }
        defer { _ = close(reports[0]) }
        do throws(Errno) {
            let arguments = TaskInit.runAsArguments(uid: identity?.uid, gid: identity?.gid, groups: identity?.groups ?? [],
                                                    executable: executable.string, argv: argv)
            process = SpawnedProcess(try Spawn.start(
                FilePath(starter.path), argv: [TaskInit.name] + arguments,
                environment: ["PATH=/usr/bin:/bin", "RELEASE_ID=\(context.request.id.rawValue)"],
                directory: context.directory, input: .pipe, output: .pipe, errors: .toOutput, group: .session, extra: [reports[1]]))
            _ = close(reports[1])
        } catch {
            _ = close(reports[1])
            return TaskOutcome(ending: .notStarted("cannot start \(program): \(error)"))
        }
        let environment = TaskInit.runAsEnvironment(context.environment)
        let finished = await supervise(process, program: program, environment: environment, reports: reports[0], context: context, log: log,
                                       control: control)
        let usage = finished.usage
        if let why = finished.notStarted { return TaskOutcome(ending: .notStarted("could not start: \(why)")) }
        if let error = finished.unwatched {
            return TaskOutcome(ending: .ended("ended: the daemon could no longer watch its processes (epoll_wait: \(error))"), usage: usage)
        }
        switch finished.stop {
        case .stopped(let reason)?: return TaskOutcome(ending: .stopped(reason), usage: usage)
        case .deadline?: return TaskOutcome(ending: .timedOut, usage: usage)
        case nil: break
        }
        if finished.oomKilled { return TaskOutcome(ending: .oomKilled(limit: context.limits.memoryBytes), usage: usage) }
        switch finished.status {
        case .success(.exited(let code))?: return TaskOutcome(ending: .exited(code), usage: usage)
        case .success(.signaled(let signal))?: return TaskOutcome(ending: .signaled(signal), usage: usage)
        case .failure(let error)?: return TaskOutcome(ending: .notStarted("its exit status could not be read: \(error)"), usage: usage)
        case nil: return TaskOutcome(ending: .notStarted("its exit status could not be read"), usage: usage)
        }
    }

    /// Supervises the started process to its end: output into the release log (through the
    /// process monitor), the deadline and stops enforced on its group, leftovers ended. The
    /// leader is reaped only at the end, so its pid (the group's id) cannot be reused while
    /// what it left is ended.
    private func supervise(_ process: SpawnedProcess, program: String, environment: [UInt8], reports: Int32, context: TaskContext, log: ReleaseLog,
                           control: ReleaseControl) async -> Finished {
        let task = context.task
        let release = context.request.id.rawValue
        let leader = process.leader
        let group = ProcessGroupTarget(group: leader.pid)
        let spawned = ContinuousClock.now
        let user = identity?.uid
        processGuard?.register(processGroup: leader.pid, release: release)
        if let user { processGuard?.register(user: user, release: release) }
        running.insert(group: leader.pid, release: release)
        defer {
            running.remove(group: leader.pid)
            processGuard?.unregister(processGroup: leader.pid)
            if let user { processGuard?.unregister(user: user, release: release) }
        }
        let watched: ProcessMonitor.Watched
        do throws(Errno) {
            watched = try ProcessMonitor.shared.watch(pidfd: leader.pidfd, output: process.output) { log.output($0, task: task) }
        } catch {
            // The monitor closed its output.
            leader.send(SIGKILL)
            if let input = process.input { _ = close(input) }
            _ = await BlockingCall.run { process.reap() }
            return Finished(notStarted: "cannot watch its output: \(error)")
        }
        // Its scope first (the starter waits on stdin meanwhile: nothing of the task runs).
        var units: TaskUnits?
        if scopes {
            let pid = leader.pid
            let limits = context.limits
            switch await BlockingCall.run({ Result { () throws(ServiceManager.UnitError) in
                try TaskUnits(release: release, task: task, pid: pid, limits: limits)
            } }) {
            case .success(let made):
                units = made
            case .failure(let error):
                leader.send(SIGKILL)
                if let input = process.input { _ = close(input) }
                let wake = await ProcessMonitor.shared.wait(for: watched, until: nil, control: nil)
                await Self.reap(process, unwatched: wake.failure != nil)
                return Finished(notStarted: "cannot put it in a systemd scope of its own: \(error)")
            }
        }
        await process.feed(environment)
        var stop: Stop?
        var unwatched: Errno?
        switch await ProcessMonitor.shared.wait(for: watched, until: context.deadline, control: control) {
        case .exited, .marked: break
        case .deadline: stop = .deadline
        case .stopped(let reason): stop = .stopped(reason)
        case .failed(let error):
            // Its end can no longer be seen: it is ended now, and fails.
            unwatched = error
            await Termination.end(group, grace: killGrace,
                                  onTerm: { log.note("\(task): the daemon can no longer watch its processes (epoll_wait: \(error)); sending them SIGTERM", level: .critical) },
                                  onKill: { log.note("\(task): still running after \(DurationParser.format(killGrace)); sending SIGKILL", level: .warning) })
        }
        if let stop {
            await Termination.end(group, grace: killGrace,
                                  onTerm: { log.note("\(task): \(stop.why); sending SIGTERM to its processes", level: .warning) },
                                  onKill: { log.note("\(task): still running after \(DurationParser.format(killGrace)); sending SIGKILL", level: .warning) })
            unwatched = await ProcessMonitor.shared.wait(for: watched, until: nil, control: nil).failure
        }
        log.flush(task: task)
        // What it used: its cgroup's figures when it has one (its processes together), else
        // what its starter reported (the task's own rusage). The starter's own rusage is no
        // figure of the task's: its peak is inherited from this daemon (it was spawned from
        // it); its CPU (with the task's, once reaped) is all there is when no report came.
        let ending = leader.ending()
        let reported = Self.readReport(reports)
        var finished = Finished(stop: stop, usage: TaskUsage(cpuMs: ending?.usage.cpuMs), unwatched: unwatched)
        switch reported {
        case .ended(_, let cpu, let rss)?: finished.usage = TaskUsage(cpuMs: cpu / 1000, peakMemoryBytes: rss * 1024)
        case .failed(_, let errno, let step)?:
            // Said from the daemon's own copy of the command, none of the starter's text.
            let why = TaskInit.startFailure(errno: errno, step: step, program: program, path: context.environment["PATH"])
            finished.notStarted = Quoting.line(context.masking.apply(why))
        case .ready?, .limitsChanged?, .fatal?, nil: break
        }
        if let units {
            let cgroup = TaskCgroup(path: units.slicePath)
            let (cpu, peak) = cgroup.usage()
            finished.usage = TaskUsage(cpuMs: cpu, peakMemoryBytes: peak).over(finished.usage)
            finished.oomKilled = cgroup.oomKilled(killed: ending?.killedBy == SIGKILL, limit: context.limits.memoryBytes)
        }
        // What the task may have left, read once for both checks (its group, then what left
        // it); read again for the second when the group had to be ended first.
        var seen = ProcessTable.allocated(after: leader.pid, spawned: spawned)
        if seen?.hasLiveMember(of: leader.pid) ?? true {
            await Termination.end(group, grace: killGrace,
                                  onTerm: { log.note("\(task) left processes behind; sending them SIGTERM", level: .warning) },
                                  onKill: { log.note("\(task): leftover processes still running after \(DurationParser.format(killGrace)); sending SIGKILL", level: .warning) })
            seen = nil
        }
        await Self.endEscapees(release: release, leader: leader.pid, user: user, spawned: spawned, seen: seen, running: running,
                               grace: killGrace, log: log, task: task)
        // Whatever is still in its scope ends with it.
        if let units {
            if case .failure(let error) = await BlockingCall.run({ Result { () throws(ServiceManager.UnitError) in try units.stop() } }) {
                log.note("\(task): stopping its systemd units failed: \(error)", level: .warning)
            }
        }
        finished.status = await Self.reap(process, unwatched: unwatched != nil)
        return finished
    }

    /// The starter's report on descriptor 3, written before it exited (nil: none, as when it
    /// was killed or could not start the task).
    private static func readReport(_ fd: Int32) -> TaskInit.Report? {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var buffer = [UInt8](repeating: 0, count: 2048)
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard n > 0, let line = buffer[0..<n].split(separator: UInt8(ascii: "\n")).first else { return nil }
        return TaskInit.Report(Substring(decoding: line, as: UTF8.self))
    }

    /// Reaps the leader: at once when the monitor saw it exit; else (the monitor stopped
    /// watching it, and Termination gives up on a process stuck in the kernel) it may not have
    /// exited yet, so on a thread of its own.
    @discardableResult
    private static func reap(_ process: SpawnedProcess, unwatched: Bool) async -> Result<SpawnedProcess.Status, Errno> {
        unwatched ? await BlockingCall.run { process.reap() } : process.reap()
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
    /// started moments ago only the pids allocated since are looked at (see `ProcessTable`);
    /// `seen` is what was read of them as the task ended, if nothing was ended since.
    /// Environments are read on a thread of their own (reading one can block).
    private static func endEscapees(release id: String, leader: pid_t, user: uid_t?, spawned: ContinuousClock.Instant,
                                    seen: ProcessTable.Allocated?, running: RunningTasks, grace: Duration, log: ReleaseLog,
                                    task: String) async {
        guard let since = ProcessTable.stat(of: leader)?.startTime else { return }
        // A candidate: started since the task (a range of pids can also hold older processes, at
        // pids the kernel skipped as in use), alive, not in the task's own group (ended already)
        // nor another task's, and a process rather than one of its threads.
        let isCandidate = { @Sendable (pid: pid_t, stat: ProcessTable.Stat, groups: Set<pid_t>) -> Bool in
            guard pid != leader, stat.isLive, stat.startTime >= since, stat.group != leader,
                  !groups.contains(stat.group) else { return false }
            return ProcessTable.isProcess(pid)
        }
        // What was read as the task ended, or the few pids allocated since a recent leader: with
        // no candidate among them (the usual case) no thread is needed for reading environments.
        if seen != nil || ProcessTable.isRecent(spawned) {
            let groups = running.snapshot(excluding: id).groups
            let allocated = seen ?? ProcessTable.allocated(after: leader, spawned: spawned)
            guard allocated?.processes.contains(where: { isCandidate($0.pid, $0.stat, groups) }) == true else { return }
        }
        let escapees = ProcessSetTarget {
            let (groups, others) = running.snapshot(excluding: id)
            let candidates = (ProcessTable.allocated(after: leader, spawned: spawned)?.processes ?? [])
                .filter { isCandidate($0.pid, $0.stat, groups) }.map(\.pid)
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
