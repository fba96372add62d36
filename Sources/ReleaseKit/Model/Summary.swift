/// Human renderings shared by the daemon's log lines and the CLI.
public enum Summary {
    /// `850ms`, `4.1s`, `2m05s`, `1h02m`.
    public static func duration(_ ms: Int64) -> String {
        if ms < 1000 { return "\(ms)ms" }
        if ms < 60_000 { return "\(ms / 1000).\(ms % 1000 / 100)s" }
        let s = ms / 1000
        if s < 3600 { return "\(s / 60)m\(pad(s % 60))s" }
        return "\(s / 3600)h\(pad(s % 3600 / 60))m"
    }

    static func pad(_ n: Int64) -> String { n < 10 ? "0\(n)" : "\(n)" }

    /// How a task killed by the kernel's OOM killer is described.
    public static let oomKilled = "killed by the kernel's OOM killer"

    /// The reason of a task the OOM killer ended: `killed by the kernel's OOM killer (memory
    /// limit 1 GiB)`.
    public static func oomReason(limit: Int64?) -> String {
        oomKilled + (limit.map { " (memory limit \(ResourceLimits.describe(bytes: $0)))" } ?? "")
    }

    /// What a task used, after its result: ` · peak 312 MiB · cpu 9.8s` (empty when unknown).
    public static func usage(_ t: TaskRecord) -> String {
        var out = ""
        if let peak = t.peakMemoryBytes { out += " · peak \(ResourceLimits.describe(bytes: peak))" }
        if let cpu = t.cpuMs { out += " · cpu \(duration(cpu))" }
        return out
    }

    /// How a task ended, in words, each fact once: "succeeded", "failed (exit status 1)",
    /// "timed out after its timeout of 1s", "skipped: RUN_PROCFILE_RELEASE is off (unset)".
    public static func taskResult(_ t: TaskRecord) -> String {
        switch t.state {
        case .failed:
            if let s = t.exitStatus { return "failed (exit status \(s))" }
            if let sig = t.signal {
                // The OOM killer's SIGKILL: the reason says it with the limit.
                if let reason = t.reason, reason.hasPrefix(Self.oomKilled) { return "failed: \(reason)" }
                return "failed (killed by signal \(sig))"
            }
            return "failed" + (t.reason.map { ": \($0)" } ?? "")
        case .timedOut:
            // The reason says it: "timed out after its timeout of 1s".
            guard let reason = t.reason else { return "timed out" }
            return reason.hasPrefix("timed out") ? reason : "timed out: \(reason)"
        case .cancelled: return "cancelled" + (t.reason.map { $0 == "cancelled" ? "" : ": \($0)" } ?? "")
        case .skipped: return "skipped" + (t.reason.map { ": \($0)" } ?? "")
        case .notRun: return "not run" + (t.reason.map { ": \($0)" } ?? "")
        default: return t.state.rawValue
        }
    }
}
