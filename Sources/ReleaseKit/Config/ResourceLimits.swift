/// Resource limits for a task: memory, CPU, processes. Nil means unlimited (or: not said here,
/// when limits are being combined).
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
    mutating func read(_ key: String, _ value: TOML.Value, fail: (String) -> RejectReason) throws(RejectReason) -> Bool {
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
