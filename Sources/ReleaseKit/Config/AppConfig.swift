import ReleaseSupport
import ReleaseTOML
import SystemPackage

/// An app's `release.toml`: per-task commands and timeouts.
///
/// ```toml
/// [tasks.migrate]
/// command = ["bin/rails", "db:migrate"]   # argv array, no shell
/// timeout = "15m"
/// [tasks.cache-clear]
/// command = "bundle exec rails r 'Rails.cache.clear'"   # a string runs under /bin/sh -c
/// ```
///
/// Anything malformed (bad TOML, unknown task or key, empty command, bad timeout) is a
/// `RejectReason` naming the file and the problem.
public struct AppConfig: Sendable, Equatable {
    public static let fileName = "release.toml"

    public struct TaskSettings: Sendable, Equatable {
        public var command: Command?
        public var timeout: Duration?
        /// Limits for this task alone (over the release's `[limits]`).
        public var limits = ResourceLimits()
        /// `first-deploy = true`: the task runs only on the app's first successful release of
        /// its phase (nil: as the task itself says).
        public var firstDeploy: Bool?
        /// A migration task's lock timeouts and retries (over released.toml's for the app).
        public var lock = LockSettings()
        /// `skip-when-none-pending = true`: a migration task is skipped, saying so, when the
        /// framework's status command lists nothing pending.
        public var skipWhenNonePending: Bool?

        /// Settings as a parsed `[tasks.<name>]` table holds them (nil: not set there).
        public init(command: Command? = nil, timeout: Duration? = nil) {
            self.command = command
            self.timeout = timeout
        }
    }

    public var tasks: [String: TaskSettings] = [:]
    /// `[limits]`: limits for every task of the release.
    public var limits = ResourceLimits()
    /// For an image release: the working directory in the container (default: the image's).
    public var workdir: String?

    public init(tasks: [String: TaskSettings] = [:]) { self.tasks = tasks }

    /// Parses release.toml text; `taskNames` are the registered tasks, `commandless` those
    /// that take no command (notify), `migrations` those that take lock settings.
    public static func parse(_ text: String, path: String, taskNames: [String], commandless: Set<String> = [],
                             migrations: Set<String> = []) throws(RejectReason) -> AppConfig {
        func fail(_ problem: String) -> RejectReason { RejectReason(.appConfig, "\(path): \(problem)") }
        let table: TOML.Table
        do throws(TOML.ParseError) {
            table = try TOML.parse(text)
        } catch {
            throw fail("\(error)")
        }
        var config = AppConfig()
        for key in table.keys where key != "tasks" {
            switch key {
            case "limits":
                guard let limits = table[key]?.table else { throw fail("[limits] must be a table of memory, cpus, pids") }
                for k in limits.keys {
                    guard try config.limits.read(k, limits[k]!, fail: { fail("[limits] \($0)") }) else {
                        throw fail("unknown key \(Quoting.quoted(k, limit: Quoting.tokenLimit)) in [limits] (known: memory, cpus, pids)")
                    }
                }
            case "workdir":
                guard let dir = table[key]?.string, dir.hasPrefix("/"), !Syntax.hasControlCharacters(dir), !dir.utf8.contains(0),
                      dir.utf8.count <= 1024 else { throw fail("workdir must be an absolute path in the container") }
                config.workdir = dir
            default:
                throw fail("unknown key \(Quoting.quoted(key, limit: Quoting.tokenLimit)) (release.toml holds [tasks.<name>] tables, [limits] and workdir)")
            }
        }
        guard let tasksValue = table["tasks"] else { return config }
        guard let tasks = tasksValue.table else { throw fail("\"tasks\" must be a table of [tasks.<name>] tables") }
        for name in tasks.keys {
            guard taskNames.contains(name) else {
                throw fail("unknown task \(Quoting.quoted(name, limit: Quoting.tokenLimit)) (known: \(taskNames.joined(separator: ", ")))")
            }
            guard let t = tasks[name]?.table else { throw fail("[tasks.\(name)] must be a table") }
            var settings = TaskSettings()
            for key in t.keys {
                switch key {
                case "command":
                    if commandless.contains(name) { throw fail("[tasks.\(name)] takes no command") }
                    let value = t[key]!
                    if let s = value.string {
                        guard !s.trimmingBlanks().isEmpty else { throw fail("[tasks.\(name)] command is empty") }
                        if s.utf8.contains(0) { throw fail("[tasks.\(name)] command contains a NUL character") }
                        settings.command = .shell(s)
                    } else if let a = value.array {
                        var argv: [String] = []
                        for item in a {
                            guard let s = item.string else { throw fail("[tasks.\(name)] command array must hold only strings") }
                            argv.append(s)
                        }
                        guard let first = argv.first, !first.isEmpty else { throw fail("[tasks.\(name)] command is empty") }
                        if argv.contains(where: { $0.utf8.contains(0) }) { throw fail("[tasks.\(name)] command contains a NUL character") }
                        settings.command = .argv(argv)
                    } else {
                        throw fail("[tasks.\(name)] command must be a string (run by /bin/sh -c) or an array of strings")
                    }
                case "timeout":
                    let value = t[key]!
                    do throws(DurationParser.ParseError) {
                        if let s = value.string { settings.timeout = try DurationParser.parse(s) }
                        else if let n = value.integer, n > 0, n <= 366 * 86_400 { settings.timeout = .seconds(n) }
                        else { throw DurationParser.ParseError(text: "\(value.integer.map(String.init) ?? value.kind)") }
                    } catch {
                        throw fail("[tasks.\(name)] timeout: \(error)")
                    }
                case "first-deploy":
                    guard let b = t[key]!.boolean else { throw fail("[tasks.\(name)] first-deploy must be true or false, not \(t[key]!.kind)") }
                    settings.firstDeploy = b
                case "skip-when-none-pending", "lock-timeout", "statement-timeout", "lock-retries":
                    guard migrations.contains(name) else {
                        throw fail("[tasks.\(name)] \(key) is for migration tasks (\(migrations.sorted().joined(separator: ", ")))")
                    }
                    if key == "skip-when-none-pending" {
                        guard let b = t[key]!.boolean else { throw fail("[tasks.\(name)] skip-when-none-pending must be true or false, not \(t[key]!.kind)") }
                        settings.skipWhenNonePending = b
                    } else {
                        _ = try settings.lock.read(key, t[key]!, fail: { fail("[tasks.\(name)] \($0)") })
                    }
                default:
                    guard try settings.limits.read(key, t[key]!, fail: { fail("[tasks.\(name)] \($0)") }) else {
                        throw fail("unknown key \(Quoting.quoted(key, limit: Quoting.tokenLimit)) in [tasks.\(name)] (known: command, timeout, first-deploy, memory, cpus, pids\(migrations.contains(name) ? ", lock-timeout, statement-timeout, lock-retries, skip-when-none-pending" : ""))")
                    }
                }
            }
            config.tasks[name] = settings
        }
        return config
    }
}
