import ReleaseSupport
import ReleaseTOML

/// Resource limits for a task: memory, CPU, processes. Nil means unlimited (or: not said here,
/// when limits are being combined).
///
/// A CPU share is enforced as CPU time per period (the kernel's CFS bandwidth control, which
/// the engines and systemd both write): `cpuQuotaMicros` of every `cpuPeriodMicros`, rounded
/// down, so that what is enforced is never more than asked, nor more than a ceiling the value
/// is under. The kernel enforces no less than 1 ms per period, so a share under
/// `minimumCPUs` is refused rather than loosened.
public struct ResourceLimits: Sendable, Equatable {
    /// The most memory, in bytes.
    public var memoryBytes: Int64?
    /// The share of CPU time, in cores (1.5: one and a half cores' worth).
    public var cpus: Double?
    /// The most processes and threads.
    public var pids: Int64?

    public init(memoryBytes: Int64? = nil, cpus: Double? = nil, pids: Int64? = nil) {
        self.memoryBytes = memoryBytes
        self.cpus = cpus
        self.pids = pids
    }

    /// The period CPU time is shared in: 100 ms, the kernel's and the engines' default.
    public static let cpuPeriodMicros: Int64 = 100_000
    /// The least CPU time per period the kernel takes as a quota (1 ms).
    public static let minimumCPUQuotaMicros: Int64 = 1_000
    /// The least CPU share that can be enforced: 0.01 cores.
    public static let minimumCPUs = Double(minimumCPUQuotaMicros) / Double(cpuPeriodMicros)

    /// The CPU time per `cpuPeriodMicros` that enforces a share of `cpus` cores: rounded down
    /// to the microsecond (a product within a millionth of a microsecond of a whole number is
    /// that number, so 0.29 is 29000 and not 28999). Monotonic, so a share under a ceiling is
    /// never enforced over the ceiling's own quota.
    public static func cpuQuotaMicros(cpus: Double) -> Int64 {
        let exact = cpus * Double(cpuPeriodMicros)
        let nearest = exact.rounded()
        return Int64(abs(exact - nearest) < 1e-6 ? nearest : exact.rounded(.down))
    }

    /// The CPU time per period that enforces `cpus`, nil when it is not set.
    public var cpuQuotaMicros: Int64? { cpus.map(Self.cpuQuotaMicros(cpus:)) }

    /// No limit at all.
    public var isEmpty: Bool { memoryBytes == nil && cpus == nil && pids == nil }

    /// These limits, each one this does not say taken from `other`.
    public func over(_ other: ResourceLimits) -> ResourceLimits {
        ResourceLimits(memoryBytes: memoryBytes ?? other.memoryBytes, cpus: cpus ?? other.cpus, pids: pids ?? other.pids)
    }

    /// The keys of a limits table.
    public static let keys = ["memory", "cpus", "pids"]

    /// Reads one limit from a TOML value into `self`; returns false for a key that is not a
    /// limit. `fail` makes the error for a bad value.
    mutating func read<E: Error>(_ key: String, _ value: TOML.Value, fail: (String) -> E) throws(E) -> Bool {
        switch key {
        case "memory":
            guard let bytes = Self.memory(value) else {
                throw fail("memory must be a size such as \"512M\" or \"2G\" (K, M, G, T: powers of 1024), or a number of bytes")
            }
            memoryBytes = bytes
        case "cpus":
            let number: Double? = switch value {
            case .float(let d): d
            case .integer(let n): Double(n)
            default: nil
            }
            guard let number, number.isFinite, number > 0, number <= 4096 else { throw fail("cpus must be a number of cores above 0, such as 1.5") }
            guard number >= Self.minimumCPUs else {
                throw fail("cpus \(Self.describe(cpus: number)) is under the least share the kernel enforces, \(Self.describe(cpus: Self.minimumCPUs)) (1 ms of CPU time in each 100 ms)")
            }
            cpus = number
        case "pids":
            guard let n = value.integer, n >= 1, n <= 4_194_304 else { throw fail("pids must be a whole number of processes, at least 1") }
            pids = n
        default:
            return false
        }
        return true
    }

    /// A memory size: a number of bytes, or text with a K, M, G or T suffix (powers of 1024).
    public static func memory(_ value: TOML.Value) -> Int64? {
        if let n = value.integer { return n >= 1 ? n : nil }
        guard let text = value.string else { return nil }
        return memory(text)
    }

    /// `512M`, `2G`, `1.5G`, `1048576`: bytes, or nil.
    public static func memory(_ text: String) -> Int64? {
        var digits = Substring(text.trimmingBlanks())
        var unit: Double = 1
        if let last = digits.last, let power = ["K": 1, "M": 2, "G": 3, "T": 4][String(last).uppercased()] {
            unit = Double(1 << (10 * power))
            digits = digits.dropLast()
            if digits.hasSuffix("i") || digits.hasSuffix("I") { return nil }
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isNumber || $0 == "." }), let number = Double(digits), number > 0 else { return nil }
        let bytes = number * unit
        guard bytes >= 1, bytes < 9.2e18 else { return nil }
        return Int64(bytes)
    }

    /// A size for people: `1 GiB`, `512 MiB`, `300 B`.
    public static func describe(bytes: Int64) -> String {
        for (unit, name) in [(Int64(1) << 40, "TiB"), (1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")] where bytes >= unit {
            let value = Double(bytes) / Double(unit)
            return value == value.rounded() ? "\(Int64(value)) \(name)" : "\(String(format1: value)) \(name)"
        }
        return "\(bytes) B"
    }
}

extension String {
    /// A number with one decimal.
    init(format1 value: Double) {
        let tenths = Int64((value * 10).rounded())
        self = "\(tenths / 10).\(abs(tenths % 10))"
    }
}

extension ResourceLimits {
    /// One limit in words: `memory 1 GiB`, `cpus 1.5`, `pids 512`; nil when it is not set.
    public func describe(_ key: String) -> String? {
        value(key).map { "\(key) \($0)" }
    }

    /// One limit's value in words: `1 GiB`, `1.5`, `512`.
    public func value(_ key: String) -> String? {
        switch key {
        case "memory": memoryBytes.map { Self.describe(bytes: $0) }
        case "cpus": cpus.map { Self.describe(cpus: $0) }
        case "pids": pids.map { "\($0)" }
        default: nil
        }
    }

    /// A CPU share for people, as written: `1`, `1.5`, `0.0100001` (never rounded: a limit
    /// shown must be the limit asked for).
    public static func describe(cpus: Double) -> String {
        cpus == cpus.rounded() && abs(cpus) < 1e15 ? String(Int64(cpus)) : String(cpus)
    }

    /// Whether the limit `key` of self is above the same limit of `ceiling` (false when
    /// either is not set).
    func exceeds(_ ceiling: ResourceLimits, _ key: String) -> Bool {
        switch key {
        case "memory": if let v = memoryBytes, let c = ceiling.memoryBytes { return v > c }
        case "cpus": if let v = cpus, let c = ceiling.cpus { return v > c }
        case "pids": if let v = pids, let c = ceiling.pids { return v > c }
        default: break
        }
        return false
    }

    /// Whether the limit `key` is set.
    func has(_ key: String) -> Bool { describe(key) != nil }

    /// Self with the limit `key` taken from `other`.
    func taking(_ key: String, from other: ResourceLimits) -> ResourceLimits {
        var result = self
        switch key {
        case "memory": result.memoryBytes = other.memoryBytes
        case "cpus": result.cpus = other.cpus
        case "pids": result.pids = other.pids
        default: break
        }
        return result
    }
}

/// The operator's limits for an app, from released.toml: a default for a task whose
/// release.toml says nothing, and a ceiling nothing may ask to exceed, for each of memory,
/// cpus and pids. `[apps.<name>.limits]` overrides `[limits]` key by key.
public struct LimitPolicy: Sendable, Equatable {
    public var defaults = ResourceLimits()
    public var ceilings = ResourceLimits()
    /// Where each default and ceiling was set, by key: `released.toml [limits]`.
    public var defaultSources: [String: String] = [:]
    public var ceilingSources: [String: String] = [:]

    public init() {}

    /// A table's keys: `memory`, `cpus`, `pids` (defaults) and `max-memory`, `max-cpus`,
    /// `max-pids` (ceilings).
    public static let keys = ResourceLimits.keys + ResourceLimits.keys.map { "max-" + $0 }

    /// Reads `[limits]` (or `[apps.<name>.limits]`, named by `table`) over this policy.
    mutating func read(_ toml: TOML.Table, table: String, fail: (String) -> DaemonConfig.ConfigError) throws(DaemonConfig.ConfigError) {
        var defaults = ResourceLimits(), ceilings = ResourceLimits()
        for key in toml.keys.sorted() {
            let ceiling = key.hasPrefix("max-")
            let name = ceiling ? String(key.dropFirst(4)) : key
            var target = ceiling ? ceilings : defaults
            guard try target.read(name, toml[key]!, fail: { fail("\(table) \(ceiling ? "max-" : "")\($0)") }) else {
                throw fail("unknown key \(Quoting.quoted(key, limit: Quoting.tokenLimit)) in \(table) (known: \(Self.keys.joined(separator: ", ")))")
            }
            if ceiling { ceilings = target } else { defaults = target }
        }
        for key in ResourceLimits.keys {
            if defaults.has(key) {
                self.defaults = self.defaults.taking(key, from: defaults)
                defaultSources[key] = "released.toml \(table)"
            }
            if ceilings.has(key) {
                self.ceilings = self.ceilings.taking(key, from: ceilings)
                ceilingSources[key] = "released.toml \(table)"
            }
        }
        for key in ResourceLimits.keys where self.defaults.exceeds(self.ceilings, key) {
            throw fail("\(table): the default \(self.defaults.describe(key)!) is over the ceiling max-\(key) (\(self.ceilings.value(key)!), \(ceilingSources[key]!))")
        }
    }

    /// A task's effective limits, given release.toml's for the task and for the release:
    /// for each key, the task's value, else the release's, else the operator's default, else
    /// the operator's ceiling (a ceiling is a limit too); with where each came from. A value
    /// release.toml asks for over a ceiling rejects the release.
    public func resolve(task: String, taskLimits: ResourceLimits, releaseLimits: ResourceLimits) throws(RejectReason) -> (ResourceLimits, [String: String]) {
        var result = ResourceLimits()
        var sources: [String: String] = [:]
        for key in ResourceLimits.keys {
            let found: (value: ResourceLimits, source: String)? =
                taskLimits.has(key) ? (taskLimits, "release.toml [tasks.\(task)]")
                : releaseLimits.has(key) ? (releaseLimits, "release.toml [limits]")
                : defaults.has(key) ? (defaults, "default in \(defaultSources[key]!)")
                : ceilings.has(key) ? (ceilings, "max-\(key) in \(ceilingSources[key]!)")
                : nil
            guard let (value, source) = found.map({ ($0.value, $0.source) }) else { continue }
            if value.exceeds(ceilings, key) {
                throw RejectReason(.limits, "\(source) asks for \(value.describe(key)!), over the operator's ceiling of \(ceilings.value(key)!) (max-\(key) in \(ceilingSources[key]!))")
            }
            result = result.taking(key, from: value)
            sources[key] = source
        }
        return (result, sources)
    }
}
