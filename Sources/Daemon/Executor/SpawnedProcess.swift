import CLinuxSyscalls
import Glibc
import ReleaseKit
import ReleaseSupport
import ReleaseWatcher
import SystemPackage

/// A host task's process, started with vfork and execve (`rc_spawn`) in a session of its own
/// and held by its pidfd from then on (opened before anything can reap it: the daemon is its
/// only parent), with the read end of its stdout and stderr (one pipe, so their order is kept)
/// and, when it reads its stdin (the run-as helper), the write end of that.
struct SpawnedProcess: Sendable {
    let leader: ProcessHandle
    let output: Int32
    let input: Int32?

    /// How the reaped process ended.
    enum Status: Sendable {
        case exited(Int32)
        case signaled(Int32)
    }

    /// Starts `executable` with `argv` (its first element the program's name) and exactly
    /// `environment` ("NAME=value"), in `directory`; stdin from /dev/null unless `input`.
    /// Fails with the errno of the spawn (the exec's included) or of the pipes.
    static func spawn(_ executable: FilePath, argv: [String], environment: [String], directory: FilePath,
                      input: Bool) throws(Errno) -> SpawnedProcess {
        var out: [Int32] = [-1, -1]
        guard rc_pipe_cloexec(&out) == 0 else { throw Errno(rawValue: errno) }
        var stdin: [Int32] = [-1, -1]
        /// Closes what the daemon would have kept (the child's ends are closed once it is spawned).
        func closeOurs() {
            _ = close(out[0])
            if stdin[1] >= 0 { _ = close(stdin[1]) }
        }
        let opened = input ? rc_pipe_cloexec(&stdin) : { stdin[0] = (try? Syscalls.open(FilePath("/dev/null"), O_RDONLY)) ?? -1; return stdin[0] }()
        guard opened >= 0 else {
            let error = Errno(rawValue: errno)
            _ = close(out[1])
            closeOurs()
            throw error
        }
        var pid: pid_t = 0
        let rc = withCStrings(argv) { argv in
            withCStrings(environment) { envp in
                executable.withPlatformString { path in
                    directory.withPlatformString { dir in rc_spawn(&pid, path, argv, envp, dir, stdin[0], out[1]) }
                }
            }
        }
        _ = close(out[1])
        _ = close(stdin[0])
        guard rc == 0 else {
            closeOurs()
            throw Errno(rawValue: rc)
        }
        let pidfd = rc_pidfd_open(pid, 0)
        guard pidfd >= 0 else {
            let error = Errno(rawValue: errno)
            kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
            closeOurs()
            throw error
        }
        return SpawnedProcess(leader: ProcessHandle(child: pid, pidfd: pidfd), output: out[0], input: input ? stdin[1] : nil)
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

    /// `strings` as a NULL-terminated array of C strings, for the length of `body`.
    private static func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> T) -> T {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { pointers.forEach { free($0) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }
}
