import Glibc
import ReleaseKit

/// `releasectl-init`, the small static program (Sources/releasectl-init/main.c) that starts
/// an image release's task inside its container: bind-mounted read-only at `mountPoint` and
/// made the container's entrypoint, it reads the task's command and environment from its
/// stdin — fed by the daemon through the engine — and execs the command with the image's
/// environment and the task's over it.
///
/// So a task's values travel only down a pipe: never in the argv or the environment of the
/// engine (which runs as root, with network plugins and iptables that read their own
/// environment: a request's `XTABLES_LIBDIR` or `LD_PRELOAD` there would run code as root),
/// and never in a file. Any value a host task can take reaches an image task, line breaks
/// and `=` signs included.
public struct ContainerInit: Sendable, Equatable {
    /// The program on the host.
    public let path: String

    /// The program's name, as installed.
    public static let name = "releasectl-init"
    /// Where the container sees it.
    public static let mountPoint = "/.releasectl/init"
    /// The longest message the program reads (it refuses anything longer).
    public static let messageLimit = 16 << 20

    /// Where an installation keeps the program, for an executable at `executable`: beside it
    /// (a build folder, `script/install`'s prefix), else `../libexec/releasectl/` (the package).
    public static func candidates(besides executable: String) -> [String] {
        let folder = executable.hasPrefix("/") ? String(executable[..<(executable.lastIndex(of: "/") ?? executable.startIndex)]) : "."
        let parent = folder.lastIndex(of: "/").map { String(folder[..<$0]) } ?? ""
        return [folder + "/" + name, parent + "/libexec/releasectl/" + name]
    }

    /// The first candidate that is installed as a program must be: a regular executable file
    /// owned by root (or the daemon's user) that no one else can write, with a path the
    /// engine's `--mount` can carry. Else why none is usable.
    public static func locate(besides executable: String) -> Result<ContainerInit, InitMissing> {
        var problems: [String] = []
        for candidate in candidates(besides: executable) {
            var st = stat()
            guard stat(candidate, &st) == 0 else {
                problems.append("\(candidate): \(String(cString: strerror(errno)))")
                continue
            }
            if st.st_mode & S_IFMT != S_IFREG || st.st_mode & 0o111 == 0 {
                problems.append("\(candidate): not an executable file")
            } else if st.st_uid != 0 && st.st_uid != geteuid() {
                problems.append("\(candidate): owned by uid \(st.st_uid), not by root")
            } else if st.st_mode & 0o022 != 0 {
                problems.append("\(candidate): writable by its group or others")
            } else if candidate.contains(",") || Syntax.hasControlCharacters(candidate) {
                problems.append("\(candidate): a comma or control character in its path")
            } else {
                return .success(ContainerInit(path: candidate))
            }
        }
        return .failure(InitMissing(problems: problems))
    }

    /// Why no `releasectl-init` can be used.
    public struct InitMissing: Error, Sendable, Equatable, CustomStringConvertible {
        public var problems: [String]
        public var description: String {
            "\(ContainerInit.name), which starts an image release's task in its container, is not usable (\(problems.joined(separator: "; "))): install it (script/build-init builds it)"
        }
    }

    /// The engine's options that make it the container's entrypoint, read-only.
    public var engineArguments: [String] {
        ["--mount", "type=bind,source=\(path),destination=\(Self.mountPoint),ro=true", "--entrypoint", Self.mountPoint]
    }

    /// What the program reads from stdin: `RCI1`, the counts of `argv` and of `environment`,
    /// then each string as a little-endian u32 length and its bytes; the variables as
    /// `NAME=value`, in name order. (No string holds a NUL: requests cannot carry one.)
    public static func message(argv: [String], environment: [String: String]) -> [UInt8] {
        var bytes = Array("RCI1".utf8)
        func append(_ n: Int) {
            let v = UInt32(n)
            bytes += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)]
        }
        append(argv.count)
        append(environment.count)
        for string in argv + environment.sorted(by: { $0.key < $1.key }).map({ "\($0.key)=\($0.value)" }) {
            append(string.utf8.count)
            bytes += string.utf8
        }
        return bytes
    }
}
