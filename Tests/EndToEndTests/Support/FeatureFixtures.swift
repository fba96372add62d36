import Foundation
import Glibc
import ReleaseKit
import Testing

/// Helpers for the feature tests (Procfile, presets, plan, retry, notify, metrics, the PaaS hook).

/// The seed's `release-tasks.sh` (the classic Heroku release script), word for word.
let classicReleaseTasksScript = """
    #!/bin/bash

    echo "Running Release Tasks"

    if [ "$RUN_MIGRATIONS_DURING_RELEASE" == "true" ]; then
      echo "Running Migrations"
      bundle exec rails db:migrate
    fi

    if [ "$SEED_DB_DURING_RELEASE" == "true" ]; then
      echo "Seeding DB"
      bundle exec rails db:seed
    fi

    if [ "$CLEAR_CACHE_DURING_RELEASE" == "true" ]; then
      echo "Clearing Rails Cache"
      bundle exec rails r "Rails.cache.clear"
    fi

    echo "Done running release-tasks.sh"

    """

/// The same script with each `bundle exec …` replaced by an `echo` and a `touch`, so it runs
/// where there is no Ruby: the gates stay inside the script, as on Heroku.
let echoReleaseTasksScript = classicReleaseTasksScript
    .replacingOccurrences(of: "bundle exec rails db:migrate", with: "echo 'rails db:migrate'; touch migrated")
    .replacingOccurrences(of: "bundle exec rails db:seed", with: "echo 'rails db:seed'; touch seeded")
    .replacingOccurrences(of: "bundle exec rails r \"Rails.cache.clear\"", with: "echo 'rails r Rails.cache.clear'; touch cache-cleared")

/// Makes a file executable (0755).
func makeExecutable(_ path: String) throws {
    guard chmod(path, 0o755) == 0 else { throw HarnessError("chmod \(path): \(errno)") }
}

/// A folder of fake executables that record how they were called: each call appends one line
/// to `calls`: `<name> [arg1] [arg2] … @<working directory>`. Put `bin` first on the request's PATH.
struct FakeCommands {
    let dir: TempDir
    var bin: String { dir.path + "/bin" }
    var callsPath: String { dir.path + "/calls" }

    /// `exitStatus`: name → status the fake exits with (default 0).
    init(_ names: [String], exitStatus: [String: Int] = [:], output: [String: String] = [:]) throws {
        dir = TempDir("releasectl-fakes")
        try FileManager.default.createDirectory(atPath: dir.path + "/bin", withIntermediateDirectories: true)
        for name in names {
            let script = """
                #!/bin/sh
                line="\(name)"
                for a in "$@"; do line="$line [$a]"; done
                printf '%s @%s\\n' "$line" "$(pwd)" >> '\(dir.path)/calls'
                \(output[name].map { "echo '\($0)'" } ?? "")
                exit \(exitStatus[name] ?? 0)

                """
            let path = dir.path + "/bin/" + name
            try script.write(toFile: path, atomically: true, encoding: .utf8)
            try makeExecutable(path)
        }
    }

    /// The recorded calls, one per line, in order.
    var calls: [String] {
        ((try? String(contentsOfFile: callsPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// A PATH with the fakes first, then the system's.
    var path: String { bin + ":/usr/bin:/bin" }

    func remove() { dir.remove() }
}

/// Runs `releasectl` with no daemon (plan, plugins, retry before one starts…).
func releasectl(_ arguments: [String], environment: [String: String] = [:], workingDirectory: String? = nil) async throws -> CommandResult {
    try await runProgram(Binaries.releasectl, arguments, environment: ["PATH": "/usr/local/bin:/usr/bin:/bin"].merging(environment) { $1 },
                         inheritEnvironment: false, workingDirectory: workingDirectory)
}

/// Parses JSON text into a dictionary, failing the test with the text when it is not one.
func jsonObject(_ text: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> [String: Any] {
    let value = try JSONSerialization.jsonObject(with: Data(text.utf8))
    return try #require(value as? [String: Any], "not a JSON object: \(text)", sourceLocation: sourceLocation)
}

/// One sample of a Prometheus text exposition: name, labels, value.
struct MetricSample: Equatable, CustomStringConvertible {
    var name: String
    var labels: [String: String]
    var value: Double
    var description: String { "\(name)\(labels.sorted { $0.key < $1.key }) \(value)" }
}

/// A parser of the Prometheus text exposition format (what node_exporter's textfile collector
/// reads): `# HELP`/`# TYPE` comments, then `name{label="value",…} number` lines. Throws on a
/// line it cannot read, so a malformed file fails the test.
struct MetricsFile {
    var samples: [MetricSample] = []
    var types: [String: String] = [:]

    init(text: String) throws {
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: true) {
            let line = String(rawLine)
            if line.hasPrefix("# TYPE ") {
                let parts = line.split(separator: " ")
                guard parts.count == 4 else { throw HarnessError("bad TYPE line: \(line)") }
                types[String(parts[2])] = String(parts[3])
                continue
            }
            if line.hasPrefix("#") { continue }
            var rest = Substring(line)
            let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }
            guard !name.isEmpty else { throw HarnessError("bad metric line: \(line)") }
            rest = rest.dropFirst(name.count)
            var labels: [String: String] = [:]
            if rest.first == "{" {
                rest = rest.dropFirst()
                while rest.first != "}" {
                    let key = rest.prefix { $0 != "=" }
                    rest = rest.dropFirst(key.count)
                    guard rest.hasPrefix("=\"") else { throw HarnessError("bad label in: \(line)") }
                    rest = rest.dropFirst(2)
                    var value = ""
                    while let c = rest.first, c != "\"" {
                        if c == "\\" {
                            rest = rest.dropFirst()
                            guard let escaped = rest.first else { throw HarnessError("bad escape in: \(line)") }
                            value.append(escaped == "n" ? "\n" : escaped)
                        } else {
                            value.append(c)
                        }
                        rest = rest.dropFirst()
                    }
                    guard rest.first == "\"" else { throw HarnessError("unterminated label in: \(line)") }
                    rest = rest.dropFirst()
                    labels[String(key)] = value
                    if rest.first == "," { rest = rest.dropFirst() }
                }
                rest = rest.dropFirst()
            }
            let valueText = rest.trimmingCharacters(in: .whitespaces)
            guard let value = valueText == "+Inf" ? .infinity : Double(valueText) else {
                throw HarnessError("bad value in: \(line)")
            }
            samples.append(MetricSample(name: String(name), labels: labels, value: value))
        }
    }

    /// The value of the one sample with this name and these labels (exactly), or nil.
    func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        samples.first { $0.name == name && $0.labels == labels }?.value
    }

    func samples(named name: String) -> [MetricSample] { samples.filter { $0.name == name } }
}

/// A TCP listener on 127.0.0.1 that completes connections (the kernel's backlog) but never
/// reads or answers: a webhook that hangs, for the per-request timeout.
final class SilentListener: Sendable {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw HarnessError("socket: \(errno)") }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { throw HarnessError("bind/listen: \(errno)") }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        self.fd = fd
        port = Int(UInt16(bigEndian: addr.sin_port))
    }

    var url: String { "http://127.0.0.1:\(port)/hangs" }

    func close() { Glibc.close(fd) }
}

/// A port on 127.0.0.1 where nothing listens (connection refused).
func closedPort() throws -> Int {
    let listener = try SilentListener()
    let port = listener.port
    listener.close()
    return port
}

extension DaemonProcess {
    /// Waits (bounded) until a release's log holds `line` as a line of task output (indented,
    /// whole line), not merely somewhere in the echoed command.
    func waitForTaskOutput(_ id: String, _ line: String, timeout: Duration = .seconds(20)) async throws {
        let log = spoolPath + "/logs/\(id).log"
        try await eventually("task output \(line.debugDescription) in logs/\(id).log", timeout: timeout) {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").contains("\n       " + line + "\n")   // the release log indents task output by 7 spaces
        }
    }
}
