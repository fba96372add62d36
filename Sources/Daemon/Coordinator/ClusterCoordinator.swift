import FoundationEssentials
import Logging
import NIOCore
import PostgresNIO
import ReleaseKit
import Synchronization

/// The coordinator of a daemon in a cluster: every node's requests are grouped by deploy key
/// in one PostgreSQL database, and a key's tasks run on the first node that claims it.
///
/// - Claim: one `UPDATE` per attempt, which takes a queued key only when it is the first
///   waiting one of its serial key (by first submission, among keys some live node holds) and
///   none of that serial key runs; a partial unique index (one `running` row per serial key)
///   makes a second concurrent claim fail in the database itself.
/// - Lease: the running node renews it every third of `lease`, with the database's `now()`,
///   and only while it has not run out (a renewal that reaches the database late extends
///   nothing). When it has not renewed in time it stops its release (SIGTERM, SIGKILL after
///   the kill grace) early enough that its tasks have ended before the lease runs out; the
///   process guard holds the same deadline and ends them itself if the daemon cannot (stopped,
///   stalled, starved). Every node sweeps: a running key whose lease ran out is `interrupted`
///   for the whole cluster. Nothing goes back to `queued`: at most once.
/// - Outcome: a release's tasks ended, its outcome is made durable here as pending, then
///   committed to the key only while its lease holds; what the cluster took — that outcome,
///   or `interrupted` when the lease ran out first — is what this node records and its caller
///   is told, as every follower is. A pending outcome left by a crash is settled at start.
/// - Followers: another node with a request of a running or finished key copies its output
///   (written by the running node in chunks, announced with NOTIFY, polled as a fallback) into
///   its own log and ends with the same state.
/// - Fail closed: while the database cannot be reached nothing starts here.
final class ClusterCoordinator: Coordinator {
    let settings: ClusterSettings
    let database: ClusterDatabase
    let spool: Spool
    let logger: Logger
    let killGrace: Duration
    /// Holds each running release's fence deadline, and acts on it if the daemon cannot.
    let processGuard: ProcessGuard?
    let changes = ChangeSignal()
    let registrations = ChangeSignal()
    let state: Mutex<State>

    struct State {
        /// The leases this node holds, by deploy key.
        var leases: LeaseBook
        /// The stop switches of the releases that hold them.
        var controls: [ReleaseID: ReleaseControl] = [:]
        /// Output waiting to be written, by deploy key.
        var output: [String: [UInt8]] = [:]
        /// Ends not yet written to the database (it could not be reached).
        var pendingEnds: [String: (entry: ReleaseQueue.Entry, record: ReleaseRecord)] = [:]
        var reconciled = false
        /// Admitted here, not yet in the database: registered in order of admission, so the
        /// cluster's order of first submission follows this node's.
        var toRegister: [ReleaseQueue.Entry] = []
        /// Told when the cluster changed (a key ended): the scheduler dispatches again.
        var onChange: (@Sendable () async -> Void)?
        /// Releases recovery left pending (their outcome not known to be committed), settled
        /// once the database answers.
        var pending: [ReleaseRecord] = []
        /// Told of each pending release settled at start (its record now in `done/`).
        var onSettled: (@Sendable (ReleaseRecord) async -> Void)?
    }

    var node: String? { settings.node }

    /// `pending`: the releases recovery left pending (`Spool.Recovery.pending`).
    init(settings: ClusterSettings, password: String?, spool: Spool, killGrace: Duration, processGuard: ProcessGuard?,
         pending: [ReleaseRecord] = [], logger: Logger) {
        self.settings = settings
        self.spool = spool
        self.killGrace = killGrace
        self.processGuard = processGuard
        self.logger = logger
        database = ClusterDatabase(settings: settings, password: password, logger: logger)
        var initial = State(leases: LeaseBook(lease: settings.lease, killGrace: killGrace, margin: settings.leaseMargin))
        initial.pending = pending
        state = Mutex(initial)
    }

    /// The scheduler's wake-up for a changed cluster.
    func onChange(_ body: @escaping @Sendable () async -> Void) { state.withLock { $0.onChange = body } }

    /// Told of each release left pending by a crash once it is settled.
    func onSettled(_ body: @escaping @Sendable (ReleaseRecord) async -> Void) { state.withLock { $0.onSettled = body } }

    var leaseMs: Int64 { settings.lease.milliseconds }

    // MARK: Start

    /// Connects, creates or migrates the schema, and settles what this node left running
    /// when it last stopped. Throws when the database refuses this node for good (a wrong
    /// password, a newer schema); an unreachable database is not an error here (the node
    /// waits, nothing starts).
    func start() async throws {
        do {
            try await database.run { conn in try await ClusterSchema.migrate(conn, logger: self.logger) }
            try await heartbeat()
            try await reconcile()
        } catch let error as ClusterDatabase.Unreachable where !error.fatal {
            logger.warning("the cluster database cannot be reached yet (\(error)); nothing starts until it can")
        }
    }

    func tick() async {
        do {
            if !state.withLock({ $0.reconciled }) {
                try await database.run { conn in try await ClusterSchema.migrate(conn, logger: self.logger) }
                try await reconcile()
            }
            try await heartbeat()
            try await renewLeases()
            try await sweep()
            for (_, end) in state.withLock({ $0.pendingEnds }) { await ended(end.entry, record: end.record) }
        } catch {
            // Logged by the database once; nothing starts meanwhile.
        }
        await ClusterStatus.write(self)
    }

    func heartbeat() async throws {
        let node = settings.node
        try await database.run { conn in
            try await conn.query("""
                INSERT INTO releasectl_nodes (node, heartbeat, started) VALUES (\(node), now(), now())
                ON CONFLICT (node) DO UPDATE SET heartbeat = now()
                """, logger: self.logger).count()
        }
    }

    /// What this node left running when it last stopped: a release left pending (its tasks
    /// had ended) is settled with what the cluster took; one whose record is in `done/` gets
    /// that record in the cluster; any other was interrupted.
    func reconcile() async throws {
        let node = settings.node
        for record in state.withLock({ $0.pending }) {
            let settled = try await settle(record)
            try finishPending(settled)
            state.withLock { s in s.pending.removeAll { $0.id == record.id } }
            if let onSettled = state.withLock({ $0.onSettled }) { await onSettled(settled) }
        }
        let left: [(String, String)] = try await database.run { conn in
            var rows: [(String, String)] = []
            for try await (key, run) in try await conn.query(
                "SELECT deploy_key, run_id FROM releasectl_deploys WHERE node = \(node) AND state = \(DeployState.running)",
                logger: self.logger).decode((String, String).self) { rows.append((key, run)) }
            return rows
        }
        let running = state.withLock { Set($0.leases.held.keys) }
        for (key, run) in left where !running.contains(key) {
            if let record = spool.record(in: .done, id: run) {
                try await database.run { conn in
                    try await conn.query("""
                        UPDATE releasectl_deploys SET state = \(DeployState(record.state)), record = \(String(decoding: record.encoded(), as: UTF8.self)),
                            finished_at = now(), lease_until = NULL
                        WHERE deploy_key = \(key) AND node = \(node) AND run_id = \(run) AND state = \(DeployState.running)
                        """, logger: self.logger).count()
                    try await conn.query("SELECT pg_notify('releasectl', \(key))", logger: self.logger).count()
                }
            } else {
                try await database.run { conn in
                    try await conn.query("""
                        UPDATE releasectl_deploys SET state = \(DeployState.interrupted), finished_at = now(), lease_until = NULL
                        WHERE deploy_key = \(key) AND node = \(node) AND state = \(DeployState.running)
                        """, logger: self.logger).count()
                    try await conn.query("SELECT pg_notify('releasectl', \(key))", logger: self.logger).count()
                }
                logger.warning("\(ReleaseRequest.showClusterKey(key)) was running on this node when it last stopped: interrupted")
            }
        }
        state.withLock { $0.reconciled = true }
    }

    /// Records a settled pending release in `done/` (its progress record left whole until
    /// the request moved: see `Spool.finish(_:inPlace:)`).
    private func finishPending(_ record: ReleaseRecord) throws {
        try spool.finish(record, inPlace: false)
        logger.notice("\(record.app ?? "?") \(record.release ?? "?"): its outcome, pending when this node last stopped, is \(record.state.rawValue) in the cluster",
                      metadata: ["release.id": "\(record.id)"])
    }

    // MARK: Coordinator

    func admitted(_ release: ReleaseQueue.Entry) {
        state.withLock { $0.toRegister.append(release) }
        registrations.bump()
    }

    /// Registers admitted releases one after another, in order; what cannot be written
    /// (the database is away) is tried again, still in order. A release the cluster refuses
    /// (its key is another app's, a postdeploy without a succeeded predeploy) is left for
    /// `acquire` to reject.
    func registerAdmitted() async {
        while !Task.isCancelled {
            let seen = registrations.generation
            while let next = state.withLock({ $0.toRegister.first }) {
                do {
                    _ = try await register(next)
                    state.withLock { s in if s.toRegister.first?.id == next.id { s.toRegister.removeFirst() } }
                } catch {
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            await registrations.wait(after: seen, timeout: .seconds(5))
        }
    }

    /// What the cluster made of a release's registration.
    enum Registration {
        case registered
        /// Nothing of this node is registered under the key: it is never followed, cancelled
        /// or counted as this node's, and the release is rejected.
        case refused(RejectReason)
    }

    /// Registers a release's deploy key (for its app, when the key is new), this node's
    /// request of it, and this node as one of the key's participants (for good: a postdeploy's
    /// barrier waits for every node that took part in the predeploy). A key another app holds
    /// is refused; so is a postdeploy whose predeploy did not succeed in the cluster — checked
    /// before its row exists, so no app can take another's postdeploy key either.
    func register(_ release: ReleaseQueue.Entry) async throws -> Registration {
        let node = settings.node, key = release.clusterKey, id = release.id.rawValue, app = release.app
        let barrierMs = settings.barrierTimeout.milliseconds
        return try await database.run { conn in
            if release.phase == .postdeploy {
                var pre: (String, DeployState)?
                for try await row in try await conn.query(
                    "SELECT app, state FROM releasectl_deploys WHERE deploy_key = \(release.deployKey)", logger: self.logger
                ).decode((String, DeployState).self) { pre = row }
                guard let (owner, preState) = pre else {
                    return .refused(RejectReason(.phase, "no predeploy of deploy key \(Masking.preview(release.deployKey)) in the cluster: a postdeploy runs only after its deploy's predeploy succeeded"))
                }
                guard owner == app else { return .refused(Self.keyTaken(release, owner: owner)) }
                guard preState == .succeeded else {
                    let now = preState.isFinal ? preState.rawValue : "still \(preState.rawValue)"
                    return .refused(RejectReason(.phase, "the predeploy of deploy key \(Masking.preview(release.deployKey)) is \(now) in the cluster: a postdeploy runs only after its deploy's predeploy succeeded"))
                }
            }
            try await conn.query("""
                INSERT INTO releasectl_deploys (deploy_key, app, release, serial_key, phase, parent_key, barrier_until)
                VALUES (\(key), \(app), \(release.release), \(release.serialKey), \(release.phase.rawValue),
                        CASE WHEN \(release.phase.rawValue) = 'postdeploy' THEN \(release.deployKey) END,
                        CASE WHEN \(release.phase.rawValue) = 'postdeploy' THEN now() + \(barrierMs) * interval '1 millisecond' END)
                ON CONFLICT (deploy_key) DO NOTHING
                """, logger: self.logger).count()
            var owner = app
            for try await o in try await conn.query("SELECT app FROM releasectl_deploys WHERE deploy_key = \(key)", logger: self.logger)
                .decode(String.self) { owner = o }
            guard owner == app else { return .refused(Self.keyTaken(release, owner: owner)) }
            try await conn.query("""
                INSERT INTO releasectl_requests (node, request_id, deploy_key) VALUES (\(node), \(id), \(key)) ON CONFLICT DO NOTHING
                """, logger: self.logger).count()
            try await conn.query("""
                INSERT INTO releasectl_participants (deploy_key, node) VALUES (\(key), \(node)) ON CONFLICT DO NOTHING
                """, logger: self.logger).count()
            // A node arriving at a barrier: the nodes waiting there look again.
            if release.phase == .postdeploy { try await conn.query("SELECT pg_notify('releasectl', \(key))", logger: self.logger).count() }
            return .registered
        }
    }

    /// Why a release cannot use its deploy key, held by another app.
    static func keyTaken(_ release: ReleaseQueue.Entry, owner: String) -> RejectReason {
        RejectReason(.deployKey, "deploy key \(Masking.preview(release.deployKey)) belongs to app \(owner) in the cluster; a release of \(release.app) cannot use it (a deploy key is one app's: use a key of \(release.app)'s own, such as \(release.app)-<pipeline id>)")
    }

    func acquire(_ release: ReleaseQueue.Entry, control: ReleaseControl) async -> CoordinatorGrant {
        guard state.withLock({ $0.reconciled }) else { return .wait(reason: "waiting for the cluster database") }
        let node = settings.node, key = release.clusterKey, id = release.id.rawValue, lease = leaseMs
        let stale = leaseMs * 3
        do {
            if case .refused(let reason) = try await register(release) { return .reject(reason) }
            let sent = ContinuousClock.now
            // One statement: the key, if it is the first waiting one of its serial key and
            // none of that serial key runs. The unique index turns a concurrent second claim
            // into an error (23505), taken as "not now".
            let claimed: Bool? = try await database.run { conn in
                do {
                    var cancel: Bool?
                    for try await c in try await conn.query("""
                        UPDATE releasectl_deploys d
                        SET state = \(DeployState.running), node = \(node), run_id = \(id), started_at = now(),
                            lease_until = now() + \(lease) * interval '1 millisecond'
                        WHERE d.deploy_key = \(key) AND d.app = \(release.app) AND d.state = \(DeployState.queued)
                          AND NOT EXISTS (SELECT 1 FROM releasectl_deploys r WHERE r.serial_key = d.serial_key AND r.state = \(DeployState.running))
                          AND NOT EXISTS (
                            SELECT 1 FROM releasectl_participants p
                            WHERE p.deploy_key = d.parent_key
                              AND NOT EXISTS (SELECT 1 FROM releasectl_participants s WHERE s.deploy_key IN (d.deploy_key, d.parent_key || chr(30) || 'postdeploy') AND s.node = p.node))
                          AND NOT EXISTS (
                            SELECT 1 FROM releasectl_deploys e
                            WHERE e.serial_key = d.serial_key AND e.state = \(DeployState.queued)
                              AND (e.first_submitted, e.deploy_key) < (d.first_submitted, d.deploy_key)
                              AND EXISTS (SELECT 1 FROM releasectl_requests q JOIN releasectl_nodes n ON n.node = q.node
                                          WHERE q.deploy_key = e.deploy_key AND n.heartbeat > now() - \(stale) * interval '1 millisecond'))
                        RETURNING d.cancel_requested
                        """, logger: self.logger).decode(Bool.self) { cancel = c }
                    return cancel
                } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
                    return nil
                }
            }
            if let cancelled = claimed {
                hold(release, control: control, claimedAt: sent)
                if cancelled { control.stop(.cancelled) }
                return .run
            }
            let (keyState, runner, serialKey, first): (DeployState, String?, String, String?) = try await database.run { conn in
                var row: (DeployState, String?, String) = (.queued, nil, release.serialKey)
                for try await r in try await conn.query(
                    "SELECT state, node, serial_key FROM releasectl_deploys WHERE deploy_key = \(key)", logger: self.logger
                ).decode((DeployState, String?, String).self) { row = r }
                // The key the cluster runs first (when this node has it too, it goes first here).
                var first: String?
                if row.0 == .queued {
                    for try await f in try await conn.query("""
                        SELECT e.deploy_key FROM releasectl_deploys e, releasectl_deploys d
                        WHERE d.deploy_key = \(key) AND e.serial_key = d.serial_key AND e.state = \(DeployState.queued)
                          AND (e.first_submitted, e.deploy_key) < (d.first_submitted, d.deploy_key)
                          AND EXISTS (SELECT 1 FROM releasectl_requests q WHERE q.deploy_key = e.deploy_key AND q.node = \(node))
                        ORDER BY e.first_submitted, e.deploy_key LIMIT 1
                        """, logger: self.logger).decode(String.self) { first = f }
                }
                return (row.0, row.1, row.2, first)
            }
            switch keyState {
            case .queued:
                if release.phase == .postdeploy, let barrier = try await barrier(key) {
                    return .wait(reason: barrier, first: first)
                }
                return .wait(reason: "an earlier deploy of serial key \(serialKey) runs or waits first in the cluster", first: first)
            case .running where runner == node:
                // This very release's claim, whose answer was lost (the statement timed out
                // after the database had done it): nothing of it ran yet, so it runs, its lease
                // taken afresh. Anything else was left by this node's previous run
                // (reconcile has not seen it yet).
                let renewed = ContinuousClock.now
                guard let cancelled = try await renew(key, id: id) else { return .wait(reason: "settling what this node left running") }
                hold(release, control: control, claimedAt: renewed)
                if cancelled { control.stop(.cancelled) }
                return .run
            default: return .follow(node: runner ?? "no node")
            }
        } catch {
            return .wait(reason: "waiting for the cluster database")
        }
    }

    func firstDeploy(_ release: ReleaseQueue.Entry, tasks: [String], local: ReleasePlan.FirstDeploy) async -> ReleasePlan.FirstDeploy? {
        let app = release.app, deployKey = release.deployKey
        return try? await database.run { conn in
            var found = ReleasePlan.FirstDeploy()
            // Another deploy of the app that succeeded, on any node (this deploy's own
            // predeploy does not count).
            for try await (name, node, run) in try await conn.query("""
                SELECT release, node, run_id FROM releasectl_deploys
                WHERE app = \(app) AND state = \(DeployState.succeeded) AND coalesce(parent_key, deploy_key) <> \(deployKey)
                ORDER BY finished_at DESC LIMIT 1
                """, logger: self.logger).decode((String, String?, String?).self) {
                found.deployedBefore = "release \(name) (\(run ?? "?")) succeeded" + (node.map { " on \($0)" } ?? "") + " in the cluster"
            }
            // The first-deploy-only tasks that already succeeded for the app (its records).
            if !tasks.isEmpty {
                for try await (task, name, node, run) in try await conn.query("""
                    SELECT DISTINCT ON (t->>'name') t->>'name', d.release, d.node, d.run_id
                    FROM releasectl_deploys d, jsonb_array_elements(d.record::jsonb -> 'tasks') t
                    WHERE d.app = \(app) AND d.record IS NOT NULL AND t->>'state' = 'succeeded' AND t->>'name' = ANY(\(tasks))
                    ORDER BY t->>'name', d.finished_at DESC
                    """, logger: self.logger).decode((String, String, String?, String?).self) {
                    found.ranBefore[task] = "in release \(name) (\(run ?? "?"))" + (node.map { " on \($0)" } ?? "") + ", in the cluster"
                }
            }
            return local.merged(with: found)
        }
    }

    func ended(_ release: ReleaseQueue.Entry, record: ReleaseRecord) async {
        do {
            try await finish(release, record: record)
            state.withLock { $0.pendingEnds[release.clusterKey] = nil }
        } catch {
            state.withLock { $0.pendingEnds[release.clusterKey] = (release, record) }
        }
    }

    /// Writes what is left of a release's end once its record is in `done/`: a cancel before
    /// it started goes to the whole deploy, and this node's request of the key is gone. (The
    /// outcome of a release that ran here was committed before: `commit`.)
    func finish(_ release: ReleaseQueue.Entry, record: ReleaseRecord) async throws {
        let node = settings.node, key = release.clusterKey, id = release.id.rawValue
        let ranHere = record.cluster?.ranOn == node
        try await database.run { conn in
            if !ranHere, record.cluster == nil, record.state == .cancelled {
                // Cancelled here before it started: the deploy is cancelled on every node
                // (only ever the app's own: a key another app holds was never this node's).
                try await conn.query("""
                    UPDATE releasectl_deploys SET cancel_requested = true
                    WHERE deploy_key = \(key) AND app = \(release.app) AND state IN (\(DeployState.queued), \(DeployState.running))
                    """, logger: self.logger).count()
            }
            try await conn.query("DELETE FROM releasectl_requests WHERE node = \(node) AND request_id = \(id)", logger: self.logger).count()
        }
        letGo(key, id: release.id)
        if let onChange = state.withLock({ $0.onChange }) { await onChange() }
    }
}
