import ReleaseSupport
import ReleaseTOML

/// How a migration task's database sessions wait for locks, and how often it is tried again
/// when one timed out: `lock-timeout`, `statement-timeout`, `lock-retries` — per task in
/// release.toml (`[tasks.migrate]`), per app in released.toml (`[apps.<name>]`, the default
/// of the app's migration tasks). Nil: not said here.
///
/// The timeouts reach the task's libpq clients (Rails' pg, Django's psycopg, Laravel's pgsql)
/// as `PGOPTIONS` (`pgOptions`), after what the app's own `PGOPTIONS` says and never in place
/// of a setting it makes itself.
public struct LockSettings: Sendable, Equatable {
    public var lockTimeout: Duration?
    public var statementTimeout: Duration?
    /// How many times a migration that failed on a lock timeout is run again.
    public var lockRetries: Int?

    public init(lockTimeout: Duration? = nil, statementTimeout: Duration? = nil, lockRetries: Int? = nil) {
        self.lockTimeout = lockTimeout
        self.statementTimeout = statementTimeout
        self.lockRetries = lockRetries
    }

    public static let keys = ["lock-timeout", "statement-timeout", "lock-retries"]
    /// The bounds: a lock timeout long enough for a catalog lock and short enough not to take a
    /// site down; a statement timeout no longer than a day; retries that end.
    public static let lockTimeoutRange = Duration.milliseconds(10)...Duration.seconds(600)
    public static let statementTimeoutRange = Duration.seconds(1)...Duration.seconds(86_400)
    public static let maximumRetries = 100

    public var isEmpty: Bool { lockTimeout == nil && statementTimeout == nil && lockRetries == nil }

    /// These settings, each one this does not say taken from `other`.
    public func over(_ other: LockSettings) -> LockSettings {
        LockSettings(lockTimeout: lockTimeout ?? other.lockTimeout, statementTimeout: statementTimeout ?? other.statementTimeout,
                     lockRetries: lockRetries ?? other.lockRetries)
    }

    /// Reads one setting from a TOML value; false for a key that is not one. `fail` makes the
    /// error for a bad value (it is given the problem, which starts with the key).
    public mutating func read<E: Error>(_ key: String, _ value: TOML.Value, fail: (String) -> E) throws(E) -> Bool {
        func duration(_ range: ClosedRange<Duration>) throws(E) -> Duration {
            guard let text = value.string else {
                throw fail("\(key) must be a duration such as \"\(DurationParser.format(range.lowerBound * 100))\", not \(value.kind)")
            }
            let d: Duration
            do throws(DurationParser.ParseError) { d = try DurationParser.parse(text) } catch { throw fail("\(key): \(error)") }
            guard range.contains(d) else {
                throw fail("\(key) must be from \(DurationParser.format(range.lowerBound)) to \(DurationParser.format(range.upperBound)), not \(DurationParser.format(d))")
            }
            return d
        }
        switch key {
        case "lock-timeout": lockTimeout = try duration(Self.lockTimeoutRange)
        case "statement-timeout": statementTimeout = try duration(Self.statementTimeoutRange)
        case "lock-retries":
            guard let n = value.integer else { throw fail("lock-retries must be a whole number from 0 to \(Self.maximumRetries), not \(value.kind)") }
            guard (0...Int64(Self.maximumRetries)).contains(n) else {
                throw fail("lock-retries must be a whole number from 0 to \(Self.maximumRetries), not \(n)")
            }
            lockRetries = Int(n)
        default: return false
        }
        return true
    }

    /// `PGOPTIONS` for the task: the app's own (`appOptions`, from its env) with `-c
    /// lock_timeout=…` and `-c statement_timeout=…` after it for each the app does not set
    /// itself; and which were left to the app. Nil when nothing is added. An app's PGOPTIONS
    /// that ends in an unfinished escape is left alone (anything added would be swallowed).
    public func pgOptions(appOptions: String?) -> (value: String, leftToApp: [String])? {
        let own = appOptions ?? ""
        let set = Self.settingNames(in: own)
        var added: [String] = [], left: [String] = []
        for (name, value) in [("lock_timeout", lockTimeout), ("statement_timeout", statementTimeout)] {
            guard let value else { continue }
            if set == nil || set!.contains(name) { left.append(name); continue }
            added.append("-c \(name)=\(value.milliseconds)ms")
        }
        guard !added.isEmpty || !left.isEmpty else { return nil }
        return (((own.isEmpty ? [] : [own]) + added).joined(separator: " "), left)
    }

    /// The settings a libpq `PGOPTIONS` makes (`-c name=value`, `-cname=value`,
    /// `--name=value`), names lowercased with `-` as `_`, split as libpq splits it
    /// (whitespace, a backslash escaping the next character); nil when it ends in an
    /// unfinished escape.
    static func settingNames(in options: String) -> Set<String>? {
        var words: [String] = [], word = "", escaped = false, inWord = false
        for c in options {
            if escaped { word.append(c); escaped = false; inWord = true; continue }
            if c == "\\" { escaped = true; inWord = true; continue }
            if c == " " || c == "\t" || c == "\n" || c == "\r" {
                if inWord { words.append(word); word = ""; inWord = false }
                continue
            }
            word.append(c)
            inWord = true
        }
        if escaped { return nil }
        if inWord { words.append(word) }
        var names: Set<String> = []
        var i = 0
        while i < words.count {
            var setting: String?
            if words[i] == "-c", i + 1 < words.count { setting = words[i + 1]; i += 1 }
            else if words[i].hasPrefix("--") { setting = String(words[i].dropFirst(2)) }
            else if words[i].hasPrefix("-c") { setting = String(words[i].dropFirst(2)) }
            if let setting, let equals = setting.firstIndex(of: "=") {
                names.insert(String(setting[..<equals].lowercased().map { $0 == "-" ? "_" : $0 }))
            }
            i += 1
        }
        return names
    }

    /// In words, for `plan`: "lock-timeout 1s, statement-timeout 5m, lock-retries 5".
    public var described: String {
        var parts: [String] = []
        if let lockTimeout { parts.append("lock-timeout \(DurationParser.format(lockTimeout))") }
        if let statementTimeout { parts.append("statement-timeout \(DurationParser.format(statementTimeout))") }
        if let lockRetries { parts.append("lock-retries \(lockRetries)") }
        return parts.joined(separator: ", ")
    }
}
