import Glibc
import ReleaseSupport
import ReleaseKit
import SystemPackage

/// The cgroup a task's figures are read from once it has ended: a parent the task's processes
/// (a host task's scope, a container) run under, which outlives them — a transient slice this
/// daemon holds (under systemd), or a folder of its own (a container engine managing cgroups
/// itself). Memory peaks and CPU time are hierarchical, so the parent's are the task's.
struct TaskCgroup: Sendable {
    /// The path below each hierarchy's root: `/releasectl.slice/releasectl-<id>_migrate.slice`.
    let path: String

    static let root = "/sys/fs/cgroup"
    /// cgroup v2 (unified) when the root holds cgroup.controllers; else v1 controllers.
    static let unified = access(root + "/cgroup.controllers", F_OK) == 0

    /// What the task used: CPU time (user + system) and the memory peak; nil when the cgroup
    /// cannot be read (a v2 kernel older than 5.19 has no memory.peak: the peak is then nil).
    func usage() -> (cpuMs: Int64?, peakMemoryBytes: Int64?) {
        if Self.unified {
            let cpu = Self.field("usage_usec", in: Self.read(Self.root + path + "/cpu.stat")).map { $0 / 1000 }
            let peak = Self.read(Self.root + path + "/memory.peak").flatMap { Int64($0.trimmingBlanks()) }
            return (cpu, peak)
        }
        let cpu = Self.read(Self.root + "/cpuacct" + path + "/cpuacct.usage").flatMap { Int64($0.trimmingBlanks()) }.map { $0 / 1_000_000 }
        let peak = Self.read(Self.root + "/memory" + path + "/memory.max_usage_in_bytes").flatMap { Int64($0.trimmingBlanks()) }
        return (cpu, peak)
    }

    /// Whether the kernel's OOM killer ended something in it (since its count was `before`).
    /// cgroup v2 counts it (memory.events, hierarchical), v1 in each folder
    /// (memory.oom_control, added up here): there `killed` (the task died of SIGKILL) must
    /// also hold. With no count to read (a v1 kernel before 4.13), a task killed by SIGKILL
    /// whose memory peak reached its limit is taken for an OOM kill.
    func oomKilled(killed: Bool, limit: Int64?, before: Int64 = 0) -> Bool {
        if let count = oomKills() { return count > before && (Self.unified || killed) }
        guard killed, let limit, let peak = usage().peakMemoryBytes else { return false }
        return peak >= limit - limit / 50
    }

    /// How many processes the kernel's OOM killer has ended in it (its folders below
    /// included); nil when the kernel keeps no count.
    func oomKills() -> Int64? {
        if Self.unified { return Self.field("oom_kill", in: Self.read(Self.root + path + "/memory.events")) }
        return Self.v1OOMKills(Self.root + "/memory" + path)
    }

    private static func v1OOMKills(_ dir: String) -> Int64? {
        guard var total = field("oom_kill", in: read(dir + "/memory.oom_control")) else { return nil }
        for name in (try? entries(dir)) ?? [] {
            var st = stat()
            if lstat(dir + "/" + name, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { total += v1OOMKills(dir + "/" + name) ?? 0 }
        }
        return total
    }

    /// Removes its folders (a v1 controller each, or the one v2 folder), innermost first:
    /// for a folder made by the engine, not a slice (systemd removes those). The engine's
    /// monitor may still be leaving the folder when the container has ended (a folder with a
    /// process in it cannot be removed): tried again for up to `patience`. Blocking.
    func removeFolders(patience: Duration = .seconds(5)) {
        let clock = ContinuousClock(), until = clock.now + patience
        while !removeFoldersOnce(), clock.now < until { usleep(50_000) }
    }

    /// True when every folder is gone.
    private func removeFoldersOnce() -> Bool {
        let roots: [String]
        if Self.unified {
            roots = [Self.root]
        } else {
            roots = ((try? TaskCgroup.entries(Self.root)) ?? []).compactMap { name in
                var st = stat()
                let p = Self.root + "/" + name
                return lstat(p, &st) == 0 && st.st_mode & S_IFMT == S_IFDIR ? p : nil
            }
        }
        for root in roots { Self.removeTree(root + path) }
        return roots.allSatisfy { access($0 + path, F_OK) != 0 }
    }

    private static func removeTree(_ dir: String) {
        for name in (try? TaskCgroup.entries(dir)) ?? [] {
            var st = stat()
            if lstat(dir + "/" + name, &st) == 0, st.st_mode & S_IFMT == S_IFDIR { removeTree(dir + "/" + name) }
        }
        rmdir(dir)
    }

    private static func read(_ path: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        return Syscalls.readStart(path, into: &buffer).map { String(decoding: $0, as: UTF8.self) }
    }

    /// `key N` in a flat-keyed file.
    private static func field(_ key: String, in text: String?) -> Int64? {
        guard let text else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ")
            if parts.count == 2, parts[0] == key { return Int64(parts[1]) }
        }
        return nil
    }
}

extension ResourceLimitsC {
    init(_ limits: ResourceLimits) {
        memoryMax = limits.memoryBytes.map { UInt64($0) } ?? 0
        // systemd's CPUQuotaPerSecUSec is per second; it writes quota × period / 1 s per period.
        cpuQuotaUsec = limits.cpuQuotaMicros.map { UInt64($0) * UInt64(1_000_000 / ResourceLimits.cpuPeriodMicros) } ?? 0
        tasksMax = limits.pids.map { UInt64($0) } ?? 0
    }
}

extension TaskCgroup {
    /// The names in a folder (a cgroup's children).
    static func entries(_ path: String) throws(Errno) -> [String] {
        try Syscalls.listDirectory(Array(path.utf8CString)).map { String(decoding: $0, as: UTF8.self) }
    }
}
