import FoundationEssentials
import Logging
import NIOCore
import PostgresNIO
import ReleaseKit

/// Output: the running node writes its masked lines in batches and NOTIFYs; followers copy
/// them by position into their own logs, woken by LISTEN (or a poll).
extension ClusterCoordinator {
    func publish(_ release: ReleaseQueue.Entry, _ bytes: [UInt8]) {
        state.withLock { $0.output[release.clusterKey, default: []].append(contentsOf: bytes) }
    }

    /// Writes the output gathered so far, one row per key, and wakes the followers; returns
    /// whether all of it was written.
    @discardableResult
    func flushOutput() async -> Bool {
        let batches = state.withLock { s -> [String: [UInt8]] in defer { s.output = [:] }; return s.output }
        guard !batches.isEmpty else { return true }
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
            return false
        }
        return true
    }

    func follow(_ release: ReleaseQueue.Entry, write: @escaping @Sendable ([UInt8]) -> Void, control: ReleaseControl) async -> FollowedOutcome? {
        let key = release.clusterKey
        var last: Int64 = 0
        var cancelSent = false
        while true {
            if control.reason == .shutdown || control.reason == .leaseLost { return nil }
            let seen = changes.generation
            do {
                if control.reason == .cancelled && !cancelSent {
                    try await database.run { conn in
                        try await conn.query("""
                            UPDATE releasectl_deploys SET cancel_requested = true
                            WHERE deploy_key = \(key) AND app = \(release.app) AND state IN (\(DeployState.queued), \(DeployState.running))
                            """, logger: self.logger).count()
                    }
                    cancelSent = true
                }
                let (keyState, runner, recordText, keyReason): (DeployState, String?, String?, String?) = try await database.run { conn in
                    var row: (DeployState, String?, String?, String?) = (.queued, nil, nil, nil)
                    for try await r in try await conn.query(
                        "SELECT state, node, record, reason FROM releasectl_deploys WHERE deploy_key = \(key) AND app = \(release.app)", logger: self.logger
                    ).decode((DeployState, String?, String?, String?).self) { row = r }
                    return row
                }
                // Output after the state: a key that has ended has all its output written.
                while true {
                    let next = try await copyOutput(key, after: last, write: write)
                    if next == last { break }
                    last = next
                }
                if let final = keyState.releaseState {
                    let record = recordText.flatMap { try? ReleaseRecord.decode(Array($0.utf8)) }
                    let reason = record?.reason ?? keyReason
                        ?? (final == .interrupted ? "interrupted: node \(runner ?? "?") stopped renewing its lease" : nil)
                    return FollowedOutcome(record: record, state: final, ranOn: runner ?? "no node", reason: reason)
                }
            } catch {
                // Waits for the database; nothing of it is lost (the output is copied by position).
            }
            await changes.wait(after: seen, timeout: .milliseconds(500))
        }
    }

    /// Copies the key's output after position `after` (read whole, then written: a read that
    /// times out writes nothing, so nothing is copied twice); returns the new position.
    func copyOutput(_ key: String, after: Int64, write: @Sendable ([UInt8]) -> Void) async throws -> Int64 {
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

    // MARK: LISTEN

    /// Holds a connection of its own LISTENing on `releasectl`; each notification wakes the
    /// followers and the scheduler. Reconnects after a failure.
    func listen() async {
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
}
