import Glibc
import SystemPackage

/// The daemon's configuration: `/etc/releasectl/released.toml` or `--config FILE`, with
/// command-line flags applied on top. Unknown keys are errors (a typo must not silently keep a
/// default).
public struct DaemonConfig: Sendable, Equatable {
    public static let defaultPath = "/etc/releasectl/released.toml"
    /// The largest configuration file read.
    public static let maximumFileSize = 64 * 1024

    public var spool: String?
    public var maxParallel: Int = 2
    public var releaseTimeout: Duration = .seconds(3600)
    public var killGrace: Duration = .seconds(10)
    public var shutdownGrace: Duration = .seconds(30)
    /// Allowed app directory roots; empty allows any absolute path.
    public var appRoots: [String] = []
    /// Users and groups whose request files are accepted, by name or number; nil means the
    /// daemon's own user and group, and root.
    public var allowUsers: [String]?
    public var allowGroups: [String]?
    public var retentionDays: Int = 30
    public var retentionKeep: Int = 20
    public var metricsFile: String?
    /// Per-app settings: `[apps.<name>] user = "shop"`.
    public var apps: [String: AppSettings] = [:]
    /// When the daemon runs as root: the user that apps without `[apps.<name>] user` run their
    /// tasks as.
    public var defaultUser: String?
    /// When the daemon runs as root: let apps with no user (and no `default-user`) run their
    /// tasks as root. Off: such requests are rejected. Meant for development machines.
    public var allowRootTasks = false

    /// How many rejected files each submitting user keeps in `rejected/`: past it, a new
    /// rejection removes that user's oldest, so one submitter's junk can neither fill the disk
    /// nor crowd out anyone else's.
    public var rejectedLimit: Int = 1000

    public struct AppSettings: Sendable, Equatable {
        public var user: String?
        /// The key the app's releases are serialized under (default: the app's name). Apps
        /// that share a key never release at once (apps on one database).
        public var serialKey: String?
        public init(user: String? = nil, serialKey: String? = nil) {
            self.user = user
            self.serialKey = serialKey
        }
    }

    public init() {}

    public struct ConfigError: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var problem: String
        public var description: String { "\(path): \(problem)" }
    }

    /// Parses released.toml.
    public static func parse(_ text: String, path: String) throws(ConfigError) -> DaemonConfig {
        func fail(_ problem: String) -> ConfigError { ConfigError(path: path, problem: problem) }
        let table: TOML.Table
        do throws(TOML.ParseError) {
            table = try TOML.parse(text)
        } catch {
            throw fail("\(error)")
        }
        var c = DaemonConfig()
        func string(_ key: String, _ v: TOML.Value) throws(ConfigError) -> String {
            guard let s = v.string else { throw fail("\(key) must be a string") }
            return s
        }
        func int(_ key: String, _ v: TOML.Value, min: Int) throws(ConfigError) -> Int {
            guard let n = v.integer, n >= min, n <= Int64(Int32.max) else { throw fail("\(key) must be an integer ≥ \(min)") }
            return Int(n)
        }
        func duration(_ key: String, _ v: TOML.Value) throws(ConfigError) -> Duration {
            if let n = v.integer, n > 0, n <= 366 * 86_400 { return .seconds(n) }
            guard let s = v.string else { throw fail("\(key) must be a duration such as \"30s\" or \"1h\"") }
            do throws(DurationParser.ParseError) { return try DurationParser.parse(s) } catch { throw fail("\(key): \(error)") }
        }
        func strings(_ key: String, _ v: TOML.Value) throws(ConfigError) -> [String] {
            guard let a = v.array else { throw fail("\(key) must be an array of strings") }
            var out: [String] = []
            for item in a {
                if let s = item.string { out.append(s) }
                else if let n = item.integer { out.append(String(n)) }
                else { throw fail("\(key) must be an array of strings") }
            }
            return out
        }
        for key in table.keys {
            let v = table[key]!
            switch key {
            case "spool": c.spool = try string(key, v)
            case "max-parallel": c.maxParallel = try int(key, v, min: 1)
            case "release-timeout": c.releaseTimeout = try duration(key, v)
            case "kill-grace": c.killGrace = try duration(key, v)
            case "shutdown-grace": c.shutdownGrace = try duration(key, v)
            case "app-roots":
                c.appRoots = try strings(key, v)
                for root in c.appRoots where !root.hasPrefix("/") { throw fail("app-roots: \(root) is not an absolute path") }
            case "allow-users": c.allowUsers = try strings(key, v)
            case "allow-groups": c.allowGroups = try strings(key, v)
            case "retention-days": c.retentionDays = try int(key, v, min: 0)
            case "retention-keep": c.retentionKeep = try int(key, v, min: 0)
            case "rejected-limit": c.rejectedLimit = try int(key, v, min: 1)
            case "metrics-file": c.metricsFile = try string(key, v)
            case "default-user": c.defaultUser = try string(key, v)
            case "allow-root-tasks":
                guard case .boolean(let b) = v else { throw fail("allow-root-tasks must be true or false") }
                c.allowRootTasks = b
            case "apps":
                guard let apps = v.table else { throw fail("apps must hold [apps.<name>] tables") }
                for name in apps.keys {
                    guard Syntax.isValidAppName(name) else { throw fail("[apps.\(name)]: not a valid app name") }
                    guard let t = apps[name]?.table else { throw fail("[apps.\(name)] must be a table") }
                    var settings = AppSettings()
                    for k in t.keys {
                        switch k {
                        case "user": settings.user = try string("apps.\(name).user", t[k]!)
                        case "serial-key":
                            let key = try string("apps.\(name).serial-key", t[k]!)
                            guard Syntax.isValidReleaseLabel(key) else {
                                throw fail("[apps.\(name)] serial-key must be 1 to 128 printable characters")
                            }
                            settings.serialKey = key
                        default: throw fail("unknown key \(Masking.preview(k)) in [apps.\(name)] (known: user, serial-key)")
                        }
                    }
                    c.apps[name] = settings
                }
            default:
                throw fail("unknown key \(Masking.preview(key))")
            }
        }
        return c
    }

    /// Loads a config file; a missing file at the default path is an empty config, any other
    /// problem reading it is an error.
    public static func load(path: String?) throws(ConfigError) -> DaemonConfig {
        let p = path ?? defaultPath
        // The operator's own file (a symlink to it is the operator's choice): opened without
        // blocking, regular files only, bounded.
        let fd: Int32
        do { fd = try Syscalls.open(FilePath(p), O_RDONLY | O_NONBLOCK | O_NOCTTY) } catch {
            if error == .noSuchFileOrDirectory {
                if path == nil { return DaemonConfig() }
                throw ConfigError(path: p, problem: "no such file")
            }
            throw ConfigError(path: p, problem: "\(error)")
        }
        defer { Syscalls.close(fd) }
        let bytes: [UInt8]
        do {
            let st = try Syscalls.fstat(fd)
            guard st.st_mode & S_IFMT == S_IFREG else { throw ConfigError(path: p, problem: "not a regular file") }
            guard st.st_size <= maximumFileSize else {
                throw ConfigError(path: p, problem: "\(st.st_size) bytes, over the limit of \(maximumFileSize / 1024) KiB")
            }
            bytes = try Syscalls.read(fd, limit: maximumFileSize)
        } catch let error as ConfigError {
            throw error
        } catch {
            throw ConfigError(path: p, problem: "\(error)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw ConfigError(path: p, problem: "not valid UTF-8") }
        return try parse(text, path: p)
    }
}
