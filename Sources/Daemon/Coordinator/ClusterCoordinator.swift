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
/// - Lease: the running node renews it every third of `lease`, with the database's `now()`.
///   When it has not renewed in time it stops its release (SIGTERM, SIGKILL after the kill
///   grace) early enough that its tasks have ended before the lease runs out. Every node
///   sweeps: a running key whose lease ran out is `interrupted` for the whole cluster. Nothing
///   goes back to `queued`: at most once.
/// - Followers: another node with a request of a running or finished key copies its output
///   (written by the running node in chunks, announced with NOTIFY, polled as a fallback) into
///   its own log and ends with the same state.
/// - Fail closed: while the database cannot be reached nothing starts here.
final class ClusterCoordinator: Coordinator {
    let settings: ClusterSettings
    let database: ClusterDatabase
    let spool: Spool
    private let logger: Logger
    private let killGrace: Duration
    private let changes = ChangeSignal()
    private let registrations = ChangeSignal()
    private let state = Mutex(State())

    private struct State {
        /// Releases running here, by deploy key.
        var running: [String: Lease] = [:]
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
    }

    private struct Lease {
        var entry: ReleaseQueue.Entry
        var control: ReleaseControl
        /// When the last renewal that succeeded was sent (the lease lasts from then).
        var renewedAt: ContinuousClock.Instant
    }

    var node: String? { settings.node }

    init(settings: ClusterSettings, password: String?, spool: Spool, killGrace: Duration, logger: Logger) {
        self.settings = settings
        self.spool = spool
        self.killGrace = killGrace
        self.logger = logger
        database = ClusterDatabase(settings: settings, password: password, logger: logger)
    }

    /// The scheduler's wake-up for a changed cluster.
    func onChange(_ body: @escaping @Sendable () async -> Void) { state.withLock { $0.onChange = body } }

    private var leaseMs: Int64 { settings.lease.milliseconds }

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

    /// Runs until cancelled: heartbeat, lease renewals and the deadline watch, the sweep of
    /// expired leases, pending ends, output, LISTEN for changes, the status file.
    func run() async {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.listen() }
            group.addTask { await self.registerAdmitted() }
            group.addTask {
                while !Task.isCancelled {
                    await self.flushOutput()
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    self.watchDeadlines()
                    try? await Task.sleep(for: .milliseconds(200))
                }
            }
            while !Task.isCancelled {
                await self.tick()
                try? await Task.sleep(for: self.settings.lease / 3)
            }
        }
    }

    private func tick() async {
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

    private func heartbeat() async throws {
        let node = settings.node
        try await database.run { conn in
            try await conn.query("""
                INSERT INTO releasectl_nodes (node, heartbeat, started) VALUES (\(node), now(), now())
                ON CONFLICT (node) DO UPDATE SET heartbeat = now()
                """, logger: self.logger).count()
        }
    }

    /// What this node left running when it last stopped: a release whose record is in
    /// `done/` gets that record in the cluster; any other was interrupted.
    private func reconcile() async throws {
        let node = settings.node
        let left: [(String, String)] = try await database.run { conn in
            var rows: [(String, String)] = []
            for try await (key, run) in try await conn.query(
                "SELECT deploy_key, run_id FROM releasectl_deploys WHERE node = \(node) AND state = 'running'",
                logger: self.logger).decode((String, String).self) { rows.append((key, run)) }
            return rows
        }
        let running = state.withLock { Set($0.running.keys) }
        for (key, run) in left where !running.contains(key) {
            if let record = spool.record(in: .done, id: run) {
                let entry = ReleaseQueue.Entry(id: ReleaseID(run)!, serialKey: "", app: record.app ?? "", release: record.release ?? "",
                                               deployKey: key)
                try await finish(entry, record: record)
            } else {
                try await database.run { conn in
                    try await conn.query("""
                        UPDATE releasectl_deploys SET state = 'interrupted', finished_at = now(), lease_until = NULL
                        WHERE deploy_key = \(key) AND node = \(node) AND state = 'running'
                        """, logger: self.logger).count()
                    try await conn.query("SELECT pg_notify('releasectl', \(key))", logger: self.logger).count()
                }
                logger.warning("\(key) was running on this node when it last stopped: interrupted")
            }
        }
        state.withLock { $0.reconciled = true }
    }

    // MARK: Coordinator

    func admitted(_ release: ReleaseQueue.Entry) {
        state.withLock { $0.toRegister.append(release) }
        registrations.bump()
    }

    /// Registers admitted releases one after another, in order; what cannot be written
    /// (the database is away) is tried again, still in order.
    private func registerAdmitted() async {
        while !Task.isCancelled {
            let seen = registrations.generation
            while let next = state.withLock({ $0.toRegister.first }) {
                do {
                    try await register(next)
                    state.withLock { s in if s.toRegister.first?.id == next.id { s.toRegister.removeFirst() } }
                } catch {
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            await registrations.wait(after: seen, timeout: .seconds(5))
        }
    }

    private func register(_ release: ReleaseQueue.Entry) async throws {
        let node = settings.node, key = release.deployKey, id = release.id.rawValue
        try await database.run { conn in
            try await conn.query("""
                INSERT INTO releasectl_deploys (deploy_key, app, release, serial_key) VALUES (\(key), \(release.app), \(release.release), \(release.serialKey))
                ON CONFLICT (deploy_key) DO NOTHING
                """, logger: self.logger).count()
            try await conn.query("""
                INSERT INTO releasectl_requests (node, request_id, deploy_key) VALUES (\(node), \(id), \(key)) ON CONFLICT DO NOTHING
                """, logger: self.logger).count()
        }
    }

    func acquire(_ release: ReleaseQueue.Entry, control: ReleaseControl) async -> CoordinatorGrant {
        guard state.withLock({ $0.reconciled }) else { return .wait(reason: "waiting for the cluster database") }
        let node = settings.node, key = release.deployKey, id = release.id.rawValue, lease = leaseMs
        let stale = leaseMs * 3
        do {
            try await register(release)
            let sent = ContinuousClock.now
            // One statement: the key, if it is the first waiting one of its serial key and
            // none of that serial key runs. The unique index turns a concurrent second claim
            // into an error (23505), taken as "not now".
            let claimed: Bool? = try await database.run { conn in
                do {
                    var cancel: Bool?
                    for try await c in try await conn.query("""
                        UPDATE releasectl_deploys d
                        SET state = 'running', node = \(node), run_id = \(id), started_at = now(),
                            lease_until = now() + \(lease) * interval '1 millisecond'
                        WHERE d.deploy_key = \(key) AND d.state = 'queued'
                          AND NOT EXISTS (SELECT 1 FROM releasectl_deploys r WHERE r.serial_key = d.serial_key AND r.state = 'running')
                          AND NOT EXISTS (
                            SELECT 1 FROM releasectl_deploys e
                            WHERE e.serial_key = d.serial_key AND e.state = 'queued'
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
                state.withLock { $0.running[key] = Lease(entry: release, control: control, renewedAt: sent) }
                if cancelled { control.stop(.cancelled) }
                return .run
            }
            let (keyState, runner, serialKey, first): (String, String?, String, String?) = try await database.run { conn in
                var row: (String, String?, String) = ("queued", nil, release.serialKey)
                for try await r in try await conn.query(
                    "SELECT state, node, serial_key FROM releasectl_deploys WHERE deploy_key = \(key)", logger: self.logger
                ).decode((String, String?, String).self) { row = r }
                // The key the cluster runs first (when this node has it too, it goes first here).
                var first: String?
                if row.0 == "queued" {
                    for try await f in try await conn.query("""
                        SELECT e.deploy_key FROM releasectl_deploys e, releasectl_deploys d
                        WHERE d.deploy_key = \(key) AND e.serial_key = d.serial_key AND e.state = 'queued'
                          AND (e.first_submitted, e.deploy_key) < (d.first_submitted, d.deploy_key)
                          AND EXISTS (SELECT 1 FROM releasectl_requests q WHERE q.deploy_key = e.deploy_key AND q.node = \(node))
                        ORDER BY e.first_submitted, e.deploy_key LIMIT 1
                        """, logger: self.logger).decode(String.self) { first = f }
                }
                return (row.0, row.1, row.2, first)
            }
            switch keyState {
            case "queued":
                return .wait(reason: "an earlier deploy of serial key \(serialKey) runs or waits first in the cluster", first: first)
            case "running" where runner == node:
                // Left by this node's previous run (reconcile has not seen it yet).
                return .wait(reason: "settling what this node left running")
            default: return .follow(node: runner ?? "an unknown node")
            }
        } catch {
            return .wait(reason: "waiting for the cluster database")
        }
    }

    func publish(_ release: ReleaseQueue.Entry, _ bytes: [UInt8]) {
        state.withLock { $0.output[release.deployKey, default: []].append(contentsOf: bytes) }
    }

    /// Writes the output gathered so far, one row per key, and wakes the followers.
    private func flushOutput() async {
        let batches = state.withLock { s -> [String: [UInt8]] in defer { s.output = [:] }; return s.output }
        guard !batches.isEmpty else { return }
        do {
            try await database.run { conn in
                for (key, bytes) in batches {
                    try await conn.query("INSERT INTO releasectl_output (deploy_key, chunk) VALUES (\(key), \(ByteBuffer(bytes: bytes)))",
                                         logger: self.logger).count()
                    try await conn.query("SELECT pg_notify('releasectl', \(key))", logger: self.logger).count()
                }
            }
        } catch {
            // Kept for the next flush, in order.
            state.withLock { s in for (key, bytes) in batches { s.output[key] = bytes + (s.output[key] ?? []) } }
        }
    }

    func follow(_ release: ReleaseQueue.Entry, write: @escaping @Sendable ([UInt8]) -> Void, control: ReleaseControl) async -> FollowedOutcome? {
        let key = release.deployKey
        var last: Int64 = 0
        var cancelSent = false
        while true {
            if control.reason == .shutdown || control.reason == .leaseLost { return nil }
            let seen = changes.generation
            do {
                if control.reason == .cancelled && !cancelSent {
                    try await database.run { conn in
                        try await conn.query("""
                            UPDATE releasectl_deploys SET cancel_requested = true WHERE deploy_key = \(key) AND state IN ('queued', 'running')
                            """, logger: self.logger).count()
                    }
                    cancelSent = true
                }
                let (keyState, runner, recordText): (String, String?, String?) = try await database.run { conn in
                    var row: (String, String?, String?) = ("queued", nil, nil)
                    for try await r in try await conn.query(
                        "SELECT state, node, record FROM releasectl_deploys WHERE deploy_key = \(key)", logger: self.logger
                    ).decode((String, String?, String?).self) { row = r }
                    return row
                }
                // Output after the state: a key that has ended has all its output written.
                while true {
                    let next = try await copyOutput(key, after: last, write: write)
                    if next == last { break }
                    last = next
                }
                if let final = ReleaseState(rawValue: keyState), final != .running, final != .queued {
                    let record = recordText.flatMap { try? ReleaseRecord.decode(Array($0.utf8)) }
                    let reason = record?.reason ?? (final == .interrupted ? "interrupted: node \(runner ?? "?") stopped renewing its lease" : nil)
                    return FollowedOutcome(record: record, state: final, ranOn: runner ?? "?", reason: reason)
                }
            } catch {
                // Waits for the database; nothing of it is lost (the output is copied by position).
            }
            await changes.wait(after: seen, timeout: .milliseconds(500))
        }
    }

    /// Copies the key's output after position `after` (read whole, then written: a read that
    /// times out writes nothing, so nothing is copied twice); returns the new position.
    private func copyOutput(_ key: String, after: Int64, write: @Sendable ([UInt8]) -> Void) async throws -> Int64 {
        let rows: [(Int64, [UInt8])] = try await database.run { conn in
            var rows: [(Int64, [UInt8])] = []
            for try await (seq, chunk) in try await conn.query(
                "SELECT seq, chunk FROM releasectl_output WHERE deploy_key = \(key) AND seq > \(after) ORDER BY seq LIMIT 1000", logger: self.logger
            ).decode((Int64, ByteBuffer).self) {
                rows.append((seq, Array(chunk.readableBytesView)))
            }
            return rows
        }
        for (_, bytes) in rows { write(bytes) }
        return rows.last?.0 ?? after
    }

    func ended(_ release: ReleaseQueue.Entry, record: ReleaseRecord) async {
        do {
            try await finish(release, record: record)
            state.withLock { $0.pendingEnds[release.deployKey] = nil }
        } catch {
            state.withLock { $0.pendingEnds[release.deployKey] = (release, record) }
        }
    }

    /// Writes a release's end: the key's final state and record when it ran here (its output
    /// first), and this node's request of it gone either way.
    private func finish(_ release: ReleaseQueue.Entry, record: ReleaseRecord) async throws {
        let node = settings.node, key = release.deployKey, id = release.id.rawValue
        let ranHere = state.withLock { $0.running[key]?.entry.id == release.id } || record.cluster?.ranOn == node
        if ranHere { await flushOutput() }
        let text = String(decoding: record.encoded(), as: UTF8.self)
        try await database.run { conn in
            if ranHere {
                try await conn.query("""
                    UPDATE releasectl_deploys SET state = \(record.state.rawValue), record = \(text), finished_at = now(), lease_until = NULL
                    WHERE deploy_key = \(key) AND node = \(node) AND run_id = \(id) AND state = 'running'
                    """, logger: self.logger).count()
                try await conn.query("SELECT pg_notify('releasectl', \(key))", logger: self.logger).count()
            }
            if !ranHere, record.cluster == nil, record.state == .cancelled {
                // Cancelled here before it started: the deploy is cancelled on every node.
                try await conn.query(
                    "UPDATE releasectl_deploys SET cancel_requested = true WHERE deploy_key = \(key) AND state IN ('queued', 'running')",
                    logger: self.logger).count()
            }
            try await conn.query("DELETE FROM releasectl_requests WHERE node = \(node) AND request_id = \(id)", logger: self.logger).count()
        }
        state.withLock { s in if s.running[key]?.entry.id == release.id { s.running[key] = nil } }
        if let onChange = state.withLock({ $0.onChange }) { await onChange() }
    }

    // MARK: Leases

    private func renewLeases() async throws {
        let node = settings.node, lease = leaseMs
        for (key, held) in state.withLock({ $0.running }) {
            let id = held.entry.id.rawValue
            let sent = ContinuousClock.now
            let cancel: Bool? = try await database.run { conn in
                var cancel: Bool?
                for try await c in try await conn.query("""
                    UPDATE releasectl_deploys SET lease_until = now() + \(lease) * interval '1 millisecond'
                    WHERE deploy_key = \(key) AND node = \(node) AND run_id = \(id) AND state = 'running'
                    RETURNING cancel_requested
                    """, logger: self.logger).decode(Bool.self) { cancel = c }
                return cancel
            }
            guard let cancel else {
                logger.error("\(key): another node ended this node's lease; stopping its tasks")
                held.control.stop(.leaseLost)
                continue
            }
            state.withLock { $0.running[key]?.renewedAt = sent }
            if cancel { held.control.stop(.cancelled) }
        }
    }

    /// Stops a release whose lease this node could not renew, so that its tasks have ended
    /// (SIGTERM, the kill grace, SIGKILL) before the lease runs out.
    private func watchDeadlines() {
        let margin = min(Duration.seconds(1), settings.lease / 6)
        let now = ContinuousClock.now
        for (key, held) in state.withLock({ $0.running }) where held.control.reason == nil {
            if now >= held.renewedAt + settings.lease - killGrace - margin {
                logger.error("\(key): the lease could not be renewed in time; ending its tasks before it runs out")
                held.control.stop(.leaseLost)
            }
        }
    }

    /// Any node: a running key whose lease ran out is interrupted for the whole cluster.
    private func sweep() async throws {
        let swept: [(String, String?)] = try await database.run { conn in
            var rows: [(String, String?)] = []
            for try await r in try await conn.query("""
                UPDATE releasectl_deploys SET state = 'interrupted', finished_at = now(), lease_until = NULL
                WHERE state = 'running' AND lease_until < now()
                RETURNING deploy_key, node
                """, logger: self.logger).decode((String, String?).self) { rows.append(r) }
            for (key, _) in rows { try await conn.query("SELECT pg_notify('releasectl', \(key))", logger: self.logger).count() }
            return rows
        }
        for (key, runner) in swept {
            logger.warning("\(key): node \(runner ?? "?") stopped renewing its lease; interrupted for the whole cluster")
        }
        if !swept.isEmpty, let onChange = state.withLock({ $0.onChange }) { await onChange() }
    }

    // MARK: LISTEN

    /// Holds a connection of its own LISTENing on `releasectl`; each notification wakes the
    /// followers and the scheduler. Reconnects after a failure.
    private func listen() async {
        while !Task.isCancelled {
            do {
                let conn = try await database.connect()
                defer { Task { try? await conn.close() } }
                try await conn.listen(on: "releasectl") { notifications in
                    for try await _ in notifications {
                        self.changes.bump()
                        if let onChange = self.state.withLock({ $0.onChange }) { await onChange() }
                    }
                }
            } catch {
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// What `cluster status` shows (see `ClusterStatus`).
    func snapshot() async -> ClusterStatus.Snapshot {
        let problem = await database.problem
        let stale = leaseMs * 3
        do {
            return try await database.run { conn in
                var nodes: [ClusterStatus.Node] = []
                for try await (name, age) in try await conn.query(
                    "SELECT node, (extract(epoch FROM now() - heartbeat) * 1000)::bigint FROM releasectl_nodes ORDER BY node", logger: self.logger
                ).decode((String, Int64).self) { nodes.append(.init(node: name, heartbeatAgeMs: age, live: age < stale)) }
                var running: [ClusterStatus.Running] = []
                for try await (key, app, release, node, left) in try await conn.query("""
                    SELECT deploy_key, app, release, node, (extract(epoch FROM lease_until - now()) * 1000)::bigint
                    FROM releasectl_deploys WHERE state = 'running' ORDER BY started_at
                    """, logger: self.logger).decode((String, String, String, String, Int64).self) {
                    running.append(.init(deployKey: key, app: app, release: release, node: node, leaseLeftMs: left))
                }
                var waiting: [ClusterStatus.Waiting] = []
                for try await (key, app, release, serial, nodes) in try await conn.query("""
                    SELECT d.deploy_key, d.app, d.release, d.serial_key, coalesce(string_agg(q.node, ',' ORDER BY q.node), '')
                    FROM releasectl_deploys d LEFT JOIN releasectl_requests q ON q.deploy_key = d.deploy_key
                    WHERE d.state = 'queued' GROUP BY d.deploy_key ORDER BY d.first_submitted LIMIT 200
                    """, logger: self.logger).decode((String, String, String, String, String).self) {
                    waiting.append(.init(deployKey: key, app: app, release: release, serialKey: serial,
                                         nodes: nodes.split(separator: ",").map(String.init)))
                }
                return ClusterStatus.Snapshot(node: self.settings.node, database: nil, nodes: nodes, running: running, waiting: waiting)
            }
        } catch {
            return ClusterStatus.Snapshot(node: settings.node, database: problem ?? "\(error)", nodes: [], running: [], waiting: [])
        }
    }
}

/// A generation counter with waiters: bumped on every change, waited on with a timeout.
final class ChangeSignal: Sendable {
    private struct State {
        var generation = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
        var next = 0
    }
    private let state = Mutex(State())

    var generation: Int { state.withLock { $0.generation } }

    func bump() {
        let waiters = state.withLock { s -> [CheckedContinuation<Void, Never>] in
            s.generation += 1
            defer { s.waiters = [:] }
            return Array(s.waiters.values)
        }
        for w in waiters { w.resume() }
    }

    /// Returns once the generation is past `seen`, or after `timeout`.
    func wait(after seen: Int, timeout: Duration) async {
        let token = state.withLock { s -> Int in s.next += 1; return s.next }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
                    let now = self.state.withLock { s -> Bool in
                        if s.generation != seen { return true }
                        s.waiters[token] = c
                        return false
                    }
                    if now { c.resume() }
                }
            }
            group.addTask { try? await Task.sleep(for: timeout) }
            _ = await group.next()
            group.cancelAll()
            if let c = self.state.withLock({ $0.waiters.removeValue(forKey: token) }) { c.resume() }
        }
    }
}

extension ClusterStatus {
    /// Writes what `releasectl cluster status` reads.
    static func write(_ coordinator: ClusterCoordinator) async {
        var snapshot = await coordinator.snapshot()
        snapshot.writtenAt = Timestamp.format(Date())
        try? coordinator.spool.writeClusterStatus(snapshot.encoded())
    }
}
