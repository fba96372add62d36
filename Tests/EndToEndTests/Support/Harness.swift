import Foundation
import ReleaseKit
import ReleaseSupport
import Subprocess
import SystemPackage
import Testing

/// Where the built `released` and `releasectl` are: `$RELEASECTL_BIN_DIR`, else next to the
/// test bundle, else `.build/debug` of this package.
enum Binaries {
    static let directory: String = {
        if let dir = ProcessInfo.processInfo.environment["RELEASECTL_BIN_DIR"] { return dir }
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        for candidate in [bundleDir, bundleDir.deletingLastPathComponent()] {
            if FileManager.default.isExecutableFile(atPath: candidate.appendingPathComponent("released").path) {
                return candidate.path
            }
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug").path
    }()

    static var released: String { directory + "/released" }
    static var releasectl: String { directory + "/releasectl" }
    /// The program that starts every task (script/build-init puts it beside `released`).
    static var taskInit: String { directory + "/releasectl-init" }
}

/// A fresh temporary folder, removed by `remove()`.
struct TempDir {
    let path: String

    init(_ prefix: String = "releasectl-test") {
        var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
        let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }!
        path = String(cString: p)
    }

    func file(_ name: String) -> String { path + "/" + name }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// The result of running a command.
struct CommandResult: CustomStringConvertible {
    var status: Int32
    var stdout: String
    var stderr: String

    var description: String { "exit \(status)\n--- stdout\n\(stdout)\n--- stderr\n\(stderr)" }
    var lines: [String] { stdout.split(separator: "\n", omittingEmptySubsequences: false).map(String.init) }
}

/// Runs a program to its end with a given environment (nothing inherited unless asked).
/// A program still running after `timeout` is killed and the call throws, naming it: a
/// daemon that never answers fails the test, it does not hang the suite.
func runProgram(_ path: String, _ arguments: [String], environment: [String: String] = [:], inheritEnvironment: Bool = true,
                workingDirectory: String? = nil, timeout: Duration = .seconds(180)) async throws -> CommandResult {
    var env: [Environment.Key: String] = [:]
    if inheritEnvironment {
        for (k, v) in ProcessInfo.processInfo.environment { env[Environment.Key(stringLiteral: k)] = v }
    }
    for (k, v) in environment { env[Environment.Key(stringLiteral: k)] = v }
    let programEnvironment = env
    let finished = try await withThrowingTaskGroup(of: CommandResult?.self) { group in
        group.addTask {
            // Cancelling this task kills the program (Subprocess's teardown).
            let result = try await Subprocess.run(
                .path(FilePath(path)), arguments: Arguments(arguments), environment: .custom(programEnvironment),
                workingDirectory: workingDirectory.map { FilePath($0) },
                output: .string(limit: 64 << 20), error: .string(limit: 64 << 20))
            let status: Int32 = switch result.terminationStatus {
            case .exited(let c): c
            case .signaled(let s): 128 + s
            }
            return CommandResult(status: status, stdout: result.standardOutput ?? "", stderr: result.standardError ?? "")
        }
        group.addTask {
            try await Task.sleep(for: timeout)
            return nil
        }
        let first = try await group.next() ?? nil
        group.cancelAll()
        return first
    }
    guard let finished else {
        throw HarnessError("\(path) \(arguments.joined(separator: " ")) did not finish within \(timeout); killed")
    }
    return finished
}

/// Polls until `condition` holds or `timeout` passes, for states no event announces.
func eventually(_ what: @autoclosure () -> String, timeout: Duration = .seconds(20), interval: Duration = .milliseconds(20),
                _ condition: () throws -> Bool) async throws {
    let clock = ContinuousClock()
    let until = clock.now + timeout
    while clock.now < until {
        if try condition() { return }
        try await Task.sleep(for: interval)
    }
    Issue.record("timed out after \(timeout) waiting for \(what())")
    throw HarnessError("timed out waiting for \(what())")
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// An app directory with a release.toml made of the given task commands.
struct AppFixture {
    let dir: TempDir
    var path: String { dir.path }

    /// `commands`: task name → shell command (string form) or argv.
    init(commands: [String: String] = [:], argv: [String: [String]] = [:], timeouts: [String: String] = [:], extraFiles: [String: String] = [:]) throws {
        dir = TempDir("releasectl-app")
        var toml = ""
        for name in Set(commands.keys).union(argv.keys).union(timeouts.keys).sorted() {
            toml += "[tasks.\(name)]\n"
            if let c = commands[name] { toml += "command = \(tomlString(c))\n" }
            if let a = argv[name] { toml += "command = [" + a.map(tomlString).joined(separator: ", ") + "]\n" }
            if let t = timeouts[name] { toml += "timeout = \"\(t)\"\n" }
        }
        if !toml.isEmpty { try toml.write(toFile: dir.file("release.toml"), atomically: true, encoding: .utf8) }
        for (name, content) in extraFiles {
            let path = dir.file(name)
            try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try content.write(toFile: path, atomically: true, encoding: .utf8)
        }
    }

    func remove() { dir.remove() }
}

func tomlString(_ s: String) -> String {
    "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
        .replacingOccurrences(of: "\n", with: "\\n").replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "\t", with: "\\t") + "\""
}

/// Runs a short program to its end without Foundation's `Process` or swift-subprocess: spawned
/// and waited for by its pid (a blocking call: for quick helpers, never a daemon). Foundation's
/// `Process.waitUntilExit` can miss an exit while swift-subprocess (`runProgram`) takes the test
/// process's SIGCHLDs, and hang.
func runQuick(_ argv: [String], directory: String? = nil, environment: [String: String]? = nil) -> (status: Int32, output: String) {
    let env = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
    guard let child = try? Spawn.start(FilePath(argv[0]), argv: argv, environment: env, directory: directory.map { FilePath($0) },
                                       output: .pipe, errors: .null) else { return (127, "") }
    var output: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    if let fd = child.output {
        while true {
            let n = read(fd, &buffer, buffer.count)
            if n > 0 { output += buffer.prefix(n) } else if n == 0 || errno != EINTR { break }
        }
        close(fd)
    }
    return (child.wait().code, String(decoding: output, as: UTF8.self))
}
