import Glibc
import ReleaseKit
import ReleaseSupport

/// What a configuration means on this very daemon, beyond what the file itself can say:
/// settings that cannot work here stop the daemon at start and are refused on reload (the
/// old configuration kept); settings that have no effect here are warned about.
enum ConfigCheck {
    /// A configuration that cannot work here.
    struct Refused: Error, CustomStringConvertible {
        var problems: [String]
        var description: String { problems.joined(separator: "; ") }
    }

    /// Throws `Refused` naming every setting that cannot work here.
    static func refuse(_ config: DaemonConfig) throws(Refused) {
        let problems = problems(config)
        if !problems.isEmpty { throw Refused(problems: problems) }
    }

    /// The settings that cannot work here, each naming the values and what would work: in a
    /// cluster, a service watchdog (`WATCHDOG_USEC`, the unit's `WatchdogSec=`) longer than the
    /// lease — a daemon hung that long is restarted only after its releases' leases ran out.
    /// (A lease the kill grace cannot fit is the file's own problem: `DaemonConfig.parse`.)
    static func problems(_ config: DaemonConfig, watchdog: Duration? = Self.watchdog) -> [String] {
        guard let cluster = config.cluster, let watchdog, watchdog > cluster.lease else { return [] }
        return ["the unit's watchdog (WatchdogSec=\(DurationParser.format(watchdog))) is longer than [cluster] lease = \"\(DurationParser.format(cluster.lease))\": a hung daemon would be restarted only after its releases' leases ran out; set WatchdogSec= to at most the lease"]
    }

    /// The service watchdog systemd set for this daemon (`WATCHDOG_USEC`), if any.
    static var watchdog: Duration? {
        guard let text = getenv("WATCHDOG_USEC").map({ String(cString: $0) }), let usec = Int64(text), usec > 0 else { return nil }
        return .microseconds(usec)
    }

    /// The settings that have no effect here.
    static func warnings(_ config: DaemonConfig, noNewPrivileges: Bool = Self.noNewPrivileges) -> [String] {
        guard noNewPrivileges else { return [] }
        return config.apps.filter { !$0.value.privileges.noNewPrivileges }.keys.sorted().map { app in
            "[apps.\(app)] no-new-privileges = false has no effect: released itself runs with no new privileges (the unit's NoNewPrivileges=yes), and so does every process it starts"
        }
    }

    /// Whether this process runs with no_new_privs (`NoNewPrivs:` in /proc/self/status).
    static var noNewPrivileges: Bool {
        guard let status = try? SmallFile.read("/proc/self/status", limit: 16 << 10) else { return false }
        return String(decoding: status, as: UTF8.self).split(separator: "\n").contains { $0.hasPrefix("NoNewPrivs:") && $0.hasSuffix("1") }
    }
}
