import Logging
import PostgresNIO

/// The cluster's tables, created and migrated by the daemon itself under an advisory lock, so
/// that nodes starting at once migrate once. The version is in `releasectl_schema`; a node
/// whose version is older than the database's refuses to start.
///
/// - `releasectl_deploys`: one row per deploy key: its app, release and serial key, when it
///   was first submitted, its state (`queued`, `running`, then the final one), the node that
///   runs it with its request id and lease, a cancel asked for from any node, and the running
///   node's final record (masked). A partial unique index allows at most one `running` row per
///   serial key: the database, not the daemons, keeps two releases of one key from running.
/// - `releasectl_requests`: which node holds a request of which key (the key's followers).
/// - `releasectl_output`: the running node's output, in chunks, for its followers.
/// - `releasectl_nodes`: each node's last heartbeat.
/// - `releasectl_participants` (version 2): every node that ever held a request of a key,
///   kept after the request ends: the nodes a postdeploy's traffic barrier waits for.
///
/// Version 2 adds the phase: a postdeploy's row is keyed by its cluster key (the deploy key,
/// U+001E, `postdeploy`: `ReleaseRequest.clusterKey`), with `phase`, its predeploy's key
/// (`parent_key`), when its barrier gives up (`barrier_until`), and the reason of an outcome
/// no node's record holds (`reason`: a barrier that timed out).
enum ClusterSchema {
    static let version = 2
    /// The advisory lock migrations hold (any fixed number; this is "releasectl" in ASCII).
    static let lockKey: Int64 = 0x72_65_6c_65_61_73_65

    static let statements: [String] = [
        """
        CREATE TABLE IF NOT EXISTS releasectl_deploys (
            deploy_key text PRIMARY KEY,
            app text NOT NULL,
            release text NOT NULL,
            serial_key text NOT NULL,
            first_submitted timestamptz NOT NULL DEFAULT now(),
            state text NOT NULL DEFAULT '\(DeployState.queued.rawValue)'
                CHECK (state IN (\(DeployState.allCases.map { "'\($0.rawValue)'" }.joined(separator: ", ")))),
            node text,
            run_id text,
            lease_until timestamptz,
            cancel_requested boolean NOT NULL DEFAULT false,
            started_at timestamptz,
            finished_at timestamptz,
            record text)
        """,
        "CREATE UNIQUE INDEX IF NOT EXISTS releasectl_one_running ON releasectl_deploys (serial_key) WHERE state = '\(DeployState.running.rawValue)'",
        "CREATE INDEX IF NOT EXISTS releasectl_waiting ON releasectl_deploys (serial_key, first_submitted) WHERE state = '\(DeployState.queued.rawValue)'",
        """
        CREATE TABLE IF NOT EXISTS releasectl_requests (
            node text NOT NULL,
            request_id text NOT NULL,
            deploy_key text NOT NULL,
            PRIMARY KEY (node, request_id))
        """,
        "CREATE INDEX IF NOT EXISTS releasectl_requests_key ON releasectl_requests (deploy_key)",
        """
        CREATE TABLE IF NOT EXISTS releasectl_output (
            deploy_key text NOT NULL,
            seq bigserial,
            chunk bytea NOT NULL,
            PRIMARY KEY (deploy_key, seq))
        """,
        "ALTER TABLE releasectl_deploys ADD COLUMN IF NOT EXISTS phase text NOT NULL DEFAULT 'predeploy'",
        "ALTER TABLE releasectl_deploys ADD COLUMN IF NOT EXISTS parent_key text",
        "ALTER TABLE releasectl_deploys ADD COLUMN IF NOT EXISTS barrier_until timestamptz",
        "ALTER TABLE releasectl_deploys ADD COLUMN IF NOT EXISTS reason text",
        """
        CREATE TABLE IF NOT EXISTS releasectl_participants (
            deploy_key text NOT NULL,
            node text NOT NULL,
            PRIMARY KEY (deploy_key, node))
        """,
        """
        CREATE TABLE IF NOT EXISTS releasectl_nodes (
            node text PRIMARY KEY,
            heartbeat timestamptz NOT NULL,
            started timestamptz NOT NULL)
        """,
    ]

    struct TooNew: Error, CustomStringConvertible {
        var found: Int
        var description: String {
            "the cluster database's schema is version \(found); this released knows up to version \(ClusterSchema.version): upgrade released on this node"
        }
    }

    /// Creates or migrates the tables (under the advisory lock), or throws `TooNew`.
    static func migrate(_ conn: PostgresConnection, logger: Logger) async throws {
        _ = try await conn.query("SELECT pg_advisory_lock(\(lockKey))", logger: logger).count()
        do {
            _ = try await conn.query("CREATE TABLE IF NOT EXISTS releasectl_schema (version integer NOT NULL)", logger: logger).count()
            var found: Int?
            for try await v in try await conn.query("SELECT max(version) FROM releasectl_schema", logger: logger).decode(Int?.self) {
                found = v
            }
            if let found, found > version { throw TooNew(found: found) }
            if found != version {
                for statement in statements {
                    _ = try await conn.query(PostgresQuery(unsafeSQL: statement), logger: logger).count()
                }
                _ = try await conn.query("DELETE FROM releasectl_schema", logger: logger).count()
                _ = try await conn.query("INSERT INTO releasectl_schema (version) VALUES (\(version))", logger: logger).count()
                let was = found.map { " (was \($0))" } ?? ""
                logger.notice("the cluster database's schema is now version \(version)\(was)")
            }
        } catch {
            _ = try? await conn.query("SELECT pg_advisory_unlock(\(lockKey))", logger: logger).count()
            throw error
        }
        _ = try await conn.query("SELECT pg_advisory_unlock(\(lockKey))", logger: logger).count()
    }
}
