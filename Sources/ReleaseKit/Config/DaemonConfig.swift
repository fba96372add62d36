import Glibc
import ReleaseSupport
import ReleaseTOML
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
    /// The container engine image releases run through: a program with podman's command line.
    public var containerEngine = "podman"
    /// `[limits]`: the operator's default and ceiling of each limit, for every app.
    public var limits = LimitPolicy()
    /// `[cluster]`: several daemons coordinating through one PostgreSQL (nil: on its own).
    public var cluster: ClusterSettings?

    public struct AppSettings: Sendable, Equatable {
        public var user: String?
        /// The key the app's releases are serialized under (default: the app's name). Apps
        /// that share a key never release at once (apps on one database).
        public var serialKey: String?
        /// For image releases: the network its containers join (`host`, a named network; nil:
        /// the engine's default).
        public var network: String?
        /// For image releases: volumes, `host:container[:ro]`.
        public var volumes: [String] = []
        /// For image releases: the user its containers run as (nil: the image's).
        public var containerUser: String?
        /// For image releases: when to pull the image.
        public var pull: PullPolicy = .missing
        /// For image releases: what its containers may do beyond the least (by default nothing).
        public var privileges = ContainerPrivileges()
        /// `[limits]` with `[apps.<name>.limits]` over it (nil: the app has none of its own).
        public var limits: LimitPolicy?
        /// The default lock timeouts and retries of the app's migration tasks (release.toml's
        /// per task win).
        public var lock = LockSettings()
        public init(user: String? = nil, serialKey: String? = nil) {
            self.user = user
            self.serialKey = serialKey
        }

        /// The keys of an `[apps.<name>]` table.
        public static let keys = ["user", "serial-key", "network", "volumes", "container-user", "pull", "no-new-privileges",
                                  "capabilities", "read-only-root", "limits"] + LockSettings.keys
    }

    /// When an image release pulls its image.
    public enum PullPolicy: String, Sendable, Equatable, CaseIterable {
        /// When the engine does not have it.
        case missing
        /// Before every release (a tag may have moved).
        case always
        /// Never: a missing image fails the release.
        case never
    }

    /// The settings of an app (its `[apps.<name>]` table, or the defaults).
    public func settings(for app: String) -> AppSettings { apps[app] ?? AppSettings() }

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
        var appLimits: [String: TOML.Table] = [:]
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
            case "cluster":
                guard let t = v.table else { throw fail("[cluster] must be a table (known: url, password-file, node, lease)") }
                c.cluster = try ClusterSettings.parse(t, fail: fail)
            case "limits":
                guard let t = v.table else { throw fail("[limits] must be a table (known: \(LimitPolicy.keys.joined(separator: ", ")))") }
                try c.limits.read(t, table: "[limits]", fail: fail)
            case "container-engine":
                c.containerEngine = try string(key, v)
                guard !c.containerEngine.isEmpty, !c.containerEngine.hasPrefix("-"), !c.containerEngine.contains(" ") else {
                    throw fail("container-engine must be a program's name or path")
                }
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
                    for k in t.keys where k != "limits" {
                        switch k {
                        case "user": settings.user = try string("apps.\(name).user", t[k]!)
                        case "serial-key":
                            let key = try string("apps.\(name).serial-key", t[k]!)
                            guard Syntax.isValidReleaseLabel(key) else {
                                throw fail("[apps.\(name)] serial-key must be 1 to 128 printable characters")
                            }
                            settings.serialKey = key
                        case "network":
                            let network = try string("apps.\(name).network", t[k]!)
                            guard Self.isName(network) else { throw fail("[apps.\(name)] network \(Masking.preview(network)) is not a network's name (or host)") }
                            settings.network = network
                        case "volumes":
                            settings.volumes = try strings("apps.\(name).volumes", t[k]!)
                            for volume in settings.volumes {
                                if let problem = Self.volumeProblem(volume) { throw fail("[apps.\(name)] volumes: \(Masking.preview(volume)) \(problem)") }
                            }
                        case "container-user":
                            let user = try string("apps.\(name).container-user", t[k]!)
                            guard Self.isName(user, extra: ":") else { throw fail("[apps.\(name)] container-user \(Masking.preview(user)) is not a user (name or uid[:gid])") }
                            settings.containerUser = user
                        case "pull":
                            let value = try string("apps.\(name).pull", t[k]!)
                            guard let pull = PullPolicy(rawValue: value) else { throw fail("[apps.\(name)] pull must be missing, always or never, not \(Masking.preview(value))") }
                            settings.pull = pull
                        case "no-new-privileges", "read-only-root":
                            guard case .boolean(let on) = t[k]! else { throw fail("[apps.\(name)] \(k) must be true or false") }
                            if k == "no-new-privileges" { settings.privileges.noNewPrivileges = on } else { settings.privileges.readOnlyRoot = on }
                        case "capabilities":
                            let names = try strings("apps.\(name).capabilities", t[k]!)
                            settings.privileges.capabilities = []
                            for given in names {
                                guard let capability = ContainerPrivileges.capability(given) else {
                                    throw fail("[apps.\(name)] capabilities: \(Masking.preview(given)) is not a Linux capability (such as NET_BIND_SERVICE)")
                                }
                                if !settings.privileges.capabilities.contains(capability) { settings.privileges.capabilities.append(capability) }
                            }
                        case "lock-timeout", "statement-timeout", "lock-retries":
                            _ = try settings.lock.read(k, t[k]!, fail: { fail("[apps.\(name)] \($0)") })
                        default:
                            throw fail("unknown key \(Masking.preview(k)) in [apps.\(name)] (known: \(AppSettings.keys.joined(separator: ", ")))")
                        }
                    }
                    if let limits = t["limits"] {
                        guard limits.table != nil else { throw fail("[apps.\(name).limits] must be a table (known: \(LimitPolicy.keys.joined(separator: ", ")))") }
                        // Read over [limits] once the whole file is read (it may come later).
                        appLimits[name] = limits.table!
                    }
                    c.apps[name] = settings
                }
            default:
                throw fail("unknown key \(Masking.preview(key))")
            }
        }
        for (name, limits) in appLimits.sorted(by: { $0.key < $1.key }) {
            var policy = c.limits
            try policy.read(limits, table: "[apps.\(name).limits]", fail: fail)
            c.apps[name]!.limits = policy
        }
        if let problem = c.cluster?.problem(killGrace: c.killGrace) { throw fail(problem) }
        return c
    }

    /// The operator's limits for an app: `[apps.<name>.limits]` over `[limits]`.
    public func limitPolicy(for app: String) -> LimitPolicy { apps[app]?.limits ?? limits }

    /// A network or user name for the engine: letters, digits and `._-` (and `extra`), not
    /// starting with `-` (it goes on the engine's command line).
    static func isName(_ s: String, extra: String = "") -> Bool {
        guard let first = s.utf8.first, first != UInt8(ascii: "-"), s.utf8.count <= 128 else { return false }
        return s.utf8.allSatisfy { b in
            (b >= 97 && b <= 122) || (b >= 65 && b <= 90) || (b >= 48 && b <= 57) || "._-".utf8.contains(b) || extra.utf8.contains(b)
        }
    }

    /// What is wrong with a volume (`host:container[:ro]`, both absolute), or nil.
    static func volumeProblem(_ volume: String) -> String? {
        let parts = volume.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        guard (2...3).contains(parts.count) else { return "is not host:container or host:container:ro" }
        guard parts[0].hasPrefix("/"), parts[1].hasPrefix("/") else { return "must name absolute paths on both sides" }
        guard parts.count == 2 || ["ro", "rw"].contains(parts[2]) else { return "may end only in :ro or :rw" }
        guard !volume.contains(","), !Syntax.hasControlCharacters(volume) else { return "holds a comma or a control character" }
        return nil
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
        let config = try parse(text, path: p)
        // What the file names on this host must be there: a volume's source.
        for name in config.apps.keys.sorted() {
            for volume in config.apps[name]!.volumes {
                let source = String(volume.prefix { $0 != ":" })
                var st = stat()
                if stat(source, &st) != 0 {
                    throw ConfigError(path: p, problem: "[apps.\(name)] volumes: \(source): \(String(cString: strerror(errno)))")
                }
            }
        }
        return config
    }
}
