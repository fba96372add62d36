import Glibc
import Logging
import ReleaseKit
import ReleaseWatcher
import Subprocess
import SystemPackage

/// Who a task runs as, when the daemon (as root) switches to an app's user.
public struct TaskIdentity: Sendable {
    public var user: String
    public var uid: uid_t
    public var gid: gid_t
    public var groups: [gid_t]
    public var home: String

    /// The ids the app's files are read with at intake.
    var credentials: FileCredentials { FileCredentials(uid: uid, gid: gid, groups: groups) }
}

/// Runs task commands as processes: each in a session and process group of its own, in the
/// app directory, with exactly the task's environment, output (stdout and stderr together, in
/// order) streamed into the release log. On a time-out, a cancel or a shutdown the whole group
/// gets SIGTERM, then SIGKILL after the kill grace; processes a task leaves behind when it
/// exits are ended the same way, so nothing outlives its task.
struct SubprocessTaskRunner: TaskProcessRunner {
    let log: ReleaseLog
    let control: ReleaseControl
    let processGuard: ProcessGuard?
    let killGrace: Duration
    let identity: TaskIdentity?

    func say(_ line: String, for context: TaskContext) {
        log.say(line, task: context.task)
    }

    func run(_ command: Command, for context: TaskContext) async throws(TaskFailure) {
        let argv = command.arguments
        guard let program = argv.first else { throw TaskFailure(.failed, reason: "empty command") }
        let executable: FilePath
        if program.contains("/") {
            executable = program.hasPrefix("/") ? FilePath(program) : context.directory.appending(program)
            guard access(executable.string, X_OK) == 0 else {
                throw TaskFailure(.failed, reason: "cannot run \(program): \(String(cString: strerror(errno))) (in \(context.directory))")
            }
        } else {
            let path = TaskEnvironment.path(for: context.environment)
            guard let found = ExecutableLookup.find(program, path: path) else {
                throw TaskFailure(.failed, reason: "command not found: \(program) (PATH=\(path))")
            }
            executable = FilePath(found)
        }
        var options = PlatformOptions()
        options.createSession = true
        let result: ExecutionResult<Termination?, SequenceOutput, CombinedErrorOutput>
        do {
            if let identity {
                // Ids are switched by a freshly exec'd helper, not in the child Subprocess forks
                // from this many-threaded process (see RunAs); the environment goes on its stdin.
                result = try await spawn(
                    FilePath("/proc/self/exe"),
                    Arguments(executablePathOverride: "released",
                              remainingValues: RunAs.arguments(for: identity, executable: executable.string, argv: argv)),
                    environment: ["SWIFT_BACKTRACE=enable=no", "PATH=/usr/bin:/bin",
                                  "RELEASE_ID=\(context.request.id.rawValue)"],
                    input: .array(RunAs.encode(environment: context.environment)),
                    options: options, context: context)
            } else {
                result = try await spawn(
                    executable,
                    Arguments(executablePathOverride: program, remainingValues: Array(argv.dropFirst())),
                    environment: RunAs.assignments(context.environment),
                    input: .none,
                    options: options, context: context)
            }
        } catch {
            throw TaskFailure(.failed, reason: "cannot start \(program): \(error)")
        }

        switch result.closureResult {
        case .stopped(.cancelled)?:
            throw TaskFailure(.cancelled, reason: "cancelled")
        case .stopped(.shutdown)?:
            throw TaskFailure(.cancelled, reason: "interrupted: the daemon shut down")
        case .deadline?:
            throw TaskFailure(.timedOut, reason: "timed out")
        case nil:
            break
        }
        switch result.terminationStatus {
        case .exited(0):
            return
        case .exited(let code):
            throw TaskFailure(.failed, reason: "exited with status \(code)", exitStatus: code)
        case .signaled(let signal):
            throw TaskFailure(.failed, reason: "killed by signal \(signal) (\(Self.signalName(signal)))", signal: signal)
        }
    }

    /// Starts the process and supervises it to its end: output into the release log, the
    /// deadline and stops enforced on its group, leftovers ended.
    private func spawn<Input: InputProtocol>(
        _ executable: FilePath, _ arguments: Arguments, environment: [String], input: Input,
        options: PlatformOptions, context: TaskContext
    ) async throws -> ExecutionResult<Termination?, SequenceOutput, CombinedErrorOutput> {
        let deadline = context.deadline
        let grace = killGrace
        let control = control
        let log = log
        let task = context.task
        let release = context.request.id.rawValue
        let processGuard = processGuard
        return try await Subprocess.run(
            .path(executable),
            arguments: arguments,
            environment: .custom(environment.map { Array("\($0)\0".utf8) }),
            workingDirectory: context.directory,
            platformOptions: options,
            input: input,
            output: .sequence,
            error: .combinedWithOutput
        ) { execution in
            let pid = execution.processIdentifier.value
            let spawned = ContinuousClock.now
            processGuard?.register(processGroup: pid)
            let termination = await withTaskGroup(of: Termination?.self) { group in
                group.addTask {
                    await Self.terminate(group: pid, deadline: deadline, control: control, grace: grace, log: log, task: task)
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
                await ProcessExit.wait(execution.processIdentifier)
                group.cancelAll()
                var termination: Termination?
                for await r in group where r != nil { termination = r }
                return termination
            }
            // Still inside the body: the leader is exited but not yet reaped, so its pid
            // (the group's id) cannot be reused while leftovers are ended.
            await Self.endLeftovers(group: pid, grace: grace, log: log, task: task, spawned: spawned)
            await Self.endEscapees(release: release, leader: pid, grace: grace, log: log, task: task, spawned: spawned)
            processGuard?.unregister(processGroup: pid)
            return termination
        }
    }

    /// Why a task was ended before it finished by itself.
    enum Termination: Sendable {
        /// Its deadline (its own timeout or the release's limit) passed.
        case deadline
        /// The release was stopped (cancel, shutdown).
        case stopped(StopReason)
    }

    /// Waits for the deadline or a stop; then SIGTERM to the group, SIGKILL after the grace.
    /// Returns why it ended the task, or nil when cancelled first (the task ended by itself).
    static func terminate(group pid: pid_t, deadline: ContinuousClock.Instant, control: ReleaseControl, grace: Duration,
                          log: ReleaseLog, task: String) async -> Termination? {
        let reason: Termination? = await withTaskGroup(of: Termination?.self) { race in
            race.addTask {
                do { try await Task.sleep(until: deadline, clock: .continuous) } catch { return nil }
                return .deadline
            }
            race.addTask { await control.wait().map(Termination.stopped) }
            let first = await race.next() ?? nil
            race.cancelAll()
            return first
        }
        guard let reason, !Task.isCancelled else { return nil }
        let why = switch reason {
        case .stopped(.cancelled): "the release was cancelled"
        case .stopped(.shutdown): "the daemon is shutting down"
        case .deadline: "time limit reached"
        }
        log.note("\(task): \(why); sending SIGTERM to its processes", level: .warning)
        kill(-pid, SIGTERM)
        do {
            try await Task.sleep(for: grace)
        } catch {
            return reason
        }
        log.note("\(task): still running after \(DurationParser.format(grace)); sending SIGKILL", level: .warning)
        kill(-pid, SIGKILL)
        return reason
    }

    /// Ends processes the task left in its group after it exited: SIGTERM, then SIGKILL.
    /// (Looks them up in /proc, which must show the task's processes: the per-app-users
    /// drop-in sets ProtectProc=default for that reason.)
    /// `spawned`: when the leader started, which bounds where its group's members can be.
    static func endLeftovers(group pid: pid_t, grace: Duration, log: ReleaseLog, task: String,
                             spawned: ContinuousClock.Instant? = nil) async {
        let recent = spawned.map { ContinuousClock.now - $0 < ProcessGroup.recent } ?? false
        guard pid > 1, kill(-pid, 0) == 0, ProcessGroup.hasLiveMembers(pid, ledByRecentProcess: recent) else { return }
        log.note("\(task) left processes behind; sending them SIGTERM", level: .warning)
        kill(-pid, SIGTERM)
        let clock = ContinuousClock()
        let until = clock.now + grace
        while clock.now < until {
            if kill(-pid, 0) != 0 || !ProcessGroup.hasLiveMembers(pid) { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
        log.note("\(task): leftover processes still running after \(DurationParser.format(grace)); sending SIGKILL", level: .warning)
        kill(-pid, SIGKILL)
    }

    /// Ends processes the task started that left its process group (`setsid`, `setpgid`), found
    /// by the `RELEASE_ID` they inherited: tasks of a release run one after another, so at the
    /// end of one every live process carrying the release's id, started no earlier than the
    /// task, is its leftover. For a task that started moments ago only the pids allocated since
    /// are looked at (see `ProcessGroup`); otherwise all of /proc, reading the environment only
    /// of processes started since the task. The reads run on a thread of their own (reading a
    /// process's environment can block). A process that also clears its environment is beyond
    /// this; under systemd the service's cgroup still ends it when the daemon stops.
    static func endEscapees(release id: String, leader: pid_t, grace: Duration, log: ReleaseLog, task: String,
                            spawned: ContinuousClock.Instant) async {
        let recent = ContinuousClock.now - spawned < ProcessGroup.recent
        guard let since = ProcessGroup.stat(of: leader)?.startTime else { return }
        @Sendable func find() -> [pid_t] {
            let candidates = (ProcessGroup.pids(after: leader, recent: recent) ?? []).filter { pid in
                // Started since the task, alive, not in the task's own group (ended already),
                // and a process rather than one of its threads.
                guard pid != leader, let stat = ProcessGroup.stat(of: pid), stat.isLive, stat.startTime >= since,
                      stat.group != leader else { return false }
                return ProcessGroup.isProcess(pid)
            }
            return ProcessGuard.processes(withReleaseIn: [id], among: candidates)
        }
        var escaped = await BlockingCall.run(find)
        guard !escaped.isEmpty else { return }
        log.note("\(task) left processes outside its process group (pids \(escaped.map(String.init).joined(separator: ", "))); sending them SIGTERM",
                 level: .warning)
        for pid in escaped { kill(pid, SIGTERM) }
        let clock = ContinuousClock()
        let until = clock.now + grace
        while clock.now < until {
            escaped = escaped.filter { ProcessGroup.isLive($0) }
            if escaped.isEmpty { return }
            try? await Task.sleep(for: .milliseconds(20))
        }
        // SIGKILL until none is left: one may fork while being killed. Bounded.
        for round in 0..<5 {
            escaped = await BlockingCall.run(find)
            guard !escaped.isEmpty else { return }
            if round == 0 {
                log.note("\(task): processes outside its group still running after \(DurationParser.format(grace)); sending SIGKILL",
                         level: .warning)
            }
            for pid in escaped { kill(pid, SIGKILL) }
            try? await Task.sleep(for: .milliseconds(20))
        }
    }

    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case SIGKILL: "SIGKILL"
        case SIGTERM: "SIGTERM"
        case SIGINT: "SIGINT"
        case SIGSEGV: "SIGSEGV"
        case SIGABRT: "SIGABRT"
        case SIGHUP: "SIGHUP"
        case SIGPIPE: "SIGPIPE"
        case SIGBUS: "SIGBUS"
        default: "signal \(signal)"
        }
    }
}

/// Waits for a process to exit without reaping it: Subprocess reaps it after the body of
/// `run` returns, so the pid cannot be reused while this waits.
enum ProcessExit {
    static func wait(_ id: ProcessIdentifier) async {
        let pid = id.value
        await BlockingCall.run {
            var info = siginfo_t()
            while waitid(P_PID, id_t(pid), &info, WEXITED | WNOWAIT) < 0 && errno == EINTR {}
        }
    }
}

/// Processes and process groups as /proc shows them.
enum ProcessGroup {
    /// A task whose leader started less than this ago is looked for among the pids allocated
    /// since (see `pids(after:recent:)`). Allocating pid_max pids (32768 at the least) takes the
    /// whole machine far longer than this, so the range cannot have wrapped all the way round
    /// in the meantime.
    static let recent: Duration = .milliseconds(100)

    /// At most this many pids are looked at one by one; a longer range is scanned in /proc.
    static let rangeLimit: pid_t = 512

    /// What /proc/<pid>/stat says of a process.
    struct Stat {
        var state: UInt8
        var group: pid_t
        /// Clock ticks since boot.
        var startTime: UInt64
        /// Neither a zombie nor dead.
        var isLive: Bool { state != UInt8(ascii: "Z") && state != UInt8(ascii: "X") }
    }

    /// The pids where processes a task started can be: its descendants' pids were allocated
    /// after the leader's, in increasing order until they wrap. For a leader that started
    /// moments ago (`recent`) only the pids from the leader's to the last one allocated
    /// (`ns_last_pid`) — a handful, where the whole of /proc costs a millisecond or more per
    /// task. When the pids wrapped since (the last is below the leader's), the range is long,
    /// or `ns_last_pid` cannot be read: every pid in /proc. Nil when /proc cannot be read.
    static func pids(after leader: pid_t, recent: Bool) -> [pid_t]? {
        if recent, let last = lastAllocatedPID(), last >= leader, last - leader <= rangeLimit {
            return last > leader ? Array((leader + 1)...last) : []
        }
        return allPIDs()
    }

    /// Every process in /proc, or nil when it cannot be read.
    static func allPIDs() -> [pid_t]? {
        guard let dir = opendir("/proc") else { return nil }
        defer { closedir(dir) }
        var pids: [pid_t] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix(while: { $0 != 0 }), as: UTF8.self) }
            if let first = name.utf8.first, first >= 48, first <= 57, let pid = pid_t(name) { pids.append(pid) }
        }
        return pids
    }

    /// Whether any process that is not a zombie belongs to the group. (`kill(-pgid, 0)` also
    /// counts zombies that nobody has reaped yet.) A task's group holds only the leader's
    /// descendants (the task has a session of its own, and a process can join only a group of
    /// its own session), so only `pids(after:recent:)` are looked at.
    static func hasLiveMembers(_ pgid: pid_t, ledByRecentProcess: Bool = false) -> Bool {
        guard let pids = pids(after: pgid, recent: ledByRecentProcess) else { return true }
        var buffer = [UInt8](repeating: 0, count: 1024)
        return pids.contains { pid in stat(of: pid, buffer: &buffer).map { $0.group == pgid && $0.isLive } ?? false }
    }

    /// Whether `pid` exists and is not a zombie.
    static func isLive(_ pid: pid_t) -> Bool { stat(of: pid)?.isLive ?? false }

    /// Whether `pid` is a process (its thread-group leader), not another thread of one: /proc
    /// answers for thread ids too.
    static func isProcess(_ pid: pid_t) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 4096)
        guard let bytes = readSmall("/proc/\(pid)/status", into: &buffer) else { return false }
        for line in bytes.split(separator: UInt8(ascii: "\n")) where line.starts(with: Array("Tgid:".utf8)) {
            return pid_t(String(decoding: line.dropFirst(5), as: UTF8.self).trimmingBlanks()) == pid
        }
        return false
    }

    /// A process's state, group and start time; `buffer` may be reused across calls.
    static func stat(of pid: pid_t, buffer: inout [UInt8]) -> Stat? {
        guard let bytes = readSmall("/proc/\(pid)/stat", into: &buffer) else { return nil }
        // "pid (comm) S ppid pgrp …" — comm may hold spaces and parentheses: split after the
        // last ')'. Then state(0) ppid(1) pgrp(2) … starttime(19), field 22 of proc(5).
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")), close + 2 < bytes.endIndex else { return nil }
        let fields = bytes[(close + 2)...].split(separator: UInt8(ascii: " "))
        guard fields.count > 19, let state = fields[0].first,
              let group = pid_t(String(decoding: fields[2], as: UTF8.self)),
              let start = UInt64(String(decoding: fields[19], as: UTF8.self)) else { return nil }
        return Stat(state: state, group: group, startTime: start)
    }

    static func stat(of pid: pid_t) -> Stat? {
        var buffer = [UInt8](repeating: 0, count: 1024)
        return stat(of: pid, buffer: &buffer)
    }

    /// The pid the kernel allocated last in this pid namespace, if readable.
    static func lastAllocatedPID() -> pid_t? {
        var buffer = [UInt8](repeating: 0, count: 32)
        guard let bytes = readSmall("/proc/sys/kernel/ns_last_pid", into: &buffer) else { return nil }
        return pid_t(String(decoding: bytes.prefix { $0 >= 48 && $0 <= 57 }, as: UTF8.self))
    }

    /// The start of a small file, one read into `buffer`; nil when unreadable or empty.
    private static func readSmall(_ path: String, into buffer: inout [UInt8]) -> ArraySlice<UInt8>? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        return n > 0 ? buffer[0..<n] : nil
    }
}
