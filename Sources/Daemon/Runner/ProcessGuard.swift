import Glibc
import Logging
import ReleaseContainers
import ReleaseKit
import ReleaseSupport
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
/// The guard also fences a cluster's releases without the daemon: with each lease renewal the
/// daemon tells it the release's deadline (a little before the lease can run out, on the
/// boot-time clock); if the deadline passes before the next one comes — the daemon stopped
/// (SIGSTOP), stalled, starved or cut off and unable to end the tasks itself — the guard ends
/// that release's processes and containers on its own, and keeps ending any that appear until
/// the daemon forgets the release. Which release each group, user and container belongs to is
/// kept in `GuardRegistry`.
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
        // The daemon's own environment (the container engine it may have to run needs it) and
        // outputs; a process group of its own, so that a Ctrl-C meant for the daemon does not
        // reach it; the lock's open file as its fd 3.
        var environment: [String] = []
        var entry = environ
        while let e = entry.pointee { environment.append(String(cString: e)); entry += 1 }
        do throws(Errno) {
            let child = try Spawn.start(FilePath("/proc/self/exe"), argv: ["released", flag], environment: environment,
                                        input: .pipe, output: .descriptor(STDOUT_FILENO), errors: .descriptor(STDERR_FILENO),
                                        group: .processGroup, extra: lock.map { [$0.rawValue] } ?? [], pidfd: false)
            return ProcessGuard(writeFD: child.input!)
        } catch {
            throw SpawnError(errno: error.rawValue)
        }
    }

    public struct SpawnError: Error, CustomStringConvertible {
        public var errno: Int32
        public var description: String { "cannot start the process guard: \(String(cString: strerror(errno)))" }
    }

    /// Registers a task's process group, of release `id`.
    public func register(processGroup: pid_t, release id: String) { send("+\(processGroup) \(id)\n") }

    /// Forgets a process group once it is empty.
    public func unregister(processGroup: pid_t) { send("-\(processGroup)\n") }

    /// Registers a release before any of its tasks starts.
    public func register(release id: String) { send("R\(id)\n") }

    /// Forgets a release once it ended (and its fence deadline with it).
    public func unregister(release id: String) { send("r\(id)\n") }

    /// Registers an app user's task of release `id`: when the daemon dies, every process of
    /// that user started since is killed too (one that left its group and cleared its
    /// environment included).
    public func register(user uid: uid_t, release id: String) { send("U\(uid) \(id)\n") }

    /// Forgets an app user's task once it ended.
    public func unregister(user uid: uid_t, release id: String) { send("u\(uid) \(id)\n") }

    /// Registers a task's container, of release `id`: when the daemon dies, it is removed
    /// through the engine.
    public func register(container name: String, release id: String) { send("C\(name) \(id)\n") }

    /// Forgets a container once its task ended.
    public func unregister(container name: String) { send("c\(name)\n") }

    /// Names the container engine (a path) that removes containers when the daemon dies.
    public func use(engine: String) { send("E\(engine)\n") }

    /// The time by which release `id`'s processes must have ended unless told a later one:
    /// `within` from now. Past it, the guard ends them itself.
    public func fence(release id: String, within: Duration) {
        let (seconds, attoseconds) = within.components
        let deadline = Self.bootClockNanoseconds() + max(0, seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
        send("F\(id) \(deadline)\n")
    }

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
        var registry = GuardRegistry()
        // Containers of fenced releases already removed (each is removed once).
        var removed = Set<String>()
        var pending: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            // Wait for the daemon's next line, or for the earliest fence deadline; while a
            // release is fenced, look for its processes again every 50 ms.
            let now = bootClockNanoseconds()
            var timeout: Int32 = -1
            if let next = registry.nextDeadline { timeout = Int32(clamping: max(0, (next - now + 999_999) / 1_000_000)) }
            if registry.hasFenced { timeout = timeout < 0 ? 50 : min(timeout, 50) }
            var fds = [pollfd(fd: 0, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 1, timeout)
            if ready < 0 && errno != EINTR { break }
            if ready > 0 {
                let n = buffer.withUnsafeMutableBytes { read(0, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                pending.append(contentsOf: buffer[0..<n])
                while let newline = pending.firstIndex(of: UInt8(ascii: "\n")) {
                    let line = String(decoding: pending[..<newline], as: UTF8.self)
                    pending.removeSubrange(...newline)
                    registry.apply(line, now: ticksSinceBoot())
                }
            }
            for id in registry.due(now: bootClockNanoseconds()) {
                FileOutput.write(STDERR_FILENO, "released: process guard: release \(id) reached its lease deadline without a renewal from the daemon; ending its tasks\n")
            }
            for id in registry.fenced.sorted() {
                let containers = registry.containers(of: id).filter { !removed.contains($0) }
                end(release: id, registry, containers: containers)
                removed.formUnion(containers)
            }
        }
        // The daemon is gone: nothing it started may stay.
        for group in registry.allGroups {
            kill(-group, SIGKILL)
        }
        removeContainers(registry.allContainers, registry)
        // Looked for again after a moment: a task the daemon had just forked when it died is
        // not yet running its program (its environment is still the daemon's, its group not
        // registered) and is found once it has.
        for pause in [0, 20_000, 100_000, 400_000] as [useconds_t] {
            usleep(pause)
            endLeftovers(releases: registry.releases, users: registry.userSince)
        }
        exit(0)
    }

    /// Ends what a fenced release has running: its groups, its processes (by `RELEASE_ID`),
    /// its app users' processes started since (when no other live release has that user) and
    /// `containers`, its containers not removed yet.
    private static func end(release id: String, _ registry: GuardRegistry, containers: [String]) {
        for group in registry.groups(of: id) { kill(-group, SIGKILL) }
        endLeftovers(releases: [id], users: registry.usersToSweep(for: id))
        removeContainers(containers, registry)
    }

    /// Removes containers through the engine, at once.
    private static func removeContainers(_ names: [String], _ registry: GuardRegistry) {
        guard let engine = registry.engine, !names.isEmpty else { return }
        var environment: [String] = []
        var entry = environ
        while let e = entry.pointee { environment.append(String(cString: e)); entry += 1 }
        _ = EngineCommand.run(engine, ["rm", "--force", "--time", "0"] + names.sorted(),
                              environment: ContainerEngine.engineEnvironment(environment))
    }

    /// Nanoseconds on the boot-time clock (it goes on counting while the machine sleeps, so a
    /// deadline that passed during a suspend has passed).
    static func bootClockNanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
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
    static func ticksSinceBoot() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_BOOTTIME, &ts)
        let hz = UInt64(max(sysconf(Int32(_SC_CLK_TCK)), 1))
        // A little earlier than now: a task's processes start after its registration.
        let now = UInt64(ts.tv_sec) * hz + UInt64(ts.tv_nsec) * hz / 1_000_000_000
        return now > hz ? now - hz : 0
    }
}
