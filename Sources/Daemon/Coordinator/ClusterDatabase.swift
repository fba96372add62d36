import Logging
import NIOCore
import NIOPosix
import NIOSSL
import PostgresNIO
import ReleaseKit
import Synchronization

/// The cluster's PostgreSQL database, over one connection made again whenever it breaks.
/// Every statement goes through `run`: a failure closes the connection (the next call
/// connects afresh) and is reported as the database being unreachable.
actor ClusterDatabase {
    let settings: ClusterSettings
    private let password: String?
    private let logger: Logger
    private var connection: PostgresConnection?
    private var nextID = 0

    /// How long a statement may take: a third of the lease, at most 5 s (a node that cannot
    /// renew must notice in time to end its tasks before its lease runs out).
    private var timeout: Duration { min(.seconds(5), settings.lease / 3) }

    /// Why the last attempt failed (nil while the database answers).
    private(set) var problem: String?

    init(settings: ClusterSettings, password: String?, logger: Logger) {
        self.settings = settings
        self.password = password
        self.logger = logger
    }

    struct Unreachable: Error, CustomStringConvertible {
        var description: String
        /// Not a passing outage: the server refused the login itself (a wrong password, no
        /// such role or database), or its schema is newer than this node's.
        var fatal = false
    }

    /// A new connection (also used for LISTEN, which holds one of its own).
    func connect() async throws(Unreachable) -> PostgresConnection {
        var configuration = PostgresConnection.Configuration(
            host: settings.host, port: settings.port, username: settings.user, password: password, database: settings.database,
            tls: .disable)
        do {
            switch settings.tls {
            case .disable: break
            case .prefer: configuration.tls = .prefer(try NIOSSLContext(configuration: .makeClientConfiguration()))
            case .require: configuration.tls = .require(try NIOSSLContext(configuration: .makeClientConfiguration()))
            }
        } catch {
            throw Unreachable(description: "cannot set up TLS: \(error)")
        }
        configuration.options.connectTimeout = .milliseconds(timeout.milliseconds)
        nextID += 1
        do {
            return try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.next(), configuration: configuration,
                                                        id: nextID, logger: logger)
        } catch let error as PSQLError {
            throw Self.describe(error)
        } catch {
            throw Unreachable(description: "\(error)")
        }
    }

    /// Runs `body` on the connection; any failure closes it and is rethrown as `Unreachable`.
    /// A statement that has no answer within `timeout` fails (a cut network leaves a query
    /// hanging until TCP gives up, minutes later; a query sent on a connection the server has
    /// just closed may never be answered), and its connection is dropped.
    func run<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws(Unreachable) -> T {
        var used: PostgresConnection?
        do {
            let conn: PostgresConnection
            if let connection, !connection.isClosed { conn = connection } else {
                let made = try await connect()
                // Another call may have connected meanwhile: one connection is kept.
                if let connection, !connection.isClosed { try? await made.close(); conn = connection } else { conn = made; connection = made }
            }
            used = conn
            let value = try await Self.bounded(timeout, conn, body)
            problem = nil
            return value
        } catch {
            let failure: Unreachable = if error is TimedOut {
                Unreachable(description: "no answer from \(settings.host):\(settings.port) within \(DurationParser.format(timeout))")
            } else if let u = error as? Unreachable { u } else if let p = error as? PSQLError { Self.describe(p) }
                else { Unreachable(description: "\(error)", fatal: error is ClusterSchema.TooNew) }
            if let used {
                if connection === used { connection = nil }
                // Not awaited: closing a broken connection may itself wait on the network.
                Task { try? await used.close() }
            }
            if problem != failure.description { logger.warning("the cluster database: \(failure.description)") }
            problem = failure.description
            throw failure
        }
    }

    private struct TimedOut: Error {}

    /// `body`'s result, or `TimedOut` after `timeout` (the body is left to end on its own).
    private static func bounded<T: Sendable>(_ timeout: Duration, _ conn: PostgresConnection,
                                             _ body: @escaping @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let outcome = OnceContinuation<T>()
        return try await withCheckedThrowingContinuation { continuation in
            outcome.set(continuation)
            let timer = Task {
                try await Task.sleep(for: timeout)
                outcome.resume(with: .failure(TimedOut()))
            }
            Task {
                let result: Result<T, any Error>
                do { result = .success(try await body(conn)) } catch { result = .failure(error) }
                timer.cancel()
                outcome.resume(with: result)
            }
        }
    }

    func close() async {
        if let connection { try? await connection.close() }
        connection = nil
    }

    /// A PostgreSQL error in words: the server's message and state when it sent one.
    static func describe(_ error: PSQLError) -> Unreachable {
        if let info = error.serverInfo, let message = info[.message] {
            let state = info[.sqlState] ?? ""
            // 28P01 invalid_password, 28000 invalid_authorization_specification, 3D000 no such database.
            return Unreachable(description: "\(message) (SQLSTATE \(state))", fatal: ["28P01", "28000", "3D000"].contains(state))
        }
        switch error.code {
        case .connectionError: return Unreachable(description: "cannot connect: \(error.underlying.map { "\($0)" } ?? "connection refused")")
        case .authMechanismRequiresPassword: return Unreachable(description: "the server asks for a password and [cluster] has no password-file", fatal: true)
        default: return Unreachable(description: "\(error.code)" + (error.underlying.map { ": \($0)" } ?? ""))
        }
    }
}

extension PostgresRowSequence {
    /// The number of rows (discarding them); also how a statement's rows are drained.
    @discardableResult
    func count() async throws -> Int {
        var n = 0
        for try await _ in self { n += 1 }
        return n
    }
}

/// A continuation resumed by the first of several callers; the others are ignored.
private final class OnceContinuation<T: Sendable>: Sendable {
    private let continuation = Mutex<CheckedContinuation<T, any Error>?>(nil)

    func set(_ c: CheckedContinuation<T, any Error>) { continuation.withLock { $0 = c } }

    func resume(with result: Result<T, any Error>) {
        continuation.withLock { c -> CheckedContinuation<T, any Error>? in defer { c = nil }; return c }?.resume(with: result)
    }
}
