import FoundationEssentials

/// What an app's finished releases say about its deploys: the latest outcome of each deploy
/// key in each phase (is there a succeeded predeploy for this postdeploy?) and the newest
/// succeeded release of each app and phase (is this its first deploy?). Built from the records
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
    }

    private struct KeyPhase: Hashable {
        var app: String
        var key: String
        var phase: ReleasePhase
    }

    private struct AppPhase: Hashable {
        var app: String
        var phase: ReleasePhase
    }

    private var latest: [KeyPhase: Release] = [:]
    private var succeeded: [AppPhase: Release] = [:]

    public init() {}

    /// The history of `records` (rejections are left out: nothing of them ran).
    public init(_ records: [ReleaseRecord]) {
        for record in records { add(record) }
    }

    /// The deploy key a record counts under (see above).
    public static func key(of record: ReleaseRecord) -> String? {
        guard let app = record.app, let release = record.release else { return nil }
        return record.cluster?.deployKey ?? ReleaseRequest.defaultDeployKey(app: app, release: release)
    }

    /// Takes a finished release in (its record final; a newer one of its key and phase wins).
    public mutating func add(_ record: ReleaseRecord) {
        guard record.state.isFinal, record.state != .rejected, let app = record.app, let release = record.release,
              let key = Self.key(of: record) else { return }
        let entry = Release(id: record.id, release: release, state: record.state, node: record.cluster?.ranOn ?? record.node,
                            sortTime: record.sortTime)
        let kp = KeyPhase(app: app, key: key, phase: record.phase)
        if let old = latest[kp], (old.sortTime, old.id) > (entry.sortTime, entry.id) {} else { latest[kp] = entry }
        guard record.state == .succeeded else { return }
        let ap = AppPhase(app: app, phase: record.phase)
        if let old = succeeded[ap], (old.sortTime, old.id) > (entry.sortTime, entry.id) {} else { succeeded[ap] = entry }
    }

    /// The latest release of `app` under deploy key `key` in `phase`, if any ended here.
    public func latest(app: String, key: String, phase: ReleasePhase) -> Release? {
        latest[KeyPhase(app: app, key: key, phase: phase)]
    }

    /// Whether a release of `app` in `phase` would be its first successful one.
    public func firstDeploy(app: String, phase: ReleasePhase) -> ReleasePlan.FirstDeploy {
        succeeded[AppPhase(app: app, phase: phase)].map { .deployedBefore($0.described) } ?? .first
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
