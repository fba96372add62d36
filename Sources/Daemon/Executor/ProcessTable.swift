import Glibc
import ReleaseSupport
import SystemPackage
import ReleaseKit

/// Processes and process groups as /proc shows them: the one reader of /proc, for the task
/// executors (what a task left behind) and the process guard.
enum ProcessTable {
    /// A task whose leader started less than this ago is looked for among the pids allocated
    /// since (see `allocated(after:spawned:)`). Allocating pid_max pids (32768 at the least)
    /// takes the whole machine far longer than this, so the range cannot have wrapped all the
    /// way round in the meantime.
    static let recent: Duration = .milliseconds(100)

    /// Whether a leader spawned at `spawned` started less than `recent` ago.
    static func isRecent(_ spawned: ContinuousClock.Instant) -> Bool {
        ContinuousClock.now - spawned < recent
    }

    /// At most this many pids are looked at one by one; a longer range is scanned in /proc.
    static let rangeLimit: pid_t = 512

    /// What /proc/<pid>/stat says of a process.
    struct Stat {
        var state: UInt8
        var group: pid_t
        /// Clock ticks since boot.
        var startTime: UInt64
        /// Neither a zombie nor dead.
        var isLive: Bool { state != UInt8(ascii: "Z") && state != UInt8(ascii: "X") }
    }

    /// The processes where those a task started can be, each with its stat: its descendants'
    /// pids were allocated after the leader's, in increasing order until they wrap (skipping
    /// pids in use, so older processes can be among them too). Read once as the task ends, for
    /// both leftover checks.
    struct Allocated: Sendable {
        var processes: [(pid: pid_t, stat: Stat)]

        /// Whether a process of `pgid` other than a zombie is among them.
        func hasLiveMember(of pgid: pid_t) -> Bool {
            processes.contains { $0.stat.group == pgid && $0.stat.isLive }
        }
    }

    /// The processes after `leader`: for a leader spawned moments ago (`isRecent`) only the
    /// pids from the leader's to the last one allocated (`ns_last_pid`) — a handful, where the
    /// whole of /proc costs a millisecond or more per task. When the spawn is not known or not
    /// recent, the pids wrapped since (the last is below the leader's), the range is long, or
    /// `ns_last_pid` cannot be read: every process in /proc. Nil when /proc cannot be read.
    static func allocated(after leader: pid_t, spawned: ContinuousClock.Instant?) -> Allocated? {
        let pids: [pid_t]
        if let spawned, isRecent(spawned), let last = lastAllocatedPID(), last >= leader, last - leader <= rangeLimit {
            pids = last > leader ? Array((leader + 1)...last) : []
        } else {
            guard let all = allPIDs() else { return nil }
            pids = all
        }
        var buffer = [UInt8](repeating: 0, count: 1024)
        return Allocated(processes: pids.compactMap { pid in stat(of: pid, buffer: &buffer).map { (pid: pid, stat: $0) } })
    }

    /// Every process in /proc, or nil when it cannot be read.
    static func allPIDs() -> [pid_t]? {
        var pids: [pid_t] = []
        do throws(Errno) {
            try Syscalls.forEachEntry(Array("/proc".utf8CString)) { name in
                var pid: pid_t = 0
                for byte in name {
                    guard byte >= 48, byte <= 57, pid < pid_t.max / 10 else { return }
                    pid = pid * 10 + pid_t(byte - 48)
                }
                pids.append(pid)
            }
        } catch {
            return nil
        }
        return pids
    }

    /// Whether any process that is not a zombie belongs to the group. (`kill(-pgid, 0)` also
    /// counts zombies that nobody has reaped yet.) A task's group holds only the leader's
    /// descendants (the task has a session of its own, and a process can join only a group of
    /// its own session), so only the processes allocated after it are looked at.
    static func hasLiveMembers(_ pgid: pid_t) -> Bool {
        allocated(after: pgid, spawned: nil)?.hasLiveMember(of: pgid) ?? true
    }

    /// Whether `pid` is a process (its thread-group leader), not another thread of one: /proc
    /// answers for thread ids too.
    static func isProcess(_ pid: pid_t) -> Bool {
        status(of: pid, field: "Tgid:").flatMap { pid_t($0) } == pid
    }

    /// The real user id of a process.
    static func realUID(of pid: pid_t) -> uid_t? {
        // "Uid:\treal\teffective\tsaved\tfs"
        status(of: pid, field: "Uid:").flatMap { $0.split(separator: "\t").first }.flatMap { uid_t($0) }
    }

    /// A field of /proc/<pid>/status, without its name and the blanks around it.
    private static func status(of pid: pid_t, field: String) -> String? {
        var buffer = [UInt8](repeating: 0, count: 4096)
        guard let bytes = readSmall("/proc/\(pid)/status", into: &buffer) else { return nil }
        let name = Array(field.utf8)
        for line in bytes.split(separator: UInt8(ascii: "\n")) where line.starts(with: name) {
            return String(decoding: line.dropFirst(name.count), as: UTF8.self).trimmingBlanks()
        }
        return nil
    }

    /// Processes whose environment holds `RELEASE_ID=` one of `ids`, among `candidates` (by
    /// default all of /proc); readable for processes of this process's own user, or all with
    /// the privilege to read them.
    static func processes(withReleaseIn ids: Set<String>, among candidates: [pid_t]? = nil) -> [pid_t] {
        let needles = ids.map { Array("RELEASE_ID=\($0)".utf8) }
        var chunk: [UInt8] = []  // made at the first process that can be read
        return (candidates ?? allPIDs() ?? []).filter { pid in
            guard pid > 1, pid != getpid() else { return false }
            guard let fd = try? Syscalls.open(FilePath("/proc/\(pid)/environ"), O_RDONLY) else { return false }
            defer { Syscalls.close(fd) }
            if chunk.isEmpty { chunk = [UInt8](repeating: 0, count: 64 * 1024) }
            // The whole environment (it can be larger than one read; exec bounds it to a few MiB).
            var environment: [UInt8] = []
            while environment.count < 16 << 20, let n = try? Syscalls.readSome(fd, into: &chunk), n > 0 {
                environment += chunk[0..<n]
            }
            // Variables are NUL-separated; a match must be a whole variable.
            return environment.split(separator: 0).contains { variable in needles.contains { variable.elementsEqual($0) } }
        }
    }

    /// A process's state, group and start time; `buffer` may be reused across calls.
    static func stat(of pid: pid_t, buffer: inout [UInt8]) -> Stat? {
        guard let bytes = readSmall("/proc/\(pid)/stat", into: &buffer) else { return nil }
        // "pid (comm) S ppid pgrp …" — comm may hold spaces and parentheses: split after the
        // last ')'. Then state(0) ppid(1) pgrp(2) … starttime(19), field 22 of proc(5).
        guard let close = bytes.lastIndex(of: UInt8(ascii: ")")), close + 2 < bytes.endIndex else { return nil }
        let fields = bytes[(close + 2)...].split(separator: UInt8(ascii: " "))
        guard fields.count > 19, let state = fields[0].first,
              let group = pid_t(String(decoding: fields[2], as: UTF8.self)),
              let start = UInt64(String(decoding: fields[19], as: UTF8.self)) else { return nil }
        return Stat(state: state, group: group, startTime: start)
    }

    static func stat(of pid: pid_t) -> Stat? {
        var buffer = [UInt8](repeating: 0, count: 1024)
        return stat(of: pid, buffer: &buffer)
    }

    /// The pid the kernel allocated last in this pid namespace, if readable.
    static func lastAllocatedPID() -> pid_t? {
        var buffer = [UInt8](repeating: 0, count: 32)
        guard let bytes = readSmall("/proc/sys/kernel/ns_last_pid", into: &buffer) else { return nil }
        return pid_t(String(decoding: bytes.prefix { $0 >= 48 && $0 <= 57 }, as: UTF8.self))
    }

    /// The start of a small file, one read into `buffer`; nil when unreadable or empty.
    private static func readSmall(_ path: String, into buffer: inout [UInt8]) -> ArraySlice<UInt8>? {
        Syscalls.readStart(path, into: &buffer)
    }
}
