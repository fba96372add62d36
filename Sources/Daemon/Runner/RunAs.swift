import Glibc
import ReleaseKit
import SystemPackage
import ReleaseSupport

/// Starts a task as an app's user: `released --run-as UID GID GROUPS EXECUTABLE ARGV0 [ARG…]`
/// (`- - -`: as the daemon's own user, for a task that goes into a systemd scope first).
///
/// The daemon (as root) spawns its own executable with this private flag instead of changing
/// ids in the forked child itself. A child forked from the many-threaded daemon must not call
/// glibc's `setgroups`/`setgid`/`setuid`: they signal every thread the parent had, and wait
/// forever for one that was being created at the moment of the fork. This process is freshly
/// exec'd and single-threaded, so it can switch ids safely, then exec's the task in place
/// (same pid, so the same process group and session the daemon watches).
///
/// The task's environment comes on stdin (each `KEY=value` entry ends with a NUL, and one more
/// NUL ends the list), never in argv (other users can read that in /proc) nor in this
/// process's own environment (a request's `LD_PRELOAD` must never reach a process still
/// running as root). A list cut short (the daemon died while writing it) runs nothing. stdin
/// then becomes /dev/null, as it is for every task. The helper's own environment holds the
/// release's `RELEASE_ID`, so the process guard finds it even before it becomes the task.
///
/// The daemon writes the environment only once the helper is where the task must be (a
/// task's systemd scope, with its limits): until then the helper waits on stdin, so the task
/// can neither run nor fork outside its scope.
enum RunAs {
    static let flag = "--run-as"
    /// The environment read from stdin is at most this large (requests are at most 1 MiB).
    static let environmentLimit = 4 << 20

    /// The arguments after the executable's own name: the ids, then the command.
    static func arguments(for identity: TaskIdentity?, executable: String, argv: [String]) -> [String] {
        guard let identity else { return [flag, "-", "-", "-", executable] + argv }
        let groups = identity.groups.isEmpty ? "-" : identity.groups.map(String.init).joined(separator: ",")
        return [flag, String(identity.uid), String(identity.gid), groups, executable] + argv
    }

    /// A task's environment as `KEY=value` strings, `RELEASE_ID` first: the process guard
    /// looks for it in /proc/<pid>/environ.
    static func assignments(_ environment: [String: String]) -> [String] {
        environment.sorted { $0.key == "RELEASE_ID" && $1.key != "RELEASE_ID" }.map { "\($0.key)=\($0.value)" }
    }

    /// What the helper reads from stdin: each `KEY=value` followed by a NUL, then a NUL.
    static func encode(environment: [String: String]) -> [UInt8] {
        var bytes: [UInt8] = []
        for assignment in assignments(environment) {
            bytes += Array(assignment.utf8)
            bytes.append(0)
        }
        bytes.append(0)
        return bytes
    }

    static func main(_ args: [String]) -> Never {
        let keepIDs = args.count >= 7 && args[2] == "-" && args[3] == "-" && args[4] == "-"
        guard args.count >= 7, args[1] == flag, keepIDs || (uid_t(args[2]) != nil && gid_t(args[3]) != nil) else {
            fail("usage: released --run-as UID GID GROUPS EXECUTABLE ARGV0 [ARG…]", code: 2)
        }
        let uid = uid_t(args[2]) ?? getuid(), gid = gid_t(args[3]) ?? getgid()
        var groups: [gid_t] = []
        if !keepIDs, args[4] != "-" {
            for part in args[4].split(separator: ",") {
                guard let group = gid_t(part) else { fail("run-as: bad group list \(args[4])", code: 2) }
                groups.append(group)
            }
        }
        let executable = args[5]
        let argv = Array(args[6...])
        let environment = readEnvironment()

        guard let null = try? Syscalls.open(FilePath("/dev/null"), O_RDONLY), dup2(null, STDIN_FILENO) == STDIN_FILENO else {
            fail("run-as: cannot open /dev/null: \(lastError())")
        }
        if null != STDIN_FILENO { close(null) }

        if !keepIDs {
            // Groups first (it needs root), then the group id, then the user id.
            guard groups.withUnsafeBufferPointer({ setgroups($0.count, $0.baseAddress) }) == 0 else {
                fail("cannot switch to uid \(uid): setgroups: \(lastError())")
            }
            guard setgid(gid) == 0 else { fail("cannot switch to gid \(gid): \(lastError())") }
            guard setuid(uid) == 0 else { fail("cannot switch to uid \(uid): \(lastError())") }
            // Dropping root must be for good.
            if uid != 0, setuid(0) == 0 { fail("run-as: still able to regain root after setuid(\(uid))") }
        }

        let error = Spawn.replace(with: executable, argv: argv, environment: environment)
        fail("cannot run \(argv[0]): \(error)", code: error == .noSuchFileOrDirectory ? 127 : 126)
    }

    /// Reads stdin to its end and splits it at NULs.
    private static func readEnvironment() -> [String] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { fail("run-as: reading the environment: \(lastError())") }
            if n == 0 { break }
            bytes += chunk[0..<n]
            guard bytes.count <= environmentLimit else { fail("run-as: environment over \(environmentLimit) bytes") }
        }
        // Entries are never empty, so two NULs in a row (or one alone) can only be the end.
        let complete = bytes == [0] || (bytes.count >= 2 && bytes[bytes.count - 1] == 0 && bytes[bytes.count - 2] == 0)
        guard complete else { fail("run-as: the environment was cut short; not starting the task") }
        return bytes.dropLast().split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
    }

    private static func lastError() -> String { String(cString: strerror(errno)) }

    /// Says why on stderr (the task's output, so it lands in the release log) and exits.
    private static func fail(_ message: String, code: Int32 = 126) -> Never {
        FileOutput.write(STDERR_FILENO, message + "\n")
        exit(code)
    }
}
