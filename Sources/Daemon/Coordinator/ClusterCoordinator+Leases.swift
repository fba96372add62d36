import FoundationEssentials
import Logging
import NIOCore
import PostgresNIO
import ReleaseKit

/// Leases: renewed with the database's clock, watched against their deadline here, swept on
/// every node; and the snapshot `releasectl cluster status` shows.
extension ClusterCoordinator {
    /// Extends the lease of this node's run `id` of `key` by a whole lease from the database's
    /// `now()`, if it has not run out yet (a renewal that reaches the database late, after a
    /// partition or a stall, revives nothing): whether a cancel was asked for, or nil when the
    /// run is no longer this node's or its lease ran out.
    func renew(_ key: String, id: String) async throws -> Bool? {
        let node = settings.node, lease = leaseMs
        return try await database.run { conn in
            var cancel: Bool?
            for try await c in try await conn.query("""
                UPDATE releasectl_deploys SET lease_until = now() + \(lease) * interval '1 millisecond'
                WHERE deploy_key = \(key) AND node = \(node) AND run_id = \(id) AND state = 'running' AND lease_until >= now()
                RETURNING cancel_requested
                """, logger: self.logger).decode(Bool.self) { cancel = c }
            return cancel
        }
    }

    func renewLeases() async throws {
        for (key, held) in state.withLock({ $0.running }) {
            let sent = ContinuousClock.now
            let cancel = try await renew(key, id: held.entry.id.rawValue)
            guard let cancel else {
                logger.error("\(key): this node's lease ran out or another node ended it; stopping its tasks")
                held.control.stop(.leaseLost)
                continue
            }
            state.withLock { $0.running[key]?.renewedAt = sent }
            fence(held.entry, control: held.control, renewedAt: sent)
            if cancel { held.control.stop(.cancelled) }
        }
    }

    var leaseMargin: Duration { settings.leaseMargin }

    /// When the daemon stops a release whose lease was last renewed at `renewedAt` (SIGTERM;
    /// SIGKILL a kill grace later), so that its tasks have ended before the lease runs out.
    func stopTime(renewedAt: ContinuousClock.Instant) -> ContinuousClock.Instant {
        renewedAt + settings.lease - killGrace - leaseMargin
    }

    /// Moves a running release's fences on from a renewal sent at `renewedAt`: no task of it
    /// starts after its stop time, and past half the margin before the lease runs out the
    /// process guard ends its processes itself — also when this daemon is stopped, stalled or
    /// starved and cannot.
    func fence(_ release: ReleaseQueue.Entry, control: ReleaseControl, renewedAt: ContinuousClock.Instant) {
        control.setFence(stopTime(renewedAt: renewedAt))
        let guardDeadline = renewedAt + settings.lease - leaseMargin / 2
        processGuard?.fence(release: release.id.rawValue, within: guardDeadline - .now)
    }

    /// Stops a release whose lease this node could not renew, so that its tasks have ended
    /// (SIGTERM, the kill grace, SIGKILL) before the lease runs out.
    func watchDeadlines() {
        let now = ContinuousClock.now
        for (key, held) in state.withLock({ $0.running }) where held.control.reason == nil {
            if now >= stopTime(renewedAt: held.renewedAt) {
                logger.error("\(key): the lease could not be renewed in time; ending its tasks before it runs out")
                held.control.stop(.leaseLost)
            }
        }
    }

    /// Any node: a running key whose lease ran out is interrupted for the whole cluster.
    func sweep() async throws {
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

extension ClusterStatus {
    /// Writes what `releasectl cluster status` reads.
    static func write(_ coordinator: ClusterCoordinator) async {
        var snapshot = await coordinator.snapshot()
        snapshot.writtenAt = Timestamp.format(Date())
        try? coordinator.spool.writeClusterStatus(snapshot.encoded())
    }
}
