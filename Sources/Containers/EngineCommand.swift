import Glibc
import ReleaseKit
import ReleaseSupport
import SystemPackage

/// Runs a container engine command to its end and gathers what it printed: for the short
/// engine calls (inspect, mount, exists, kill, rm) made outside a task, from a plain thread
/// (intake) or the process guard. Started by `Spawn` with exactly the environment given, stdin
/// from /dev/null, and both outputs read until they close (bounded: at most 1 MiB each is kept).
public enum EngineCommand {
    public struct Result: Sendable {
        public var status: Int32
        public var output: String
        public var errorOutput: String

        public init(status: Int32, output: String, errorOutput: String) {
            self.status = status
            self.output = output
            self.errorOutput = errorOutput
        }

        /// The engine's own message: its last line starting with `Error: `, else the last line.
        public var message: String {
            let lines = (errorOutput + "\n" + output).split(separator: "\n").map { String($0).trimmingBlanks() }.filter { !$0.isEmpty }
            if let error = lines.last(where: { $0.hasPrefix("Error: ") }) { return String(error.dropFirst("Error: ".count)) }
            return lines.last ?? "exit status \(status)"
        }
    }

    /// Runs `executable` (a path, or a name looked up in the environment's `PATH`) with
    /// `arguments` (argv[0] is the executable) and `environment` (`KEY=value` strings).
    public static func run(_ executable: String, _ arguments: [String], environment: [String]) -> Result {
        start(executable, arguments, environment: environment).finish()
    }

    /// Starts a command without waiting for it, so that several run at once; `finish` gives
    /// its result. Each must be finished (it reaps the process and closes the pipes).
    public static func start(_ executable: String, _ arguments: [String], environment: [String]) -> Running {
        let path = environment.first { $0.hasPrefix("PATH=") }.map { String($0.dropFirst(5)) } ?? TaskEnvironment.defaultPath
        guard let program = executable.contains("/") ? executable : ExecutableLookup.find(executable, path: path) else {
            return Running(state: .done(Result(status: 127, output: "", errorOutput: "cannot run \(executable): not found in PATH=\(path)")))
        }
        do throws(Errno) {
            return Running(state: .started(try Spawn.start(FilePath(program), argv: [executable] + arguments, environment: environment,
                                                           output: .pipe, errors: .pipe, group: .inherit, pidfd: false)))
        } catch {
            return Running(state: .done(Result(status: error == .noSuchFileOrDirectory ? 127 : 126, output: "",
                                               errorOutput: "cannot run \(executable): \(error)")))
        }
    }

    /// A command `start` started (or could not start).
    public struct Running {
        fileprivate enum State {
            case started(ChildProcess)
            case done(Result)
        }
        fileprivate let state: State

        /// Reads its output to the end and reaps it.
        public func finish() -> Result {
            switch state {
            case .done(let result):
                return result
            case .started(let child):
                let (output, errorOutput) = readBoth(child.output!, child.errors!)
                Syscalls.close(child.output!)
                Syscalls.close(child.errors!)
                return Result(status: child.wait().code, output: String(decoding: output, as: UTF8.self),
                              errorOutput: String(decoding: errorOutput, as: UTF8.self))
            }
        }
    }

    /// Reads two pipes to their ends, whichever has data, keeping at most 1 MiB of each.
    private static func readBoth(_ a: Int32, _ b: Int32) -> ([UInt8], [UInt8]) {
        var data: [[UInt8]] = [[], []]
        var open = [true, true]
        var buffer = [UInt8](repeating: 0, count: 65536)
        while open[0] || open[1] {
            var fds = [pollfd(fd: open[0] ? a : -1, events: Int16(POLLIN), revents: 0),
                       pollfd(fd: open[1] ? b : -1, events: Int16(POLLIN), revents: 0)]
            if poll(&fds, 2, -1) < 0 {
                if errno == EINTR { continue }
                break
            }
            for i in 0..<2 where open[i] && fds[i].revents != 0 {
                let n = buffer.withUnsafeMutableBytes { read(fds[i].fd, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { open[i] = false; continue }
                if data[i].count < 1 << 20 { data[i] += buffer[0..<n] }
            }
        }
        return (data[0], data[1])
    }
}

extension String {
    func trimmingBlanks() -> String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }
}
