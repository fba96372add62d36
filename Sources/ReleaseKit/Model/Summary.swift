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

    /// How a task ended, in words, each fact once: "succeeded", "failed (exit status 1)",
    /// "timed out after its timeout of 1s", "skipped: RUN_PROCFILE_RELEASE is off (unset)".
    public static func taskResult(_ t: TaskRecord) -> String {
        switch t.state {
        case .failed:
            if let s = t.exitStatus { return "failed (exit status \(s))" }
            if let sig = t.signal { return "failed (killed by signal \(sig))" }
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
