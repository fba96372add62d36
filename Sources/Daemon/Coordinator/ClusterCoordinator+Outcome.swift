import FoundationEssentials
import Logging
import PostgresNIO
import ReleaseKit

/// A release's outcome, from its tasks' end to what every caller is told: pending here
/// (durable in `running/`), then committed to its key only while its lease holds; otherwise
/// the key is `interrupted` everywhere, its record saying what the tasks did.
extension ClusterCoordinator {
    func commit(_ release: ReleaseQueue.Entry, record: ReleaseRecord, control: ReleaseControl) async -> ReleaseRecord? {
        let id = release.id
        var delay = Duration.seconds(1)
        // Durable before the cluster is asked: from here a crash leaves it pending.
        while true {
            do {
                try spool.recordPending(record)
                break
            } catch {
                logger.critical("cannot record the pending outcome of \(id); retrying in \(DurationParser.format(delay)): \(error)",
                                metadata: ["release.id": "\(id)"])
                if control.reason == .shutdown { return nil }
                try? await Task.sleep(for: delay)
                delay = min(delay * 2, .seconds(30))
            }
        }
        var waiting = false
        while true {
            let seen = changes.generation
            // The output first: a follower that sees the end has all of it.
            if await flushOutput(), let settled = try? await settle(record) {
                if waiting { logger.notice("\(ReleaseRequest.showClusterKey(release.clusterKey)): the cluster took the outcome of \(id): \(settled.state.rawValue)") }
                letGo(release.clusterKey, id: id)
                return settled
            }
            if !waiting {
                waiting = true
                logger.warning("\(ReleaseRequest.showClusterKey(release.clusterKey)): the tasks of \(id) ended (\(record.state.rawValue)); waiting for the cluster database to take the outcome, which is what its callers are told",
                               metadata: ["release.id": "\(id)"])
            }
            if control.reason == .shutdown { return nil }
            await changes.wait(after: seen, timeout: .seconds(1))
        }
    }

    /// Settles a release whose tasks ran here and ended with `record`: the key takes it if the
    /// run is still this node's and its lease holds (by the database's clock), or already
    /// took it (an earlier attempt whose answer was lost); otherwise the key is, or now
    /// becomes, `interrupted`, and the record kept in it says what the tasks did. Returns
    /// the record the cluster holds.
    func settle(_ record: ReleaseRecord) async throws -> ReleaseRecord {
        let node = settings.node, id = record.id
        guard let deployKey = record.cluster?.deployKey else { return record }
        let key = ReleaseRequest.clusterKey(deployKey, phase: record.phase, retry: record.retryOf != nil ? ReleaseID(record.id) : nil)
        let text = String(decoding: record.encoded(), as: UTF8.self)
        let interrupted = FinalRecord.notTaken(record)
        let interruptedText = String(decoding: interrupted.encoded(), as: UTF8.self)
        return try await database.run { conn in
            var taken = false
            for try await _ in try await conn.query("""
                UPDATE releasectl_deploys SET state = \(DeployState(record.state)), record = \(text), finished_at = now(), lease_until = NULL
                WHERE deploy_key = \(key) AND node = \(node) AND run_id = \(id) AND state = \(DeployState.running) AND lease_until >= now()
                RETURNING 1
                """, logger: self.logger).decode(Int.self) { taken = true }
            if !taken {
                var row: (DeployState, String?, String?)?
                for try await r in try await conn.query(
                    "SELECT state, node, run_id FROM releasectl_deploys WHERE deploy_key = \(key)", logger: self.logger
                ).decode((DeployState, String?, String?).self) { row = r }
                let ours = row?.1 == node && row?.2 == id
                if ours, let state = row?.0.releaseState, state != .interrupted {
                    // An earlier attempt took it (its answer was lost on the way back).
                    var committed = record
                    committed.state = state
                    return committed
                }
                if ours {
                    try await conn.query("""
                        UPDATE releasectl_deploys SET state = \(DeployState.interrupted), record = \(interruptedText),
                            finished_at = coalesce(finished_at, now()), lease_until = NULL
                        WHERE deploy_key = \(key) AND node = \(node) AND run_id = \(id)
                          AND (state = \(DeployState.running) OR (state = \(DeployState.interrupted) AND record IS NULL))
                        """, logger: self.logger).count()
                }
            }
            try await conn.query("SELECT pg_notify('releasectl', \(key))", logger: self.logger).count()
            return taken ? record : interrupted
        }
    }
}
