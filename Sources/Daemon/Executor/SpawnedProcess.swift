import CLinuxSyscalls
import Glibc
import ReleaseKit
import ReleaseSupport
import SystemPackage

/// A host task's process, started by `Spawn` (vfork and execve) in a session of its own and
/// held by its pidfd from then on (opened before anything can reap it: the daemon is its only
/// parent), with the read end of its stdout and stderr (one pipe, so their order is kept)
/// and, when it reads its stdin (a task's starter), the write end of that.
struct SpawnedProcess: Sendable {
    let leader: ProcessHandle
    let output: Int32
    let input: Int32?

    /// How the reaped process ended.
    enum Status: Sendable {
        case exited(Int32)
        case signaled(Int32)
    }

    /// A child `Spawn` started with its stdout (and stderr) to a pipe, and a pidfd.
    init(_ child: ChildProcess) {
        leader = ProcessHandle(child: child.pid, pidfd: child.pidfd)
        output = child.output!
        input = child.input
    }

    /// Writes `bytes` to its stdin and closes it: at once when they fit in what an empty pipe
    /// always holds (`PIPE_BUF`), else on a thread of its own, as the process reads.
    func feed(_ bytes: [UInt8]) async {
        guard let input else { return }
        if bytes.count <= Int(PIPE_BUF) {
            FileOutput.write(input, bytes)
            _ = close(input)
        } else {
            await BlockingCall.run {
                FileOutput.write(input, bytes)
                _ = close(input)
            }
        }
    }

    /// Reaps the exited process: how it ended (or waitid's errno). Closes its pidfd.
    @discardableResult
    func reap() -> Result<Status, Errno> {
        defer { leader.close() }
        var info = siginfo_t()
        let rc = withUnsafeMutablePointer(to: &info) { rc_waitid_usage(RC_P_PIDFD, leader.pidfd, $0, WEXITED, nil) }
        guard rc == 0 else { return .failure(Errno(rawValue: errno)) }
        let status = info._sifields._sigchld.si_status
        return .success(info.si_code == CLD_EXITED ? .exited(status) : .signaled(status))
    }
}
