import ReleaseKit
import ReleaseSupport
import Testing

/// released.toml's `[cluster]`: the URL's parts, the defaults, and every bad value refused at
/// start naming the key (a password in the URL above all).
@Suite("cluster settings")
struct ClusterSettingsTests {
    static func cluster(_ body: String) throws(DaemonConfig.ConfigError) -> ClusterSettings? {
        try DaemonConfig.parse("[cluster]\n" + body, path: "released.toml").cluster
    }

    @Test("the URL's parts, sslmode, node and lease")
    func parts() throws {
        let c = try #require(try Self.cluster("""
            url = "postgres://releasectl@db.internal:6543/rc?sslmode=require"
            password-file = "/run/credentials/released.service/cluster-password"
            node = "web-1"
            lease = "45s"
            """))
        #expect(c.host == "db.internal" && c.port == 6543 && c.user == "releasectl" && c.database == "rc")
        #expect(c.tls == .require)
        #expect(c.passwordFile == "/run/credentials/released.service/cluster-password")
        #expect(c.node == "web-1")
        #expect(c.lease == .seconds(45))
        #expect(c.barrierTimeout == .seconds(600), "the default barrier")
        #expect(try Self.cluster("url = \"postgres://rc@db/rc\"\nbarrier-timeout = \"90s\"\n")?.barrierTimeout == .seconds(90))
        let d = try #require(try Self.cluster("url = \"postgresql://rc@[::1]/rc\"\n"))
        #expect(d.host == "::1" && d.port == 5432 && d.tls == .prefer && d.lease == .seconds(30) && !d.node.isEmpty)
        #expect(try DaemonConfig.parse("", path: "released.toml").cluster == nil, "no [cluster]: no database")
    }

    @Test("bad [cluster] values stop the daemon, naming the problem", arguments: [
        ("url = \"postgres://releasectl:hunter2@db/rc\"\n",
         "[cluster] url holds a password: put it in password-file (a file only the daemon reads), never in the URL"),
        ("url = \"mysql://releasectl@db/rc\"\n", "[cluster] url must start with postgres://"),
        ("url = \"postgres://releasectl@db\"\n", "[cluster] url …@\"db\" names no database (postgres://USER@HOST:PORT/DATABASE)"),
        ("url = \"postgres://db/rc\"\n", "[cluster] url names no user (postgres://USER@HOST:PORT/DATABASE)"),
        ("url = \"postgres://rc@db:99999/rc\"\n", "[cluster] url …@\"db:99999/rc\": the port must be a number from 1 to 65535"),
        ("url = \"postgres://rc@db/rc?sslmode=maybe\"\n", "[cluster] url: sslmode must be disable, prefer or require"),
        ("url = \"postgres://rc@db/rc?password=x\"\n", "[cluster] url: unknown parameter \"password=x\" (known: sslmode)"),
        ("node = \"a\"\n", "[cluster] needs url (postgres://USER@HOST:PORT/DATABASE)"),
        ("url = \"postgres://rc@db/rc\"\nlease = \"1s\"\n", "[cluster] lease must be at least 3s"),
        ("url = \"postgres://rc@db/rc\"\npassword-file = \"pw\"\n", "[cluster] password-file must be an absolute path"),
        ("url = \"postgres://rc@db/rc\"\nnode = \"web 1\"\n", "[cluster] node must be 1 to 63 letters, digits, '.', '-' or '_'"),
        ("url = \"postgres://rc@db/rc\"\npassword = \"x\"\n", "unknown key \"password\" in [cluster] (known: url, password-file, node, lease, barrier-timeout)"),
        ("url = \"postgres://rc@db/rc\"\nbarrier-timeout = 30\n", "[cluster] barrier-timeout must be a duration such as \"10m\", not an integer"),
        ("url = \"postgres://rc@db/rc\"\nbarrier-timeout = \"-5s\"\n", "[cluster] barrier-timeout: \"-5s\" is not a duration (examples: 90, 30s, 15m, 1h30m, 500ms)"),
        ("url = \"postgres://rc@db/rc\"\nbarrier-timeout = \"500ms\"\n", "[cluster] barrier-timeout must be from 1s to 24h, not 500ms"),
        ("url = \"postgres://rc@db/rc\"\nbarrier-timeout = \"48h\"\n", "[cluster] barrier-timeout must be from 1s to 24h, not 48h"),
    ])
    func bad(_ body: String, _ problem: String) {
        #expect(throws: DaemonConfig.ConfigError.self) { try Self.cluster(body) }
        do { _ = try Self.cluster(body) } catch { #expect(error.problem == problem) }
    }

    @Test("a lease must hold a missed renewal, the kill grace, the margin and a round trip; when it cannot, the lease and the grace it suggests both work")
    func leaseAndKillGrace() throws {
        func problem(_ lease: Duration, _ grace: Duration) -> String? {
            var settings = try! #require(try Self.cluster("url = \"postgres://rc@db/rc\"\n"))
            settings.lease = lease
            return settings.problem(killGrace: grace)
        }
        #expect(problem(.seconds(3), .seconds(1)) == nil, "the tests' lease and grace")
        #expect(problem(.seconds(30), .seconds(10)) == nil, "the defaults")
        #expect(problem(.seconds(3), .seconds(10)) == "[cluster] lease = \"3s\" cannot hold with kill-grace = \"10s\": a running release must be able to miss a renewal (one every 1s) and still end its tasks (SIGTERM, the kill grace, SIGKILL) before its lease runs out, with 500ms to spare and 500ms for a round trip; set lease to at least 18s, or kill-grace to at most 1s")
        var generator = SeededGenerator(seed: 31)
        for _ in 0..<2000 {
            let lease = Duration.milliseconds(Int64.random(in: 3000...120_000, using: &generator))
            let grace = Duration.milliseconds(Int64.random(in: 1...60_000, using: &generator))
            let margin = min(.seconds(1), lease / 6)
            let holds = lease * 2 / 3 >= grace + margin * 2
            #expect((problem(lease, grace) == nil) == holds, "lease \(lease), grace \(grace)")
            guard !holds else { continue }
            // What it suggests works.
            let least = grace < .seconds(2) ? grace * 3 : (grace + .seconds(2)) * 3 / 2
            #expect(problem(max(least, .seconds(3)), grace) == nil, "the least lease for grace \(grace)")
            let most = lease * 2 / 3 - margin * 2
            if most > .zero { #expect(problem(lease, most) == nil, "the most grace for lease \(lease)") }
        }
    }
}
