import Foundation
import Glibc
import ReleaseKit
import Testing

/// The postdeploy phase on a real cluster (three daemons, one real PostgreSQL): the traffic
/// barrier — it runs once, and only after every node of the predeploy submitted it — with a
/// node that never does, one killed in between, the database restarted while nodes wait; and
/// first-deploy tasks decided by the cluster.
@Suite("cluster phases", .serialized, .enabled(if: TestPostgres.isAvailable, "needs PostgreSQL (apt-get install postgresql)"))
struct ClusterPhaseTests {
    /// A postdeploy submitted on `daemon` (the deploy key `key`).
    static func post(_ daemon: DaemonProcess, dir: String, key: String) async throws -> CommandResult {
        try await daemon.ctl(["submit", "--app", "shop", "--release", "v1", "--dir", dir, "--deploy-key", key, "--phase", "postdeploy",
                              "--env", "RUN_MIGRATIONS_DURING_RELEASE=true", "--env", "RUN_MIGRATIONS_AFTER_DEPLOY=true", "--wait"])
    }

    static func pre(_ daemon: DaemonProcess, dir: String, key: String) async throws -> CommandResult {
        try await daemon.ctl(["submit", "--app", "shop", "--release", "v1", "--dir", dir, "--deploy-key", key,
                              "--env", "RUN_MIGRATIONS_DURING_RELEASE=true", "--env", "RUN_MIGRATIONS_AFTER_DEPLOY=true", "--wait"])
    }

    /// Three nodes a, b, c that all took part in the predeploy of `key` (succeeded).
    static func predeployed(_ pg: TestPostgres, _ db: String, work: TempDir, app: AppFixture, key: String,
                            clusterExtra: String = "") async throws -> [DaemonProcess] {
        var nodes: [DaemonProcess] = []
        for name in ["a", "b", "c"] { nodes.append(try await ClusterTests.node(pg, db, name, in: work, clusterExtra: clusterExtra)) }
        let results = try await withThrowingTaskGroup(of: CommandResult.self) { group in
            for n in nodes { group.addTask { try await Self.pre(n, dir: app.path, key: key) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for r in results { #expect(r.status == 0, "\(r)") }
        return nodes
    }

    /// Waits until `daemon` says its postdeploy waits at the barrier for `missing`.
    static func waitsAtBarrier(_ daemon: DaemonProcess, for missing: String) async throws {
        try await eventually("the node to wait at the traffic barrier for \(missing)", timeout: .seconds(30)) {
            daemon.log.contains("waiting at the traffic barrier for node(s) \(missing) to submit the postdeploy")
        }
    }

    static func nanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    @Test("the postdeploy runs once, only after the third node submitted it (by the task's own clock), through a database restart; every caller exits 0")
    func barrierHolds() async throws {
        let pg = try await TestPostgres.start()
        let work = TempDir()
        let runs = work.file("post-runs")
        let app = try AppFixture(commands: ["migrate": "true", "post-migrate": "date +%s%N >> \(runs); echo contracted"])
        defer { work.remove(); app.remove() }
        let db = try await pg.createDatabase()
        let nodes = try await Self.predeployed(pg, db, work: work, app: app, key: "deploy-1")
        #expect(!FileManager.default.fileExists(atPath: runs), "no postdeploy task in the predeploy")
        let a = Task { try await Self.post(nodes[0], dir: app.path, key: "deploy-1") }
        let b = Task { try await Self.post(nodes[1], dir: app.path, key: "deploy-1") }
        try await Self.waitsAtBarrier(nodes[0], for: "c")
        try await Self.waitsAtBarrier(nodes[1], for: "c")
        _ = try await nodes[0].notify.wait(for: "STATUS= naming the missing node", timeout: .seconds(30)) {
            $0.fields["STATUS"]?.contains("waiting at the traffic barrier for node(s) c to submit the postdeploy") == true
        }
        try await eventually("cluster status to list the waiting postdeploy", timeout: .seconds(15)) {
            ClusterTests.snapshot(nodes[2])?.waiting.contains { $0.deployKey == "deploy-1 (postdeploy)" && $0.nodes == ["a", "b"] } == true
        }
        // The database restarts while two nodes wait: the barrier is in it, not in them.
        try await pg.stopServer()
        try await pg.startServer()
        #expect(!FileManager.default.fileExists(atPath: runs), "nothing ran before the third node switched")
        let cSubmitted = Self.nanoseconds()
        let c = try await Self.post(nodes[2], dir: app.path, key: "deploy-1")
        let results = [try await a.value, try await b.value, c]
        for r in results {
            #expect(r.status == 0, "\(r)")
            #expect(r.stdout.contains("       contracted"), "every caller sees the output: \(r)")
        }
        let ran = ClusterTests.lines(runs)
        #expect(ran.count == 1, "the postdeploy ran once: \(ran)")
        #expect((Int64(ran.first ?? "0") ?? 0) > cSubmitted, "the task started after the third node submitted")
        for (n, r) in zip(nodes, results) {
            let record = try #require(try n.record(r.lines[0]))
            #expect(record.phase == .postdeploy && record.state == .succeeded && record.cluster?.deployKey == "deploy-1")
        }
        for n in nodes { await n.cleanUp() }
        await pg.remove()
    }

    @Test("a node that never submits its postdeploy: every caller fails after barrier-timeout naming it, and nothing ran")
    func barrierTimesOut() async throws {
        let pg = try await TestPostgres.start()
        let work = TempDir()
        let runs = work.file("post-runs")
        let app = try AppFixture(commands: ["migrate": "true", "post-migrate": "date +%s%N >> \(runs)"])
        defer { work.remove(); app.remove() }
        let db = try await pg.createDatabase()
        let nodes = try await Self.predeployed(pg, db, work: work, app: app, key: "deploy-2",
                                               clusterExtra: "barrier-timeout = \"3s\"\n")
        let clock = ContinuousClock(), started = clock.now
        let results = try await withThrowingTaskGroup(of: CommandResult.self) { group in
            for n in nodes.prefix(2) { group.addTask { try await Self.post(n, dir: app.path, key: "deploy-2") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        let took = clock.now - started
        for r in results {
            #expect(r.status == 1, "\(r)")
            #expect(r.stdout.contains("the traffic barrier timed out after 3s: node(s) c took part in the predeploy but did not submit the postdeploy"), "\(r)")
        }
        #expect(took >= .seconds(3), "the callers failed after \(took), before the barrier timed out")
        #expect(!FileManager.default.fileExists(atPath: runs), "nothing ran")
        // The missing node comes later: the recorded outcome at once, nothing run.
        let late = try await Self.post(nodes[2], dir: app.path, key: "deploy-2")
        #expect(late.status == 1, "\(late)")
        #expect(!FileManager.default.fileExists(atPath: runs))
        // Every node has now switched: a retry of the failed postdeploy runs it (once), under
        // the deploy's own key, its barrier met by the nodes that submitted the first one.
        let failedID = results[0].lines[0]
        let owner = try #require(nodes.first { (try? $0.record(failedID)) != nil })
        let retry = try await owner.ctl(["retry", failedID, "--wait"])
        #expect(retry.status == 0, "\(retry)")
        #expect(ClusterTests.lines(runs).count == 1, "\(ClusterTests.lines(runs))")
        let retried = try #require(try owner.record(retry.lines[0]))
        #expect(retried.phase == .postdeploy && retried.cluster?.deployKey == "deploy-2" && retried.retryOf == failedID)
        for n in nodes { await n.cleanUp() }
        await pg.remove()
    }

    @Test("a node SIGKILLed between its predeploy and its postdeploy, started again, still completes the barrier")
    func killedNodeCompletes() async throws {
        let pg = try await TestPostgres.start()
        let work = TempDir()
        let runs = work.file("post-runs")
        let app = try AppFixture(commands: ["migrate": "true", "post-migrate": "date +%s%N >> \(runs)"])
        defer { work.remove(); app.remove() }
        let db = try await pg.createDatabase()
        let nodes = try await Self.predeployed(pg, db, work: work, app: app, key: "deploy-3")
        try await nodes[2].kill9()
        let a = Task { try await Self.post(nodes[0], dir: app.path, key: "deploy-3") }
        let b = Task { try await Self.post(nodes[1], dir: app.path, key: "deploy-3") }
        try await Self.waitsAtBarrier(nodes[0], for: "c")
        let c = try await ClusterTests.node(pg, db, "c", in: work, spool: nodes[2].spool)
        let cSubmitted = Self.nanoseconds()
        let cResult = try await Self.post(c, dir: app.path, key: "deploy-3")
        for r in [try await a.value, try await b.value, cResult] { #expect(r.status == 0, "\(r)") }
        let ran = ClusterTests.lines(runs)
        #expect(ran.count == 1 && (Int64(ran[0]) ?? 0) > cSubmitted, "\(ran)")
        for n in [nodes[0], nodes[1], c] { await n.cleanUp() }
        nodes[2].notify.close()
        await pg.remove()
    }

    @Test("a postdeploy whose predeploy failed in the cluster is rejected on every node, even one that did not take part; a key's postdeploy is its app's alone")
    func refusedInCluster() async throws {
        let pg = try await TestPostgres.start()
        let work = TempDir()
        let marker = work.file("post-ran")
        let failing = try AppFixture(commands: ["migrate": "exit 4", "post-migrate": "touch \(marker)"])
        defer { work.remove(); failing.remove() }
        let db = try await pg.createDatabase()
        let a = try await ClusterTests.node(pg, db, "a", in: work)
        let b = try await ClusterTests.node(pg, db, "b", in: work)
        #expect(try await Self.pre(a, dir: failing.path, key: "deploy-f").status == 1)
        for n in [a, b] {
            let r = try await Self.post(n, dir: failing.path, key: "deploy-f")
            #expect(r.status == 2, "\(r)")
            let record = try #require(try n.record(r.lines[0]))
            #expect(record.reasonCode == "phase", "\(record)")
            #expect(record.reason?.contains("failed") == true, "\(record.reason ?? "")")
        }
        // Another app cannot take the postdeploy of shop's key.
        let other = try await b.ctl(["submit", "--app", "blog", "--release", "v1", "--dir", failing.path, "--deploy-key", "deploy-f",
                                     "--phase", "postdeploy", "--wait"])
        #expect(other.status == 2, "\(other)")
        #expect(try b.record(other.lines[0])?.reason?.contains("belongs to app shop") == true)
        #expect(!FileManager.default.fileExists(atPath: marker))
        for n in [a, b] { await n.cleanUp() }
        await pg.remove()
    }

    @Test("a first-deploy task runs on the app's first successful release in the cluster only: a second node's later deploy skips it")
    func firstDeployAcrossNodes() async throws {
        let pg = try await TestPostgres.start()
        let work = TempDir()
        let seeded = work.file("seeded")
        let app = try AppFixture()
        try "[tasks.seed]\ncommand = \"echo $RELEASE_ID >> \(seeded)\"\nfirst-deploy = true\n"
            .write(toFile: app.dir.file("release.toml"), atomically: true, encoding: .utf8)
        defer { work.remove(); app.remove() }
        let db = try await pg.createDatabase()
        let a = try await ClusterTests.node(pg, db, "a", in: work)
        let b = try await ClusterTests.node(pg, db, "b", in: work)
        func deploy(_ n: DaemonProcess, _ key: String) async throws -> CommandResult {
            try await n.ctl(["submit", "--app", "shop", "--release", key, "--dir", app.path, "--deploy-key", key,
                             "--env", "SEED_DB_DURING_RELEASE=true", "--wait"])
        }
        let first = try await deploy(a, "deploy-1")
        #expect(first.status == 0, "\(first)")
        #expect(ClusterTests.lines(seeded).count == 1)
        // b has no record of shop at all: the cluster's database says it was deployed.
        let second = try await deploy(b, "deploy-2")
        #expect(second.status == 0, "\(second)")
        let seed = try #require(try b.record(second.lines[0])?.tasks.first { $0.name == "seed" })
        #expect(seed.state == .skipped, "\(seed)")
        #expect(seed.reason == "first deploy only, and it already succeeded for shop (in release deploy-1 (\(first.lines[0])) on a, in the cluster)",
                "\(seed.reason ?? "")")
        #expect(ClusterTests.lines(seeded).count == 1)
        for n in [a, b] { await n.cleanUp() }
        await pg.remove()
    }
}
