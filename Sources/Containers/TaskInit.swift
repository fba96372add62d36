import Glibc
import ReleaseKit

/// `releasectl-init`, the small static program (Sources/releasectl-init/main.c) that starts
/// release tasks and reports what each used, none of it its own:
///
/// - **In a container**, bind-mounted read-only at `mountPoint` and made the entrypoint, it
///   must be the container's PID 1 and runs an image release's tasks one after another as the
///   daemon's messages on its stdin (fed through the engine) say: a new `key` and a `task`
///   each time the one before has ended, `signal` to stop the running one. After each task's
///   output comes its `Report`, marked by that task's key (see `ReportScanner`), so no report
///   counts for another task.
/// - **On the host**, `releasectl-init --run-as UID GID GROUPS EXECUTABLE ARGV0 [ARG…]` starts
///   one host task as the app's user (`- - -`: the daemon's own), its environment read from
///   stdin (`runAsEnvironment`); its report comes on descriptor 3.
///
/// So a task's values travel only down a pipe: never in the argv or the environment of the
/// engine (which runs as root, with network plugins and iptables that read their own
/// environment: a request's `XTABLES_LIBDIR` or `LD_PRELOAD` there would run code as root),
/// and never in a file. And the task is forked from a program of a few hundred KiB, so the
/// peak memory its rusage reports is its own (a process exec'd from the daemon inherits the
/// daemon's peak).
public struct TaskInit: Sendable, Equatable {
    /// The program on the host.
    public let path: String

    /// The program's name, as installed.
    public static let name = "releasectl-init"
    /// Where a container sees it.
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
    public static func locate(besides executable: String) -> Result<TaskInit, InitMissing> {
        var problems: [String] = []
        for candidate in candidates(besides: executable) {
            var st = stat()
            guard stat(candidate, &st) == 0 else {
                problems.append("\(candidate): \(String(cString: strerror(errno)))")
                continue
            }
            if st.st_mode & S_IFMT != S_IFREG || st.st_mode & 0o111 == 0 {
                problems.append("\(candidate): not an executable file")
            } else if st.st_mode & 0o001 == 0 {
                // A container runs it as the app's user, through a bind mount.
                problems.append("\(candidate): not executable by others (chmod o+x: a container's user runs it)")
            } else if st.st_uid != 0 && st.st_uid != geteuid() {
                problems.append("\(candidate): owned by uid \(st.st_uid), not by root")
            } else if st.st_mode & 0o022 != 0 {
                problems.append("\(candidate): writable by its group or others")
            } else if candidate.contains(",") || Syntax.hasControlCharacters(candidate) {
                problems.append("\(candidate): a comma or control character in its path")
            } else {
                return .success(TaskInit(path: candidate))
            }
        }
        return .failure(InitMissing(problems: problems))
    }

    /// Why no `releasectl-init` can be used.
    public struct InitMissing: Error, Sendable, Equatable, CustomStringConvertible {
        public var problems: [String]
        public var description: String {
            "\(TaskInit.name), which starts release tasks, is not usable (\(problems.joined(separator: "; "))): install it (script/build-init builds it)"
        }
    }

    /// The engine's options that make it the container's entrypoint, read-only.
    public var engineArguments: [String] {
        ["--mount", "type=bind,source=\(path),destination=\(Self.mountPoint),ro=true", "--entrypoint", Self.mountPoint]
    }

    // MARK: In a container: messages

    /// The key that marks the next task's reports, sent before it (1 to 64 letters and
    /// digits); the first is answered with `ready`.
    public static func key(_ key: String) -> [UInt8] { frame("K", Array(key.utf8)) }

    /// Runs a task: the counts of `argv` and of `environment`, then each string as a
    /// little-endian u32 length and its bytes; the variables as `NAME=value`, in name order,
    /// over the image's. (No string holds a NUL: requests cannot carry one.)
    public static func task(argv: [String], environment: [String: String]) -> [UInt8] {
        var payload: [UInt8] = []
        append(argv.count, to: &payload)
        append(environment.count, to: &payload)
        for string in argv + environment.sorted(by: { $0.key < $1.key }).map({ "\($0.key)=\($0.value)" }) {
            append(string.utf8.count, to: &payload)
            payload += string.utf8
        }
        return frame("T", payload)
    }

    /// Sends `signal` to the running task's process group (nothing when none runs).
    public static func signal(_ signal: Int32) -> [UInt8] {
        var payload: [UInt8] = []
        append(Int(signal), to: &payload)
        return frame("S", payload)
    }

    private static func frame(_ type: Character, _ payload: [UInt8]) -> [UInt8] {
        var bytes = [type.asciiValue!]
        append(payload.count, to: &bytes)
        return bytes + payload
    }

    private static func append(_ n: Int, to bytes: inout [UInt8]) {
        let v = UInt32(n)
        bytes += [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)]
    }

    // MARK: On the host

    /// The flag of the host mode.
    public static let runAsFlag = "--run-as"

    /// `--run-as` and the ids (`- - -` for none), then the command.
    public static func runAsArguments(uid: uid_t?, gid: gid_t?, groups: [gid_t], executable: String, argv: [String]) -> [String] {
        guard let uid, let gid else { return [runAsFlag, "-", "-", "-", executable] + argv }
        let list = groups.isEmpty ? "-" : groups.map(String.init).joined(separator: ",")
        return [runAsFlag, String(uid), String(gid), list, executable] + argv
    }

    /// A host task's environment as its stdin carries it: each `NAME=value` followed by a
    /// NUL, `RELEASE_ID` first (the process guard looks for it), then one more NUL.
    public static func runAsEnvironment(_ environment: [String: String]) -> [UInt8] {
        var bytes: [UInt8] = []
        for assignment in assignments(environment) {
            bytes += assignment.utf8
            bytes.append(0)
        }
        bytes.append(0)
        return bytes
    }

    /// An environment as `NAME=value` strings, `RELEASE_ID` first.
    public static func assignments(_ environment: [String: String]) -> [String] {
        environment.sorted { $0.key == "RELEASE_ID" && $1.key != "RELEASE_ID" }.map { "\($0.key)=\($0.value)" }
    }

    /// The longest host environment the program takes (requests are at most 1 MiB).
    public static let runAsEnvironmentLimit = 4 << 20

    // MARK: Reports

    /// What the program reports.
    public enum Report: Sendable, Equatable {
        /// It runs (in a container: the answer to the first key).
        case ready
        /// The task changed the program's own limits, nice value, CPU affinity or I/O
        /// priority (it runs as the same user): the next task must not inherit them.
        case limitsChanged
        /// It ran: its exit status or signal, and what it used (the task's processes, with
        /// the children they waited for: user + system CPU, the largest resident set).
        case ended(Ending, cpuMicros: Int64, maxRSSKiB: Int64)
        /// It could not be started (126: not runnable, 127: not found, 2: the starter's own
        /// arguments): the step that failed and its errno. No text of the task's is in it: see
        /// `startFailure`.
        case failed(code: Int32, errno: Int32, step: StartStep)
        /// The program cannot go on (the daemon's messages cannot be understood, or it is out
        /// of memory), and exits.
        case fatal(String)

        public enum Ending: Sendable, Equatable {
            case exited(Int32)
            case signaled(Int32)
        }

        /// The largest figures a report may give (beyond them it is malformed): 2^53 µs of CPU
        /// and 2^40 KiB, so that no sum or product of them can overflow.
        static let cpuLimit: Int64 = 1 << 53
        static let rssLimit: Int64 = 1 << 40

        /// A report's text (after the key): `ready`, `limits-changed`,
        /// `ended exit 0 cpu_us 12 maxrss_kb 900`, `ended signal 9 …`, `failed 127 2 exec`,
        /// `fatal a malformed task`; nil when malformed.
        public init?(_ text: Substring) {
            switch text {
            case "ready": self = .ready; return
            case "limits-changed": self = .limitsChanged; return
            default: break
            }
            if text.hasPrefix("fatal ") {
                self = .fatal(String(text.dropFirst("fatal ".count)))
                return
            }
            let parts = text.split(separator: " ", omittingEmptySubsequences: false)
            if parts.count == 4, parts[0] == "failed", let code = Int32(parts[1]), [2, 126, 127].contains(code),
               let errno = Int32(parts[2]), errno >= 0, let step = StartStep(rawValue: String(parts[3])) {
                self = .failed(code: code, errno: errno, step: step)
                return
            }
            guard parts.count == 7, parts[0] == "ended", parts[3] == "cpu_us", parts[5] == "maxrss_kb",
                  let value = Int32(parts[2]), let cpu = Int64(parts[4]), let rss = Int64(parts[6]),
                  (0...Self.cpuLimit).contains(cpu), (0...Self.rssLimit).contains(rss) else { return nil }
            switch parts[1] {
            case "exit" where (0...255).contains(value): self = .ended(.exited(value), cpuMicros: cpu, maxRSSKiB: rss)
            case "signal" where (1...64).contains(value): self = .ended(.signaled(value), cpuMicros: cpu, maxRSSKiB: rss)
            default: return nil
            }
        }
    }

    /// The step at which a task could not be started.
    public enum StartStep: String, Sendable {
        /// The exec of its command.
        case exec
        /// Its stdin (/dev/null) and stderr.
        case stdin
        /// The pipe its start is watched through, or the fork.
        case pipe, fork
        /// The switch to the app's user (on the host).
        case setgroups, setgid, setuid
        /// After the switch it could still become root again: refused.
        case regainRoot = "regain-root"
        /// Its environment (on the host) was cut short or too large.
        case environment
        /// The starter was out of memory.
        case memory
        /// The starter refused its own arguments (the daemon's, never a task's).
        case usage
    }

    /// A `failed` report in words, for a task whose command is `program`, looked up in
    /// `path` when it has no slash: every part of it the daemon's own copy, none the program's.
    public static func startFailure(errno: Int32, step: StartStep, program: String, path: String?) -> String {
        let reason = String(cString: strerror(errno))
        switch step {
        case .exec where errno == ENOENT && !program.contains("/"):
            return "command not found: \(program) (PATH=\(path ?? ""))"
        case .exec: return "cannot run \(program): \(reason)"
        case .stdin: return "cannot give \(program) /dev/null as its stdin: \(reason)"
        case .pipe: return "cannot make a pipe: \(reason)"
        case .fork: return "cannot fork: \(reason)"
        case .setgroups, .setgid, .setuid: return "cannot switch to the app's user (\(step.rawValue)): \(reason)"
        case .regainRoot: return "the app's user could become root again after the switch; not started"
        case .environment: return "its environment was cut short or over the limit"
        case .memory: return "out of memory"
        case .usage: return "\(TaskInit.name) refused its arguments"
        }
    }
}

/// Splits a container's output stream into the running task's output and the init's
/// reports, which follow each task's output marked by the running task's key:
/// `\u{1E}releasectl-init KEY ` and the report's text, up to a line break. Bytes that may be
/// the start of a marker are held back until the next bytes tell; everything else passes on
/// as it comes. A task that prints a marker without the key (it cannot know it) prints text.
public struct ReportScanner: Sendable {
    private let marker: [UInt8]
    /// Bytes held back: a prefix of the marker, or (in a report) the report so far.
    private var held: [UInt8] = []
    private var inReport = false

    /// Reports are at most this long; a longer one is malformed.
    static let reportLimit = 8192

    public init(key: String) {
        marker = Array("\u{1E}\(TaskInit.name) \(key) ".utf8)
    }

    /// What a piece of the stream holds, in order.
    public enum Piece: Sendable, Equatable {
        case output([UInt8])
        /// A report's text (nil when it could not be read).
        case report(TaskInit.Report?)
    }

    /// Takes the next bytes of the stream; returns what they complete. (The marker's only
    /// `\u{1E}` is its first byte, so output up to the next one passes on whole.)
    public mutating func scan(_ bytes: UnsafeRawBufferPointer) -> [Piece] {
        var pieces: [Piece] = []
        var output: [UInt8] = []
        var i = 0
        let count = bytes.count
        while i < count {
            if inReport {
                let end = (i..<count).first { bytes[$0] == UInt8(ascii: "\n") }
                let upTo = end ?? count
                held += bytes[i..<min(upTo, i + max(0, Self.reportLimit - held.count))]
                i = upTo
                guard end != nil else { continue }
                i += 1
                if !output.isEmpty { pieces.append(.output(output)) }
                output = []
                pieces.append(.report(TaskInit.Report(Substring(decoding: held, as: UTF8.self))))
                held = []
                inReport = false
            } else if held.isEmpty {
                let start = (i..<count).first { bytes[$0] == marker[0] } ?? count
                output += bytes[i..<start]
                i = start
                if i < count {
                    held = [marker[0]]
                    i += 1
                }
            } else if bytes[i] == marker[held.count] {
                held.append(bytes[i])
                i += 1
                if held.count == marker.count {
                    held = []
                    inReport = true
                }
            } else {
                // Not a marker: what was held is output; this byte is looked at afresh.
                output += held
                held = []
            }
        }
        if !output.isEmpty { pieces.append(.output(output)) }
        return pieces
    }
}
