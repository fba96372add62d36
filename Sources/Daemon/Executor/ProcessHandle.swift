import CLinuxSyscalls
import Glibc
import ReleaseKit
import ReleaseSupport
import Synchronization

/// A process held by its pidfd: signalled and waited for through it, so a pid reused by
/// another process in between is never hit.
struct ProcessHandle: Sendable {
    let pid: pid_t
    /// The handle's to close.
    let pidfd: Int32

    /// A child spawned by this process, with the pidfd opened for it (the handle's to close).
    init(child pid: pid_t, pidfd: Int32) {
        self.pid = pid
        self.pidfd = pidfd
    }

    /// Opens a pidfd for a process found in /proc; nil when it is gone, or when the pid now
    /// belongs to another process than the one that started at `startTime`.
    init?(pid: pid_t, startTime: UInt64?) {
        let fd = rc_pidfd_open(pid, 0)
        guard fd >= 0 else { return nil }
        // The pidfd names whatever holds the pid now: it must be the process that was seen.
        guard let startTime, ProcessTable.stat(of: pid)?.startTime == startTime else {
            _ = Glibc.close(fd)
            return nil
        }
        self.pid = pid
        pidfd = fd
    }

    func close() { _ = Glibc.close(pidfd) }

    /// Sends a signal (nothing when the process is gone).
    func send(_ signal: Int32) {
        if pidfd >= 0 { _ = rc_pidfd_send_signal(pidfd, signal) } else { kill(pid, signal) }
    }

    /// How the exited (not yet reaped) process ended and what it used, with the children it
    /// waited for: the kernel's rusage of it, read without reaping (`waitid(WNOWAIT)`).
    func ending() -> (usage: TaskUsage, killedBy: Int32?)? {
        guard pidfd >= 0 else { return nil }
        var info = siginfo_t()
        var usage = rusage()
        let rc = withUnsafeMutablePointer(to: &info) { i in
            withUnsafeMutablePointer(to: &usage) { u in rc_waitid_usage(RC_P_PIDFD, pidfd, i, WEXITED | WNOWAIT | WNOHANG, u) }
        }
        guard rc == 0 else { return nil }
        let cpu = (Int64(usage.ru_utime.tv_sec) + Int64(usage.ru_stime.tv_sec)) * 1000
            + (Int64(usage.ru_utime.tv_usec) + Int64(usage.ru_stime.tv_usec)) / 1000
        let killed = info.si_code == CLD_KILLED || info.si_code == CLD_DUMPED ? info._sifields._sigchld.si_status : nil
        return (TaskUsage(cpuMs: cpu, peakMemoryBytes: Int64(usage.ru_maxrss) * 1024), killed)
    }
}

/// A task's process group: signalled as a whole; gone when no member is alive (a zombie
/// leader not yet reaped does not count).
struct ProcessGroupTarget: Terminable {
    let group: pid_t

    func send(_ signal: Int32) async { kill(-group, signal) }

    func isGone() async -> Bool {
        guard group > 1, kill(-group, 0) == 0 else { return true }
        return !ProcessTable.hasLiveMembers(group)
    }
}

/// Processes found by a search of /proc (a task's escapees), each held by a pidfd; looked for
/// again (on a thread of its own) each time it is asked whether they are gone.
final class ProcessSetTarget: Terminable {
    private let find: @Sendable () -> [ProcessHandle]
    private let handles = Mutex<[ProcessHandle]>([])

    init(find: @escaping @Sendable () -> [ProcessHandle]) {
        self.find = find
    }

    /// Looks for the processes again; returns what is found.
    @discardableResult
    func refresh() async -> [ProcessHandle] {
        let find = find
        let found = await BlockingCall.run(find)
        let old = handles.withLock { h -> [ProcessHandle] in defer { h = found }; return h }
        old.forEach { $0.close() }
        return found
    }

    func send(_ signal: Int32) async {
        for handle in handles.withLock({ $0 }) { handle.send(signal) }
    }

    func isGone() async -> Bool { await refresh().isEmpty }

    /// Closes the pidfds held.
    func close() {
        handles.withLock { h in
            h.forEach { $0.close() }
            h = []
        }
    }
}
