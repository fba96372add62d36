import CLinuxSyscalls
import Glibc
import SystemPackage

/// The one way the project starts a process: vfork and execve (`rc_spawn_fds`: no fork of a
/// many-threaded process, no child stack to map and unmap), with exactly the environment
/// given, every signal's default disposition and an empty mask, the descriptors asked for and
/// no other, and — for a child the caller supervises — a pidfd opened before anything can reap
/// it. Host tasks' starter (`releasectl-init --run-as`), the process guard, the container
/// engine's commands, its containers and its pulls all start here.
public enum Spawn {
    /// The child's stdin.
    public enum Input: Sendable {
        /// /dev/null.
        case null
        /// A pipe whose write end the caller gets (`ChildProcess.input`).
        case pipe
        /// A copy of this descriptor (the caller keeps and closes its own).
        case descriptor(Int32)
    }

    /// The child's stdout, and its stderr.
    public enum Output: Sendable {
        /// A pipe whose read end the caller gets.
        case pipe
        /// For stderr: stdout's pipe too (their order kept).
        case toOutput
        /// A copy of this descriptor (the caller's own stdout or stderr, say).
        case descriptor(Int32)
        /// /dev/null.
        case null
    }

    /// Where the child stands among process groups.
    public enum Group: Sendable {
        /// A session of its own (and so a process group of its own, without a terminal).
        case session
        /// A process group of its own in the caller's session.
        case processGroup
        /// The caller's.
        case inherit
    }

    /// Starts `executable` (a path: no lookup here) with `argv` (its first element the
    /// program's name) and `environment` (`NAME=value`); descriptors 3, 4, … are copies of
    /// `extra`. Fails with the errno of the pipes, the spawn or the exec.
    public static func start(_ executable: FilePath, argv: [String], environment: [String], directory: FilePath? = nil,
                             input: Input = .null, output: Output = .pipe, errors: Output = .toOutput, group: Group = .session,
                             extra: [Int32] = [], pidfd wantsPidfd: Bool = true) throws(Errno) -> ChildProcess {
        var opened: [Int32] = []   // every descriptor made here, closed on failure
        var childEnds: [Int32] = [] // those the child gets copies of, closed here once it has them
        func fail(_ error: Errno) -> Errno {
            opened.forEach(Syscalls.close)
            return error
        }
        func pipe() throws(Errno) -> (read: Int32, write: Int32) {
            var fds: [Int32] = [-1, -1]
            guard rc_pipe_cloexec(&fds) == 0 else { throw fail(Errno(rawValue: errno)) }
            opened += fds
            return (fds[0], fds[1])
        }
        func null(_ flags: Int32) throws(Errno) -> Int32 {
            do throws(Errno) {
                let fd = try Syscalls.open(FilePath("/dev/null"), flags)
                opened.append(fd)
                childEnds.append(fd)
                return fd
            } catch {
                throw fail(error)
            }
        }
        var ours = (input: Int32?.none, output: Int32?.none, errors: Int32?.none)
        let stdin: Int32
        switch input {
        case .null: stdin = try null(O_RDONLY)
        case .descriptor(let fd): stdin = fd
        case .pipe:
            let p = try pipe()
            (stdin, ours.input) = (p.read, p.write)
            childEnds.append(p.read)
        }
        func target(_ output: Output, stdout: Int32?) throws(Errno) -> (child: Int32, ours: Int32?) {
            switch output {
            case .descriptor(let fd): return (fd, nil)
            case .null: return (try null(O_WRONLY), nil)
            case .toOutput:
                guard let stdout else { throw fail(.invalidArgument) }
                return (stdout, nil)
            case .pipe:
                let p = try pipe()
                childEnds.append(p.write)
                return (p.write, p.read)
            }
        }
        let out = try target(output, stdout: nil)
        let err = try target(errors, stdout: out.child)
        ours.output = out.ours
        ours.errors = err.ours
        let fds = [stdin, out.child, err.child] + extra
        guard fds.count <= Int(RC_SPAWN_MAX_FDS) else { throw fail(.invalidArgument) }
        let flags: Int32 = switch group {
        case .session: RC_SPAWN_SETSID
        case .processGroup: RC_SPAWN_SETPGROUP
        case .inherit: 0
        }
        var pid: pid_t = 0
        let rc = withCStrings(argv) { argv in
            withCStrings(environment) { envp in
                executable.withPlatformString { path in
                    withOptionalPath(directory) { dir in rc_spawn_fds(&pid, path, argv, envp, dir, fds, Int32(fds.count), flags) }
                }
            }
        }
        guard rc == 0 else { throw fail(Errno(rawValue: rc)) }
        childEnds.forEach(Syscalls.close)
        var pidfd: Int32 = -1
        if wantsPidfd {
            pidfd = rc_pidfd_open(pid, 0)
            guard pidfd >= 0 else {
                let error = Errno(rawValue: errno)
                kill(pid, SIGKILL)
                var status: Int32 = 0
                _ = waitpid(pid, &status, 0)
                [ours.input, ours.output, ours.errors].compactMap { $0 }.forEach(Syscalls.close)
                throw error
            }
        }
        return ChildProcess(pid: pid, pidfd: pidfd, input: ours.input, output: ours.output, errors: ours.errors)
    }

    /// `strings` as a NULL-terminated array of C strings, for the length of `body`.
    private static func withCStrings<T>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> T) -> T {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { pointers.forEach { free($0) } }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
    }

    private static func withOptionalPath<T>(_ path: FilePath?, _ body: (UnsafePointer<CChar>?) -> T) -> T {
        guard let path else { return body(nil) }
        return path.withPlatformString { body($0) }
    }
}

/// A process `Spawn.start` started: its pid, its pidfd (-1 when none was asked for), and the
/// caller's ends of its pipes, each the caller's to close.
public struct ChildProcess: Sendable {
    public let pid: pid_t
    public let pidfd: Int32
    /// The write end of its stdin, with `Spawn.Input.pipe`.
    public let input: Int32?
    /// The read end of its stdout (and stderr, with `errors: .toOutput`), with `.pipe`.
    public let output: Int32?
    /// The read end of its stderr, with `errors: .pipe`.
    public let errors: Int32?

    /// How a child ended.
    public enum Status: Sendable, Equatable {
        case exited(Int32)
        case signaled(Int32)

        /// As a shell says it: the exit status, or 128 + the signal.
        public var code: Int32 {
            switch self {
            case .exited(let code): code
            case .signaled(let signal): 128 + signal
            }
        }
    }

    /// Waits for it to end and reaps it (blocking; by its pid: for a child no one else waits
    /// for). Closes its pidfd.
    public func wait() -> Status {
        defer { if pidfd >= 0 { Syscalls.close(pidfd) } }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        return (status & 0x7f) == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
    }
}
