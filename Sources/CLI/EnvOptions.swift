import ArgumentParser
import FoundationEssentials
import Glibc
import ReleaseKit

/// `--env-file` and `--env`: the app's environment for a request. Files are read in order,
/// then `--env`s; the last value of a key wins. The caller's own environment never leaks in.
/// A file may be a pipe (`--env-file /dev/stdin`): a hook hands secrets over that way, never
/// on a command line.
struct EnvOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Read variables from a dotenv file, or a pipe such as /dev/stdin (repeatable, in order).", valueName: "file"))
    var envFile: [String] = []

    @Option(name: .long, help: ArgumentHelp("Set a variable (repeatable; wins over --env-file).", valueName: "KEY=VALUE"))
    var env: [String] = []

    /// The assembled environment; a bad file or a malformed `--env` is a usage error (exit 2).
    func resolve() throws(CLIError) -> [String: String] {
        var result: [String: String] = [:]
        for file in envFile {
            guard let data = Self.read(file) else {
                throw .usage("cannot read --env-file \(file)")
            }
            guard let text = String(validating: data, as: UTF8.self) else {
                throw .usage("--env-file \(file) is not valid UTF-8")
            }
            do {
                for (key, value) in try DotEnv.parse(text, file: file) { result[key] = value }
            } catch {
                throw .usage("--env-file \(error)")
            }
        }
        for assignment in env {
            guard let eq = assignment.firstIndex(of: "=") else {
                throw .usage("--env \(Masking.preview(assignment)) is not of the form KEY=VALUE")
            }
            let key = String(assignment[..<eq])
            let value = String(assignment[assignment.index(after: eq)...])
            if let problem = Syntax.envKeyProblem(key) {
                throw .usage("--env has \(problem)")
            }
            if value.utf8.contains(0) { throw .usage("--env \(key): the value contains a NUL byte") }
            result[key] = value
        }
        return result
    }
}

extension EnvOptions {
    /// The largest env file read (a request file may not exceed 1 MiB either).
    static let maximumFileSize = 1 << 20

    /// The whole of `path`, read to its end: a regular file, or a pipe or terminal
    /// (`/dev/stdin`), whose size is not known beforehand. Nil when it cannot be opened or read,
    /// or holds more than `maximumFileSize` bytes.
    static func read(_ path: String) -> Data? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n == 0 { return Data(bytes) }
            if n < 0 {
                if errno == EINTR { continue }
                return nil
            }
            bytes += chunk[0..<n]
            if bytes.count > maximumFileSize { return nil }
        }
    }
}

/// `--task`, checked against the registry.
struct TaskOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Run only these tasks (repeatable; gates still apply).", valueName: "name"))
    var task: [String] = []

    func resolve(known: [String]) throws(CLIError) -> [String]? {
        for name in task where !known.contains(name) {
            throw .usage("unknown task \(Masking.preview(name)) (known: \(known.joined(separator: ", ")))")
        }
        return task.isEmpty ? nil : task
    }
}

/// `--phase`: when in the deploy a release runs.
struct PhaseOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("predeploy (before traffic moves; the default) or postdeploy (after the PaaS moved traffic to this release; runs only once its predeploy succeeded).", valueName: "phase"))
    var phase: String?

    func resolve() throws(CLIError) -> ReleasePhase {
        guard let phase else { return .default }
        guard let p = ReleasePhase(rawValue: phase) else { throw .usage("--phase \(Masking.preview(phase)) is not a phase (\(ReleasePhase.names))") }
        return p
    }
}
