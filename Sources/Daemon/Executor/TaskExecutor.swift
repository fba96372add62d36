import Glibc
import ReleaseKit
import Synchronization

/// Runs one command of a task and says how it ended: its output streamed into the release log
/// (masked), its deadline and the release's stop enforced, nothing it started left behind.
/// `HostExecutor` runs a process on this host; `ContainerExecutor` runs it in the release's
/// image. Termination itself (SIGTERM, the kill grace, SIGKILL) is `Termination`'s. One
/// executor serves one release, whose tasks run one after another; `finish` comes once its
/// last task has ended and the release's record is durable (its caller is told without
/// waiting for the engine to clean up).
protocol TaskExecutor: Sendable {
    func run(_ command: Command, for context: TaskContext, log: ReleaseLog, control: ReleaseControl) async -> TaskOutcome
    /// Ends what the executor kept for the release's next task (a container).
    func finish() async
}

extension TaskExecutor {
    func finish() async {}
}

/// How a task's command ended, and what it used.
struct TaskOutcome: Sendable {
    enum Ending: Sendable, Equatable {
        case exited(Int32)
        case signaled(Int32)
        /// It could not be started; the reason says why.
        case notStarted(String)
        /// Its deadline (its own timeout or the release's limit) passed; it was ended.
        case timedOut
        /// The release was stopped (cancel, shutdown); it was ended.
        case stopped(StopReason)
        /// The kernel's OOM killer ended it, at its memory limit (if it had one).
        case oomKilled(limit: Int64?)
        /// The daemon ended it for the reason given (it could no longer watch it).
        case ended(String)
    }

    var ending: Ending
    var usage: TaskUsage?

    /// The task's failure, or nil when it succeeded.
    var failure: TaskFailure? {
        switch ending {
        case .exited(0): nil
        case .exited(let code): TaskFailure(.failed, reason: "exited with status \(code)", exitStatus: code)
        case .signaled(let signal): TaskFailure(.failed, reason: "killed by signal \(signal) (\(Self.signalName(signal)))", signal: signal)
        case .notStarted(let reason): TaskFailure(.failed, reason: reason)
        case .timedOut: TaskFailure(.timedOut, reason: "timed out")
        case .stopped(.cancelled): TaskFailure(.cancelled, reason: "cancelled")
        case .stopped(.shutdown): TaskFailure(.cancelled, reason: "interrupted: the daemon shut down")
        case .stopped(.leaseLost): TaskFailure(.cancelled, reason: "interrupted: the cluster lease was lost")
        case .oomKilled(let limit): TaskFailure(.failed, reason: Summary.oomReason(limit: limit), signal: SIGKILL)
        case .ended(let reason): TaskFailure(.failed, reason: reason)
        }
    }

    static func signalName(_ signal: Int32) -> String {
        switch signal {
        case 9: "SIGKILL"
        case 15: "SIGTERM"
        case 2: "SIGINT"
        case 11: "SIGSEGV"
        case 6: "SIGABRT"
        case 1: "SIGHUP"
        case 13: "SIGPIPE"
        case 7: "SIGBUS"
        default: "signal \(signal)"
        }
    }
}

/// What a task used: CPU time (user and system) and its peak memory.
/// What a task's command used (nil: not known).
struct TaskUsage: Sendable, Equatable {
    var cpuMs: Int64?
    var peakMemoryBytes: Int64?

    /// Self, with what self does not know taken from `other`.
    func over(_ other: TaskUsage?) -> TaskUsage {
        TaskUsage(cpuMs: cpuMs ?? other?.cpuMs, peakMemoryBytes: peakMemoryBytes ?? other?.peakMemoryBytes)
    }

    /// Two commands' use, one after the other: CPU added up, the larger peak.
    func then(_ next: TaskUsage) -> TaskUsage {
        func add(_ a: Int64?, _ b: Int64?) -> Int64? { a.map { $0 + (b ?? 0) } ?? b }
        func larger(_ a: Int64?, _ b: Int64?) -> Int64? { a.map { max($0, b ?? $0) } ?? b }
        return TaskUsage(cpuMs: add(cpuMs, next.cpuMs), peakMemoryBytes: larger(peakMemoryBytes, next.peakMemoryBytes))
    }
}

/// The task processes running now, by process group, with the release each belongs to: what
/// a task left behind is told apart from another task's processes by it.
final class RunningTasks: Sendable {
    private let groups = Mutex<[pid_t: String]>([:])

    func insert(group: pid_t, release: String) { groups.withLock { $0[group] = release } }
    func remove(group: pid_t) { _ = groups.withLock { $0.removeValue(forKey: group) } }
    /// The running groups, and the releases of the others than `release`.
    func snapshot(excluding release: String) -> (groups: Set<pid_t>, otherReleases: Set<String>) {
        groups.withLock { g in (Set(g.keys), Set(g.values.filter { $0 != release })) }
    }
}

/// The `TaskProcessRunner` a task's context hands commands to (ReleaseKit's seam): the
/// executor runs them; what each used is kept for the task's record.
final class ExecutorRunner: TaskProcessRunner {
    let executor: any TaskExecutor
    let log: ReleaseLog
    let control: ReleaseControl
    private let used = Mutex<TaskUsage?>(nil)

    init(executor: any TaskExecutor, log: ReleaseLog, control: ReleaseControl) {
        self.executor = executor
        self.log = log
        self.control = control
    }

    /// What the commands run so far used, added up (nil when none reported any).
    var usage: TaskUsage? { used.withLock { $0 } }

    func run(_ command: Command, for context: TaskContext) async throws(TaskFailure) {
        let outcome = await executor.run(command, for: context, log: log, control: control)
        if let u = outcome.usage {
            used.withLock { total in total = total?.then(u) ?? u }
        }
        if let failure = outcome.failure { throw failure }
    }

    func say(_ line: String, for context: TaskContext) {
        log.say(line, task: context.task)
    }
}
