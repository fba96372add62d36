import Glibc
import ReleaseContainers
import ReleaseKit
import Logging
import Synchronization
import SystemPackage

/// Makes sure no task process outlives the daemon, even a daemon killed with SIGKILL.
///
/// Every task runs in a process group of its own. At start the daemon spawns a small guard
/// process (`released --process-guard`) whose stdin is a pipe only the daemon holds (the
/// write end is close-on-exec, so tasks never inherit it). The daemon tells the guard each
/// task's process group as it starts and ends. When the daemon dies, however it dies, the
/// kernel closes the pipe; the guard sees end-of-file and SIGKILLs every group still
/// registered. A group is known only once its process runs, so the daemon also registers each
/// release's id before any of its tasks starts: at the end the guard also kills every process
/// (and its group) whose environment holds `RELEASE_ID=<a registered id>` — that covers a task
/// the daemon died too early to register — and, for tasks of an app's own user, every process
/// of that user started since its first task did. `PR_SET_PDEATHSIG` on the direct child alone would not do: a shell may fork its
/// last command instead of exec-ing it. Under systemd the service's cgroup does the same job.
///
/// The guard holds the spool lock's guard byte (as fd 3) until it has done all this, so the
/// next daemon on the spool starts no task before (see `SpoolLock`).
public final class ProcessGuard: Sendable {
    public static let flag = "--process-guard"
    private static let lockFD: Int32 = 3

    private let writeFD: Int32

    private init(writeFD: Int32) {
        self.writeFD = writeFD
    }

    /// Spawns the guard from this very executable, handing it `lock` (the open file holding the
    /// spool lock's guard byte; closed here, so only the guard holds it).
    public static func spawn(holding lock: FileDescriptor?) throws(SpawnError) -> ProcessGuard {
        defer { if let lock { close(lock.rawValue) } }
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SpawnError(errno: errno) }
        _ = fcntl(fds[1], F_SETFD, FD_CLOEXEC)
        _ = fcntl(fds[0], F_SETFD, FD_CLOEXEC)
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, fds[0], 0)
        if let lock { posix_spawn_file_actions_adddup2(&actions, lock.rawValue, lockFD) }
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        // Its own process group: a Ctrl-C meant for the daemon must not reach the guard.
        posix_spawnattr_setflags(&attr, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attr, 0)
        let exe = "/proc/self/exe"
        var child: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = [strdup("released"), strdup(flag), nil]
        defer { argv.forEach { free($0) } }
        // The daemon's own environment: the container engine it may have to run needs it.
        let rc = posix_spawn(&child, exe, &actions, &attr, argv, environ)
        close(fds[0])
        guard rc == 0 else {
            close(fds[1])
            throw SpawnError(errno: rc)
        }
        return ProcessGuard(writeFD: fds[1])
    }

    public struct SpawnError: Error, CustomStringConvertible {
        public var errno: Int32
        public var description: String { "cannot start the process guard: \(String(cString: strerror(errno)))" }
    }

    /// Registers a task's process group.
    public func register(processGroup: pid_t) { send("+\(processGroup)\n") }

    /// Forgets a process group once it is empty.
    public func unregister(processGroup: pid_t) { send("-\(processGroup)\n") }

    /// Registers a release before any of its tasks starts.
    public func register(release id: String) { send("R\(id)\n") }

    /// Forgets a release once it ended.
    public func unregister(release id: String) { send("r\(id)\n") }

    /// Registers an app user's task: when the daemon dies, every process of that user started
    /// since is killed too (one that left its group and cleared its environment included).
    public func register(user uid: uid_t) { send("U\(uid)\n") }

    /// Forgets an app user's task once it ended.
    public func unregister(user uid: uid_t) { send("u\(uid)\n") }

    /// Registers a task's container: when the daemon dies, it is removed through the engine.
    public func register(container name: String) { send("C\(name)\n") }

    /// Forgets a container once its task ended.
    public func unregister(container name: String) { send("c\(name)\n") }

    /// Names the container engine (a path) that removes containers when the daemon dies.
    public func use(engine: String) { send("E\(engine)\n") }

    private func send(_ line: String) {
        FileOutput.write(writeFD, line)
    }

    /// The guard's main loop: runs in the child, never returns.
    public static func runGuard() -> Never {
        // The spool lock's guard byte (if it was handed one), let go at exit: not handed on to
        // the container engine it may run.
        _ = fcntl(lockFD, F_SETFD, FD_CLOEXEC)
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        signal(SIGHUP, SIG_IGN)
        signal(SIGPIPE, SIG_IGN)
        var groups = Set<pid_t>()
        var releases = Set<String>()
        // App users with tasks running: how many, and since when (clock ticks since boot).
        var users: [uid_t: (count: Int, since: UInt64)] = [:]
        var containers = Set<String>()
        var engine: String?
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            pending.append(contentsOf: buffer[0..<n])
            while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                let line = String(decoding: pending[..<newline], as: UTF8.self)
                pending.removeSubrange(...newline)
                guard let op = line.first else { continue }
                let argument = String(line.dropFirst())
                switch op {
                case "R": releases.insert(argument)
                case "r": releases.remove(argument)
                case "C": containers.insert(argument)
                case "c": containers.remove(argument)
                case "E": engine = argument
                case "U", "u":
                    guard let uid = uid_t(argument), uid != 0 else { continue }
                    if op == "U" {
                        let entry = users[uid] ?? (0, ticksSinceBoot())
                        users[uid] = (entry.count + 1, entry.since)
                    } else if let entry = users[uid] {
                        users[uid] = entry.count > 1 ? (entry.count - 1, entry.since) : nil
                    }
                case "+", "-":
                    guard let group = pid_t(argument), group > 1 else { continue }
                    if op == "+" { groups.insert(group) } else { groups.remove(group) }
                default: continue
                }
            }
        }
        // The daemon is gone: nothing it started may stay.
        for group in groups {
            kill(-group, SIGKILL)
        }
        if let engine, !containers.isEmpty {
            var environment: [String] = []
            var entry = environ
            while let e = entry.pointee { environment.append(String(cString: e)); entry += 1 }
            _ = EngineCommand.run(engine, ["rm", "--force", "--time", "0"] + containers.sorted(),
                                  environment: ContainerEngine.engineEnvironment(environment))
        }
        // Looked for again after a moment: a task the daemon had just forked when it died is
        // not yet running its program (its environment is still the daemon's, its group not
        // registered) and is found once it has.
        for pause in [0, 20_000, 100_000, 400_000] as [useconds_t] {
            usleep(pause)
            endLeftovers(releases: releases, users: users)
        }
        exit(0)
    }

    /// Ends every process of the releases (SIGKILL, again until none is left, for at most
    /// `within`); returns how many there were at first, and how many were still there at the end.
    static func endAll(releases: Set<String>, within: Duration) async -> (found: Int, left: Int) {
        let clock = ContinuousClock(), until = clock.now + within
        let found = ProcessTable.processes(withReleaseIn: releases).count
        var left = found
        while left > 0, clock.now < until {
            endLeftovers(releases: releases)
            try? await Task.sleep(for: .milliseconds(20))
            left = ProcessTable.processes(withReleaseIn: releases).count
        }
        return (found, left)
    }

    /// SIGKILL to every process (and its group) of the releases, and of the app users since
    /// their first task.
    static func endLeftovers(releases: Set<String>, users: [uid_t: (count: Int, since: UInt64)] = [:]) {
        var leftovers = releases.isEmpty ? [] : ProcessTable.processes(withReleaseIn: releases)
        if !users.isEmpty {
            leftovers += (ProcessTable.allPIDs() ?? []).filter { pid in
                guard let uid = ProcessTable.realUID(of: pid), let entry = users[uid],
                      let start = ProcessTable.stat(of: pid)?.startTime else { return false }
                return start >= entry.since
            }
        }
        for pid in leftovers where pid > 1 && pid != getpid() {
            let group = getpgid(pid)
            if group > 1 && group != getpgrp() { kill(-group, SIGKILL) }
            kill(pid, SIGKILL)
        }
    }

    /// Clock ticks since boot, the unit of a process's start time in /proc/<pid>/stat.
    private static func ticksSinceBoot() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        let hz = UInt64(max(sysconf(Int32(_SC_CLK_TCK)), 1))
        // A little earlier than now: a task's processes start after its registration.
        let now = UInt64(ts.tv_sec) * hz + UInt64(ts.tv_nsec) * hz / 1_000_000_000
        return now > hz ? now - hz : 0
    }
}
