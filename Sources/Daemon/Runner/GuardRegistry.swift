import Glibc

/// What the process guard knows of the daemon's running tasks, from the daemon's lines on its
/// stdin: each task's process group, app user and container, by the release it belongs to,
/// and each release's fence deadline. A value: the guard acts on what it says (`ProcessGuard`).
///
/// Lines: `R<id>` / `r<id>` a release starts / ends; `+<pgid> <id>` / `-<pgid>` a task's
/// process group; `U<uid> <id>` / `u<uid> <id>` a task run as an app's user; `C<name> <id>` /
/// `c<name>` a task's container; `E<path>` the container engine; `F<id> <ns>` the release's
/// fence deadline on the boot-time clock. Anything else is ignored.
struct GuardRegistry {
    /// Registered releases (`RELEASE_ID`s whose processes end with the daemon).
    private(set) var releases = Set<String>()
    private var groups: [pid_t: String] = [:]
    private var containers: [String: String] = [:]
    /// Tasks running as each app user: by release, how many; and since when (clock ticks
    /// since boot) the user has had one.
    private var userTasks: [uid_t: [String: Int]] = [:]
    private(set) var userSince: [uid_t: (count: Int, since: UInt64)] = [:]
    private(set) var engine: String?
    private var deadlines: [String: Int64] = [:]
    /// Releases past their deadline: their processes are ended whenever seen, until the
    /// daemon forgets the release.
    private(set) var fenced = Set<String>()

    /// Takes one line of the daemon's; `now` is the time in clock ticks since boot.
    mutating func apply(_ line: String, now: UInt64) {
        guard let op = line.first else { return }
        let fields = line.dropFirst().split(separator: " ", maxSplits: 1).map(String.init)
        guard let argument = fields.first else { return }
        let release = fields.count > 1 ? fields[1] : nil
        switch op {
        case "R": releases.insert(argument)
        case "r":
            releases.remove(argument)
            deadlines[argument] = nil
            fenced.remove(argument)
        case "C": containers[argument] = release ?? ""
        case "c": containers[argument] = nil
        case "E": engine = argument
        case "F":
            guard let release, let deadline = Int64(release) else { return }
            deadlines[argument] = deadline
        case "U", "u":
            guard let uid = uid_t(argument), uid != 0, let release else { return }
            if op == "U" {
                let entry = userSince[uid] ?? (0, now)
                userSince[uid] = (entry.count + 1, entry.since)
                userTasks[uid, default: [:]][release, default: 0] += 1
            } else if let entry = userSince[uid] {
                userSince[uid] = entry.count > 1 ? (entry.count - 1, entry.since) : nil
                let left = (userTasks[uid]?[release] ?? 1) - 1
                userTasks[uid]?[release] = left > 0 ? left : nil
                if userTasks[uid]?.isEmpty == true { userTasks[uid] = nil }
            }
        case "+":
            guard let group = pid_t(argument), group > 1 else { return }
            groups[group] = release ?? ""
        case "-":
            guard let group = pid_t(argument) else { return }
            groups[group] = nil
        default: return
        }
    }

    /// The earliest deadline of a release not fenced yet.
    var nextDeadline: Int64? {
        deadlines.filter { !fenced.contains($0.key) }.values.min()
    }

    var hasFenced: Bool { !fenced.isEmpty }

    /// Fences the releases whose deadline has passed at `now` (boot-clock nanoseconds);
    /// returns those newly fenced.
    mutating func due(now: Int64) -> [String] {
        let passed = deadlines.filter { !fenced.contains($0.key) && $0.value <= now }.keys.sorted()
        fenced.formUnion(passed)
        return passed
    }

    func groups(of release: String) -> [pid_t] { groups.filter { $0.value == release }.keys.sorted() }

    func containers(of release: String) -> [String] { containers.filter { $0.value == release }.keys.sorted() }

    /// The app users whose processes go with `release`: those no other release has a task
    /// running as (another release of the same user is not this one's to end), with when
    /// their tasks began.
    func usersToSweep(for release: String) -> [uid_t: (count: Int, since: UInt64)] {
        userSince.filter { uid, _ in
            guard let byRelease = userTasks[uid], byRelease[release] != nil else { return false }
            return byRelease.keys.allSatisfy { $0 == release || fenced.contains($0) }
        }
    }

    var allGroups: [pid_t] { groups.keys.sorted() }
    var allContainers: [String] { containers.keys.sorted() }
}
