import Foundation
import Glibc
import ReleaseKit

/// A real PostgreSQL server of the test's own: Debian's `postgresql`, `initdb` into a temporary
/// folder as the `postgres` user (the server refuses to run as root), listening on every address
/// (127.0.0.1 and a network namespace's veth) on a port of its own. The `releasectl` role logs
/// in with a password (scram-sha-256) over TCP; `postgres` is trusted on the socket, for the
/// test's own statements. Each test makes a database of its own.
final class TestPostgres: @unchecked Sendable {
    // @unchecked: set once in `start` and only read afterwards.
    let dir: String
    let port: Int
    static let role = "releasectl"
    static let password = "pg-cluster-password-7d1e"

    private init(dir: String, port: Int) {
        self.dir = dir
        self.port = port
    }

    /// The server's programs (`initdb`, `pg_ctl`, `psql`), from the newest installed version.
    static let binDirectory: String? = {
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted()
        guard let newest = versions.last else { return nil }
        let bin = "\(root)/\(newest)/bin"
        return FileManager.default.isExecutableFile(atPath: bin + "/initdb") ? bin : nil
    }()

    static var isAvailable: Bool { binDirectory != nil }

    /// initdb, configuration, start, and the `releasectl` role.
    static func start() async throws -> TestPostgres {
        guard let bin = binDirectory else { throw Failure("PostgreSQL is not installed (apt-get install postgresql)") }
        let dir = TempDir("releasectl-pg").path
        if geteuid() == 0 {
            guard let pw = UserDatabase.user(named: "postgres") else { throw Failure("no postgres user (apt-get install postgresql)") }
            chown(dir, pw.uid, pw.gid)
        }
        try await asOwner(bin + "/initdb", ["-D", dir + "/data", "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8"])
        try """
            local all all trust
            host all postgres 127.0.0.1/32 trust
            host all all 0.0.0.0/0 scram-sha-256
            """.write(toFile: dir + "/data/pg_hba.conf", atomically: false, encoding: .utf8)
        var lastError: Error?
        for _ in 0..<5 {
            let port = Int.random(in: 20000...45000)
            let server = TestPostgres(dir: dir, port: port)
            do {
                try await server.startServer()
                try await server.sql("CREATE ROLE \(role) LOGIN PASSWORD '\(password)'")
                return server
            } catch { lastError = error }
        }
        throw lastError!
    }

    /// pg_ctl start (waits until it accepts connections).
    func startServer() async throws {
        guard let bin = Self.binDirectory else { return }
        try await Self.asOwner(bin + "/pg_ctl", [
            "-D", dir + "/data", "-l", dir + "/server.log", "-w", "-t", "60", "start",
            "-o", "-p \(port) -k \(dir) -c listen_addresses=* -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300",
        ])
    }

    /// pg_ctl stop, fast mode (connections are cut).
    func stopServer() async throws {
        guard let bin = Self.binDirectory else { return }
        try await Self.asOwner(bin + "/pg_ctl", ["-D", dir + "/data", "-w", "-t", "60", "-m", "fast", "stop"])
    }

    /// Stops the server and removes its folder.
    func remove() async {
        try? await stopServer()
        try? FileManager.default.removeItem(atPath: dir)
    }

    /// A test that failed before its clean-up leaves no server running: SIGINT to the
    /// postmaster (PostgreSQL's fast shutdown), whose pid is the first line of postmaster.pid.
    deinit {
        if let text = try? String(contentsOfFile: dir + "/data/postmaster.pid", encoding: .utf8),
           let pid = text.split(separator: "\n").first.flatMap({ pid_t($0) }), pid > 1 {
            kill(pid, SIGINT)
        }
    }

    /// A new empty database owned by the `releasectl` role.
    func createDatabase() async throws -> String {
        let name = "rc_\(UInt32.random(in: 0...UInt32.max))"
        try await sql("CREATE DATABASE \(name) OWNER \(Self.role)")
        return name
    }

    /// Runs SQL as `postgres` over the socket; returns the rows, unaligned, `|` between columns.
    @discardableResult
    func sql(_ statement: String, database: String = "postgres") async throws -> String {
        guard let bin = Self.binDirectory else { throw Failure("PostgreSQL is not installed") }
        let r = try await runProgram(bin + "/psql", ["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h", dir, "-p", "\(port)", "-U", "postgres",
                                                     "-d", database, "-c", statement], timeout: .seconds(60))
        guard r.status == 0 else { throw Failure("psql \(statement): \(r)") }
        return r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// `[cluster]` for a node of this server's `database`, the password in a file of its own.
    func clusterTOML(database: String, node: String, lease: String = "6s", host: String = "127.0.0.1", in work: TempDir,
                     password: String = TestPostgres.password) throws -> String {
        let file = work.file("cluster-password-\(node)")
        try (password + "\n").write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o600)
        return """
            [cluster]
            url = "postgres://\(Self.role)@\(host):\(port)/\(database)?sslmode=disable"
            password-file = "\(file)"
            node = "\(node)"
            lease = "\(lease)"

            """
    }

    /// Runs a server program as the folder's owner (`postgres` when the tests run as root).
    private static func asOwner(_ program: String, _ arguments: [String]) async throws {
        let r = geteuid() == 0
            ? try await runProgram("/usr/bin/setpriv", ["--reuid", "postgres", "--regid", "postgres", "--init-groups", "--", program] + arguments, workingDirectory: "/",
                                   timeout: .seconds(120))
            : try await runProgram(program, arguments, workingDirectory: "/", timeout: .seconds(120))
        guard r.status == 0 else { throw Failure("\(program) \(arguments.joined(separator: " ")): \(r)") }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String
        init(_ d: String) { description = d }
    }
}
