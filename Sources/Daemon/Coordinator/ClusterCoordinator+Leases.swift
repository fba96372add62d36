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
                WHERE deploy_key = \(key) AND node = \(node) AND run_id = \(id) AND state = \(DeployState.running) AND lease_until >= now()
                RETURNING cancel_requested
                """, logger: self.logger).decode(Bool.self) { cancel = c }
            return cancel
        }
    }

    func renewLeases() async throws {
        for (key, held) in state.withLock({ $0.leases.held }) {
            let sent = ContinuousClock.now
            let cancel = try await renew(key, id: held.entry.id.rawValue)
            perform(state.withLock { s in cancel == nil ? s.leases.refused(key) : s.leases.renewed(key, sentAt: sent) })
            if cancel == true { control(held.entry.id)?.stop(.cancelled) }
        }
    }

    /// Holds a lease just claimed (at `claimedAt`) for the release `control` stops.
    func hold(_ release: ReleaseQueue.Entry, control: ReleaseControl, claimedAt: ContinuousClock.Instant) {
        perform(state.withLock { s in
            s.controls[release.id] = control
            return s.leases.claimed(release, at: claimedAt)
        })
    }

    /// Lets a lease go (the release's outcome is settled).
    func letGo(_ key: String, id: ReleaseID) {
        state.withLock { s in
            s.leases.ended(key, id: id)
            if !s.leases.held.values.contains(where: { $0.entry.id == id }) { s.controls[id] = nil }
        }
    }

    func control(_ id: ReleaseID) -> ReleaseControl? { state.withLock { $0.controls[id] } }

    /// Does what the lease book decided: moves a release's fences on (no task starts after its
    /// stop time; past its guard time the process guard ends its processes — also when this
    /// daemon is stopped, stalled or starved and cannot), or stops it.
    func perform(_ actions: [LeaseBook.Action]) {
        for action in actions {
            switch action {
            case .fence(let id, let stopAt, let guardAt):
                control(id)?.setFence(stopAt)
                processGuard?.fence(release: id.rawValue, within: guardAt - .now)
            case .stop(let id, let key, let refused):
                logger.error(refused ? "\(key): this node's lease ran out or another node ended it; stopping its tasks"
                                     : "\(key): the lease could not be renewed in time; ending its tasks before it runs out")
                control(id)?.stop(.leaseLost)
            }
        }
    }

    /// Stops a release whose lease this node could not renew, so that its tasks have ended
    /// (SIGTERM, the kill grace, SIGKILL) before the lease runs out.
    func watchDeadlines() {
        perform(state.withLock { $0.leases.tick(now: .now) })
    }

    /// Any node: a running key whose lease ran out is interrupted for the whole cluster.
    func sweep() async throws {
        let swept: [(String, String?)] = try await database.run { conn in
            var rows: [(String, String?)] = []
            for try await r in try await conn.query("""
                UPDATE releasectl_deploys SET state = \(DeployState.interrupted), finished_at = now(), lease_until = NULL
                WHERE state = \(DeployState.running) AND lease_until < now()
                RETURNING deploy_key, node
                """, logger: self.logger).decode((String, String?).self) { rows.append(r) }
            for (key, _) in rows { try await conn.query("SELECT pg_notify('releasectl', \(key))", logger: self.logger).count() }
            return rows
        }
        for (key, runner) in swept {
            logger.warning("\(ReleaseRequest.showClusterKey(key)): node \(runner ?? "?") stopped renewing its lease; interrupted for the whole cluster")
        }
        let barriers = try await sweepBarriers()
        if !swept.isEmpty || !barriers.isEmpty, let onChange = state.withLock({ $0.onChange }) { await onChange() }
    }

    /// Fails every postdeploy whose traffic barrier timed out while a node of its predeploy
    /// had still not submitted it: nothing of it runs, anywhere, and every caller is told
    /// which node was missing. Returns the keys failed.
    func sweepBarriers() async throws -> [String] {
        let failed: [(String, String)] = try await database.run { conn in
            var rows: [(String, String)] = []
            for try await r in try await conn.query("""
                UPDATE releasectl_deploys d
                SET state = \(DeployState.failed), finished_at = now(),
                    reason = 'the traffic barrier timed out after ' || (extract(epoch FROM d.barrier_until - d.first_submitted))::bigint
                        || 's: node(s) ' || m.missing || ' took part in the predeploy but did not submit the postdeploy (has traffic moved there?); nothing ran'
                FROM (SELECT b.deploy_key, string_agg(p.node, ', ' ORDER BY p.node) AS missing
                      FROM releasectl_deploys b JOIN releasectl_participants p ON p.deploy_key = b.parent_key
                      WHERE b.phase = 'postdeploy' AND b.state = \(DeployState.queued) AND b.barrier_until < now()
                        AND NOT EXISTS (SELECT 1 FROM releasectl_participants s WHERE s.deploy_key IN (b.deploy_key, b.parent_key || chr(30) || 'postdeploy') AND s.node = p.node)
                      GROUP BY b.deploy_key) m
                WHERE d.deploy_key = m.deploy_key AND d.state = \(DeployState.queued)
                RETURNING d.deploy_key, m.missing
                """, logger: self.logger).decode((String, String).self) { rows.append(r) }
            for (key, _) in rows { try await conn.query("SELECT pg_notify('releasectl', \(key))", logger: self.logger).count() }
            return rows
        }
        for (key, missing) in failed {
            logger.error("\(ReleaseRequest.showClusterKey(key)): the traffic barrier timed out waiting for node(s) \(missing); failed for the whole cluster")
        }
        return failed.map(\.0)
    }

    /// Why the postdeploy of cluster key `key` still waits at its traffic barrier, or nil
    /// when every node of its predeploy has submitted it.
    func barrier(_ key: String) async throws -> String? {
        try await database.run { conn in
            var found: String?
            // Worded the same each time it is asked (the deadline, not the time left): the
            // scheduler logs a waiting release's reason when it changes.
            for try await (missing, until) in try await conn.query("""
                SELECT string_agg(p.node, ', ' ORDER BY p.node),
                       to_char(d.barrier_until AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                FROM releasectl_deploys d JOIN releasectl_participants p ON p.deploy_key = d.parent_key
                WHERE d.deploy_key = \(key)
                  AND NOT EXISTS (SELECT 1 FROM releasectl_participants s WHERE s.deploy_key IN (d.deploy_key, d.parent_key || chr(30) || 'postdeploy') AND s.node = p.node)
                GROUP BY d.barrier_until
                """, logger: self.logger).decode((String, String).self) {
                found = "waiting at the traffic barrier for node(s) \(missing) to submit the postdeploy (every node of the predeploy must have switched traffic; gives up at \(until))"
            }
            return found
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
                    FROM releasectl_deploys WHERE state = \(DeployState.running) ORDER BY started_at
                    """, logger: self.logger).decode((String, String, String, String, Int64).self) {
                    running.append(.init(deployKey: ReleaseRequest.showClusterKey(key), app: app, release: release, node: node, leaseLeftMs: left))
                }
                var waiting: [ClusterStatus.Waiting] = []
                for try await (key, app, release, serial, nodes) in try await conn.query("""
                    SELECT d.deploy_key, d.app, d.release, d.serial_key, coalesce(string_agg(q.node, ',' ORDER BY q.node), '')
                    FROM releasectl_deploys d LEFT JOIN releasectl_requests q ON q.deploy_key = d.deploy_key
                    WHERE d.state = \(DeployState.queued) GROUP BY d.deploy_key ORDER BY d.first_submitted LIMIT 200
                    """, logger: self.logger).decode((String, String, String, String, String).self) {
                    waiting.append(.init(deployKey: ReleaseRequest.showClusterKey(key), app: app, release: release, serialKey: serial,
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
