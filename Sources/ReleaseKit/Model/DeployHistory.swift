import FoundationEssentials

/// What an app's finished releases say about its deploys: the latest outcome of each deploy
/// key in each phase (is there a succeeded predeploy for this postdeploy? a rejected one counts
/// as the latest), the newest succeeded release of each deploy key, and the tasks that ever
/// succeeded (is this its first deploy?). Built from the records
/// in `done/` — written by the daemon's user only, so nobody else can fake a deploy — and kept
/// current as releases end. A pure value: no I/O.
///
/// A record's deploy key is its cluster's (`cluster.deployKey`) when it has one, else
/// `app/release`: on a single host a deploy is its app and release label.
public struct DeployHistory: Sendable {
    /// One release, as the history keeps it.
    public struct Release: Sendable, Equatable {
        public var id: String
        public var release: String
        public var state: ReleaseState
        public var node: String?
        public var sortTime: Date

        /// In words: "release v41 (01J…) succeeded on web-1".
        public var described: String {
            "release \(release) (\(id)) \(state.rawValue)" + (node.map { " on \($0)" } ?? "")
        }

        /// Where, in words: "in release v41 (01J…) on web-1".
        public var place: String { "in release \(release) (\(id))" + (node.map { " on \($0)" } ?? "") }
    }

    private struct KeyPhase: Hashable {
        var app: String
        var key: String
        var phase: ReleasePhase
    }

    private var latest: [KeyPhase: Release] = [:]
    /// By app: the newest succeeded release of each deploy key (either phase).
    private var succeeded: [String: [String: Release]] = [:]
    /// By app: each task's newest succeeded run.
    private var tasksSucceeded: [String: [String: Release]] = [:]

    public init() {}

    /// The history of `records`.
    public init(_ records: [ReleaseRecord]) {
        for record in records { add(record) }
    }

    /// The deploy key a record counts under (see above).
    public static func key(of record: ReleaseRecord) -> String? {
        guard let app = record.app, let release = record.release else { return nil }
        return record.cluster?.deployKey ?? ReleaseRequest.defaultDeployKey(app: app, release: release)
    }

    /// Takes a finished release in (its record final; a newer one of its key and phase wins).
    /// A rejection counts as its key's latest outcome only when its request could be read (it
    /// names a directory or an image): junk that names an app does not.
    public mutating func add(_ record: ReleaseRecord) {
        guard record.state.isFinal, let app = record.app, let release = record.release, let key = Self.key(of: record) else { return }
        if record.state == .rejected, record.directory == nil, record.image == nil { return }
        let entry = Release(id: record.id, release: release, state: record.state, node: record.cluster?.ranOn ?? record.node,
                            sortTime: record.sortTime)
        func newer(_ old: Release?) -> Bool { old.map { ($0.sortTime, $0.id) < (entry.sortTime, entry.id) } ?? true }
        let kp = KeyPhase(app: app, key: key, phase: record.phase)
        if newer(latest[kp]) { latest[kp] = entry }
        // A task that succeeded did its work, whatever became of its release.
        for task in record.tasks where task.state == .succeeded && newer(tasksSucceeded[app]?[task.name]) {
            tasksSucceeded[app, default: [:]][task.name] = entry
        }
        guard record.state == .succeeded else { return }
        if newer(succeeded[app]?[key]) { succeeded[app, default: [:]][key] = entry }
    }

    /// The latest release of `app` under deploy key `key` in `phase`, if any ended here.
    public func latest(app: String, key: String, phase: ReleasePhase) -> Release? {
        latest[KeyPhase(app: app, key: key, phase: phase)]
    }

    /// What says a release of `app`'s deploy `key` is not the app's first deploy: another of
    /// its deploys that succeeded (either phase; this deploy's own predeploy does not count),
    /// and which of `tasks` already succeeded for it.
    public func firstDeploy(app: String, key: String, tasks: [String]) -> ReleasePlan.FirstDeploy {
        let other = succeeded[app]?.filter { $0.key != key }.values.max { ($0.sortTime, $0.id) < ($1.sortTime, $1.id) }
        var ran: [String: String] = [:]
        for task in tasks { if let r = tasksSucceeded[app]?[task] { ran[task] = r.place } }
        return ReleasePlan.FirstDeploy(deployedBefore: other?.described, ranBefore: ran)
    }

    /// Why a postdeploy of `app` under `key` cannot run, by what ended here: nil when its
    /// predeploy succeeded; `unknown` true when no predeploy of it ended here at all.
    public func predeployProblem(app: String, release: String, key: String) -> (problem: String, unknown: Bool)? {
        guard let pre = latest(app: app, key: key, phase: .predeploy) else {
            return ("no predeploy of \(app) \(release) (deploy key \(key)) has run here: a postdeploy runs only after its deploy's predeploy succeeded", true)
        }
        guard pre.state == .succeeded else {
            return ("the predeploy of \(app) \(release) (deploy key \(key)) \(pre.state.rawValue) (\(pre.id)): a postdeploy runs only after its deploy's predeploy succeeded, and traffic should not have moved", false)
        }
        return nil
    }
}
