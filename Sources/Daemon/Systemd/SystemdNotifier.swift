import CSystemd
import Glibc

/// Talks to the service manager through `sd_notify(3)`. Without `NOTIFY_SOCKET` every call is
/// a no-op, so the daemon behaves the same outside systemd.
public struct SystemdNotifier: Sendable {
    public init() {}

    /// Whether a service manager listens.
    public var isEnabled: Bool { getenv("NOTIFY_SOCKET") != nil }

    /// Sends newline-separated assignments, e.g. `["READY=1", "STATUS=idle"]`.
    public func send(_ assignments: [String]) {
        let state = assignments.joined(separator: "\n")
        _ = sd_notify(0, state)
    }

    public func ready(status: String) { send(["READY=1", "STATUS=\(status)"]) }
    public func status(_ text: String) { send(["STATUS=\(text)"]) }
    public func watchdog() { send(["WATCHDOG=1"]) }
    public func stopping(status: String) { send(["STOPPING=1", "STATUS=\(status)"]) }

    /// `RELOADING=1` with the `MONOTONIC_USEC` systemd 253+ expects alongside it.
    public func reloading() {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        let usec = UInt64(ts.tv_sec) * 1_000_000 + UInt64(ts.tv_nsec) / 1000
        send(["RELOADING=1", "MONOTONIC_USEC=\(usec)", "STATUS=reloading configuration"])
    }

    /// Reports a fatal start-up error before exiting.
    public func failed(errno: Int32, status: String) { send(["ERRNO=\(errno)", "STATUS=\(status)"]) }

    /// Half the watchdog interval systemd asked for (`WATCHDOG_USEC` for this pid), or nil.
    public var watchdogPingInterval: Duration? {
        var usec: UInt64 = 0
        guard sd_watchdog_enabled(0, &usec) > 0, usec > 0 else { return nil }
        return .microseconds(Int64(usec / 2))
    }
}
