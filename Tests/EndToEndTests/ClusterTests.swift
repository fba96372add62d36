import Foundation
import Glibc
import ReleaseKit
import Testing

/// Several daemons on one real PostgreSQL (a server of the test's own): a deploy key's tasks
/// run once across the cluster; the others follow and end the same; leases, a node killed or
/// cut off, the database stopped, a wrong password.
@Suite("cluster", .serialized, .enabled(if: TestPostgres.isAvailable, "needs PostgreSQL (apt-get install postgresql)"))
struct ClusterTests {
    /// One node: its own spool and released.toml, `[cluster]` on `database`.
    /// `clusterExtra`: more keys of `[cluster]`.
    static func node(_ pg: TestPostgres, _ database: String, _ name: String, in work: TempDir, lease: String = "6s", extra: String = "",
                     clusterExtra: String = "", host: String = "127.0.0.1", wrapper: [String] = [], password: String = TestPostgres.password,
                     spool: TempDir? = nil, waitReady: Bool = true) async throws -> DaemonProcess {
        let path = work.file("released-\(name).toml")
        try ("kill-grace = \"1s\"\n" + extra + (try pg.clusterTOML(database: database, node: name, lease: lease, host: host, in: work,
                                                                     password: password)) + clusterExtra)
            .write(toFile: path, atomically: true, encoding: .utf8)
        return try await DaemonProcess(arguments: ["--config", path], spool: spool, waitReady: waitReady, wrapper: wrapper)
    }

    static func submit(_ daemon: DaemonProcess, app: String = "shop", dir: String, key: String, wait: Bool = true) async throws -> CommandResult {
        try await daemon.ctl(["submit", "--app", app, "--release", "v1", "--dir", dir, "--deploy-key", key,
                              "--env", "RUN_MIGRATIONS_DURING_RELEASE=true"] + (wait ? ["--wait"] : []))
    }

    static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    /// What the node last wrote of the cluster (`releasectl cluster status` reads the same).
    static func snapshot(_ daemon: DaemonProcess) -> ClusterStatus.Snapshot? {
        Spool.resolve(option: daemon.spoolPath).readClusterStatus().flatMap { try? ClusterStatus.Snapshot.decode($0) }
    }

    /// The node that holds the key's running request (its request is in running/).
    static func runner(_ nodes: [DaemonProcess]) -> DaemonProcess? {
        nodes.first { !$0.files(in: "running").filter { $0.hasSuffix(".json") && !$0.hasSuffix(".record.json") }.isEmpty }
    }

    @Test("one deploy key on three nodes runs its tasks once; all three print the output and exit alike (0, then 1); a late node gets the outcome at once")
    func runsOnce() async throws {
        let pg = try await TestPostgres.start()
        let work = TempDir()
        let runs = work.file("runs")
        let app = try AppFixture(commands: ["migrate": "echo $RELEASE_ID >> \(runs); echo migrated by the cluster; sleep 1"])
        let failing = try AppFixture(commands: ["migrate": "echo $RELEASE_ID >> \(runs)-failing; echo migration failed here; exit 3"])
        defer { work.remove(); app.remove(); failing.remove() }
        let db = try await pg.createDatabase()
        var nodes: [DaemonProcess] = []
        for name in ["a", "b", "c"] { nodes.append(try await Self.node(pg, db, name, in: work)) }

        // In the nodes' order.
        let results = try await withThrowingTaskGroup(of: (Int, CommandResult).self) { group in
            for (i, n) in nodes.enumerated() { group.addTask { (i, try await Self.submit(n, dir: app.path, key: "deploy-1")) } }
            return try await group.reduce(into: []) { $0.append($1) }.sorted { $0.0 < $1.0 }.map(\.1)
        }
        for r in results {
            #expect(r.status == 0, "\(r)")
            #expect(r.stdout.contains("\n       migrated by the cluster\n"), "every caller sees the output: \(r)")
        }
        #expect(Self.lines(runs).count == 1, "the tasks ran once: \(Self.lines(runs))")
        var ranOn: Set<String> = []
        for (n, r) in zip(nodes, results) {
            let record = try #require(try n.record(r.lines[0]))
            #expect(record.state == .succeeded)
            #expect(record.cluster?.deployKey == "deploy-1")
            ranOn.insert(record.cluster?.ranOn ?? "?")
            #expect(record.tasks.first { $0.name == "migrate" }?.state == .succeeded, "the followers' records carry the tasks")
        }
        #expect(ranOn.count == 1 && ["a", "b", "c"].contains(ranOn.first!), "\(ranOn)")

        let failed = try await withThrowingTaskGroup(of: CommandResult.self) { group in
            for n in nodes { group.addTask { try await Self.submit(n, dir: failing.path, key: "deploy-2") } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for r in failed {
            #expect(r.status == 1, "\(r)")
            #expect(r.stdout.contains("\n       migration failed here\n"), "\(r)")
        }
        #expect(Self.lines(runs + "-failing").count == 1)

        // A node that submits after the deploy ended: the recorded outcome at once, nothing run.
        let late = try await Self.node(pg, db, "d", in: work)
        let clock = ContinuousClock(), started = clock.now
        let again = try await Self.submit(late, dir: app.path, key: "deploy-1")
        let took = clock.now - started
        #expect(again.status == 0, "\(again)")
        #expect(again.stdout.contains("\n       migrated by the cluster\n"), "\(again)")
        #expect(again.stdout.contains("on node \(ranOn.first!)"), "\(again)")
        #expect(Self.lines(runs).count == 1)
        #expect(took < .seconds(5), "the late node answered after \(took)")
        let lateFailed = try await Self.submit(late, dir: failing.path, key: "deploy-2")
        #expect(lateFailed.status == 1, "\(lateFailed)")

        // cluster status: the four nodes, live; nothing running or waiting.
        try await eventually("cluster status to list the four nodes", timeout: .seconds(15)) {
            guard let s = Self.snapshot(late) else { return false }
            return s.nodes.map(\.node) == ["a", "b", "c", "d"]
        }
        let status = try await late.ctl(["cluster", "status"])
        #expect(status.status == 0, "\(status)")
        #expect(status.stdout.contains("  a  live  last heartbeat "), "\(status)")
        #expect(status.stdout.contains("running:\n  none\n"), "\(status)")
        let json = try await late.ctl(["cluster", "status", "--json"])
        #expect(try ClusterStatus.Snapshot.decode(Array(json.stdout.utf8)).node == "d", "\(json)")
        for n in nodes + [late] {
            #expect(!n.log.contains(TestPostgres.password), "the password is never logged")
            await n.cleanUp()
        }
        await pg.remove()
    }

    @Test("two apps with one serial-key, submitted on two nodes, never run at once")
    func serialKey() async throws {
        let pg = try await TestPostgres.start()
        let work = TempDir()
        let trace = work.file("trace")
        let app = try AppFixture(commands: ["migrate": "echo \"start $(date +%s%N)\" >> \(trace); sleep 0.4; echo \"end $(date +%s%N)\" >> \(trace)"])
        defer { work.remove(); app.remove() }
        let db = try await pg.createDatabase()
        let shared = "[apps.shop]\nserial-key = \"main-db\"\n[apps.billing]\nserial-key = \"main-db\"\n"
        let a = try await Self.node(pg, db, "a", in: work, extra: shared), b = try await Self.node(pg, db, "b", in: work, extra: shared)
        let results = try await withThrowingTaskGroup(of: CommandResult.self) { group in
            for i in 0..<3 {
                group.addTask { try await Self.submit(a, app: "shop", dir: app.path, key: "shop-\(i)") }
                group.addTask { try await Self.submit(b, app: "billing", dir: app.path, key: "billing-\(i)") }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for r in results { #expect(r.status == 0, "\(r)") }
        let events = Self.lines(trace)
        #expect(events.count == 12, "\(events)")
        for (i, e) in events.enumerated() {
            #expect(e.hasPrefix(i % 2 == 0 ? "start " : "end "), "two releases of serial key main-db overlapped: \(events)")
        }
        await a.cleanUp()
        await b.cleanUp()
        await pg.remove()
    }

    @Test("the running node SIGKILLed mid-task: the others end interrupted (exit 3) within lease + a few seconds, and nothing runs it again")
    func runnerKilled() async throws {
        let pg = try await TestPostgres.start()
        let work = TempDir()
        let runs = work.file("runs")
        let marker = ProcessTable.uniqueSleep()
        let go = work.file("go")
        let app = try AppFixture(commands: ["migrate": "echo $RELEASE_ID >> \(runs); echo migrating; [ -e \(go) ] || sleep \(marker)"])
        defer { work.remove(); app.remove() }
        let db = try await pg.createDatabase()
        var nodes: [DaemonProcess] = []
        for name in ["a", "b", "c"] { nodes.append(try await Self.node(pg, db, name, in: work)) }
        let waits = nodes.map { n in Task { try await Self.submit(n, dir: app.path, key: "deploy-k") } }
        try await eventually("the task to start on one node") { !ProcessTable.pids(withCommandLineContaining: "sleep \(marker)").isEmpty }
        let runner = try #require(Self.runner(nodes))
        let others = nodes.filter { $0 !== runner }
        try await eventually("cluster status to show the running release", timeout: .seconds(15)) {
            guard let s = Self.snapshot(others[0]) else { return false }
            return s.running.first?.deployKey == "deploy-k" && s.running.first!.leaseLeftMs > 0
        }
        let clock = ContinuousClock()
        try await runner.kill9()
        let killed = clock.now
        for (i, n) in nodes.enumerated() where n !== runner {
            let r = try await waits[i].value
            #expect(r.status == 3, "\(r)")
            #expect(r.stdout.contains("\n       migrating\n"), "\(r)")
            let record = try #require(try n.record(r.lines[0]))
            #expect(record.state == .interrupted)
            #expect(record.reason?.contains("stopped renewing its lease") == true, "\(record.reason ?? "")")
        }
        let took = clock.now - killed
        #expect(took < .seconds(6 + 4), "the others ended \(took) after the kill (lease 6s)")
        try await eventually("the process guard to end the killed node's task", timeout: .seconds(10)) {
            ProcessTable.pids(withCommandLineContaining: "sleep \(marker)").isEmpty
        }

        // The killed node starts again: its release is interrupted, and runs nowhere again.
        let name = ["a", "b", "c"][nodes.firstIndex { $0 === runner }!]
        let restarted = try await Self.node(pg, db, name, in: work, spool: runner.spool)
        let runnerWait = try await waits[nodes.firstIndex { $0 === runner }!].value
        #expect(runnerWait.status == 3, "\(runnerWait)")
        let late = try await Self.submit(restarted, dir: app.path, key: "deploy-k")
        #expect(late.status == 3, "\(late)")
        #expect(Self.lines(runs).count == 1, "\(Self.lines(runs))")

        // retry runs it again, as a new deploy key.
        FileManager.default.createFile(atPath: go, contents: nil)
        let retry = try await restarted.ctl(["retry", runnerWait.lines[0], "--wait"])
        #expect(retry.status == 0, "\(retry)")
        #expect(Self.lines(runs).count == 2, "\(Self.lines(runs))")
        #expect(try restarted.record(retry.lines[0])?.cluster?.deployKey == "retry-\(retry.lines[0])")
        for n in others + [restarted] { await n.cleanUp() }
        runner.notify.close()
        await pg.remove()
    }

    @Test("a node cut off from the database ends its task before its lease runs out; the others mark it interrupted after", .enabled(if: NetworkNamespace.isAvailable, "needs root and iproute2"))
    func partition() async throws {
        let pg = try await TestPostgres.start()
        let netns = try await NetworkNamespace()
        let work = TempDir()
        let marker = ProcessTable.uniqueSleep()
        let app = try AppFixture(commands: ["migrate": "echo migrating; sleep \(marker)"])
        defer { work.remove(); app.remove() }
        let db = try await pg.createDatabase()
        let cut = try await Self.node(pg, db, "cut", in: work, host: netns.hostAddress, wrapper: netns.exec)
        let b = try await Self.node(pg, db, "b", in: work), c = try await Self.node(pg, db, "c", in: work)
        let first = Task { try await Self.submit(cut, dir: app.path, key: "deploy-p") }
        try await eventually("the task to start on the node in the namespace") { !ProcessTable.pids(withCommandLineContaining: "sleep \(marker)").isEmpty }
        #expect(Self.runner([cut, b, c]) === cut)
        let followers = [b, c].map { n in Task { try await Self.submit(n, dir: app.path, key: "deploy-p") } }
        try await eventually("the followers to follow", timeout: .seconds(15)) {
            [b, c].allSatisfy { $0.log.contains("runs on node cut; following it") }
        }
        try await netns.cut()
        let clock = ContinuousClock(), cutAt = clock.now
        try await eventually("the cut-off node to end its task", timeout: .seconds(15)) {
            ProcessTable.pids(withCommandLineContaining: "sleep \(marker)").isEmpty
        }
        let taskEnded = Date()
        for f in followers {
            let r = try await f.value
            #expect(r.status == 3, "\(r)")
        }
        #expect(clock.now - cutAt < .seconds(6 + 5))
        let swept = try await pg.sql("SELECT extract(epoch FROM finished_at) FROM releasectl_deploys WHERE deploy_key = 'deploy-p' AND state = 'interrupted'",
                                     database: db)
        let sweptAt = try #require(Double(swept), "the deploy is not interrupted in the database: \(swept)")
        #expect(taskEnded.timeIntervalSince1970 < sweptAt, "the task ended at \(taskEnded.timeIntervalSince1970), the lease ran out at \(sweptAt)")
        // The cut-off node's own caller is told what the cluster holds, once it can reach it.
        try await netns.restore()
        let own = try await first.value
        #expect(own.status == 3, "\(own)")
        let record = try #require(try cut.record(own.lines[0]))
        #expect(record.state == .interrupted)
        #expect(cut.log.contains("the lease could not be renewed in time; ending its tasks before it runs out"), "\(cut.log)")
        for n in [cut, b, c] { await n.cleanUp() }
        await netns.remove()
        await pg.remove()
    }

    @Test("the database stopped: nothing starts and STATUS= says so; the release runs once it is back")
    func databaseDown() async throws {
        let pg = try await TestPostgres.start()
        let work = TempDir()
        let runs = work.file("runs")
        let app = try AppFixture(commands: ["migrate": "echo $RELEASE_ID >> \(runs); echo migrated"])
        defer { work.remove(); app.remove() }
        let db = try await pg.createDatabase()
        let a = try await Self.node(pg, db, "a", in: work)
        try await pg.stopServer()
        let waiting = Task { try await Self.submit(a, dir: app.path, key: "deploy-d") }
        let (msg, _) = try await a.notify.wait(for: "STATUS= waiting for the database", timeout: .seconds(30)) {
            $0.fields["STATUS"]?.contains("waiting for the cluster database") == true
        }
        #expect(msg.fields["STATUS"]?.contains("1 queued") == true, "\(msg.text)")
        try await eventually("the daemon to write that the database cannot be reached", timeout: .seconds(15)) {
            guard let s = Self.snapshot(a) else { return false }
            return s.database != nil
        }
        let status = try await a.ctl(["status"])
        #expect(status.stdout.contains("waiting for the cluster database"), "\(status)")
        #expect(!FileManager.default.fileExists(atPath: runs), "a task ran with the database down")
        try await pg.startServer()
        let r = try await waiting.value
        #expect(r.status == 0, "\(r)")
        #expect(Self.lines(runs).count == 1)
        #expect(a.log.contains("the cluster database: "), "\(a.log)")
        await a.cleanUp()
        await pg.remove()
    }

    @Test("a wrong password, or a schema newer than the node's, fails start-up with a clear message (never the password)")
    func wrongPassword() async throws {
        let pg = try await TestPostgres.start()
        let work = TempDir()
        defer { work.remove() }
        let db = try await pg.createDatabase()
        let wrong = "not-the-password-91c2"
        let a = try await Self.node(pg, db, "a", in: work, password: wrong, waitReady: false)
        try await eventually("released to exit", timeout: .seconds(30)) { !a.isRunning }
        #expect(a.exitStatus != 0)
        #expect(a.log.contains("password authentication failed for user \"releasectl\""), "\(a.log)")
        #expect(!a.log.contains(wrong))
        await a.cleanUp()

        // A database whose schema is newer than this node's: refused at start, saying so.
        let b = try await Self.node(pg, db, "b", in: work)
        await b.cleanUp()
        try await pg.sql("UPDATE releasectl_schema SET version = 99", database: db)
        let c = try await Self.node(pg, db, "c", in: work, waitReady: false)
        try await eventually("released to exit", timeout: .seconds(30)) { !c.isRunning }
        #expect(c.exitStatus != 0)
        #expect(c.log.contains("the cluster database's schema is version 99; this released knows up to version 2: upgrade released on this node"),
                "\(c.log)")
        await c.cleanUp()
        await pg.remove()
    }

    @Test("a deploy key is one app's: another app's request with it is rejected naming the key and its app, never follows it, and its cancel touches nothing of the other app's run")
    func deployKeyIsOneApps() async throws {
        let pg = try await TestPostgres.start()
        let work = TempDir()
        let billingRuns = work.file("billing-runs"), shopRuns = work.file("shop-runs")
        let billing = try AppFixture(commands: ["migrate": "echo billing-migrated >> \(billingRuns); echo started; sleep 3; echo billing migrated"])
        let shop = try AppFixture(commands: ["migrate": "echo shop-migrated >> \(shopRuns); echo shop migrated"])
        defer { work.remove(); billing.remove(); shop.remove() }
        let db = try await pg.createDatabase()
        let a = try await Self.node(pg, db, "a", in: work), b = try await Self.node(pg, db, "b", in: work)

        // billing's deploy runs on a; shop's PaaS user names billing's key on b.
        let running = try await Self.submit(a, app: "billing", dir: billing.path, key: "ci-77", wait: false)
        let billingID = running.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await eventually("billing's migration to start", timeout: .seconds(30)) {
            ((try? String(contentsOfFile: "\(a.spoolPath)/logs/\(billingID).log", encoding: .utf8)) ?? "").contains("\n       started\n")
        }
        let hijack = try await Self.submit(b, app: "shop", dir: shop.path, key: "ci-77")
        #expect(hijack.status == 2, "\(hijack)")
        #expect(hijack.stdout.contains("deploy key \"ci-77\" belongs to app billing in the cluster; a release of shop cannot use it"), "\(hijack)")
        #expect(!hijack.stdout.contains("billing migrated"), "shop's caller followed billing's run: \(hijack)")
        let record = try #require(try b.record(hijack.lines[0]))
        #expect(record.state == .rejected && record.reasonCode == "deploy-key")
        // Its cancel (of a release that is already over) reaches nothing of billing's.
        let cancel = try await b.ctl(["cancel", hijack.lines[0]])
        #expect(cancel.status != 0, "\(cancel)")
        let done = try await a.waitForRecord(billingID, timeout: .seconds(30))
        #expect(done.state == .succeeded, "billing's run was disturbed: \(done)")
        #expect(Self.lines(billingRuns) == ["billing-migrated"])

        // The other way round: shop takes a key first; billing's request with it is rejected
        // and shop's tasks (not billing's) ran under it.
        let first = try await Self.submit(b, app: "shop", dir: shop.path, key: "ci-88")
        #expect(first.status == 0, "\(first)")
        let second = try await Self.submit(a, app: "billing", dir: billing.path, key: "ci-88")
        #expect(second.status == 2, "\(second)")
        #expect(second.stdout.contains("deploy key \"ci-88\" belongs to app shop in the cluster; a release of billing cannot use it"), "\(second)")
        #expect(Self.lines(billingRuns) == ["billing-migrated"], "billing ran under shop's key")
        #expect(Self.lines(shopRuns) == ["shop-migrated"])

        // A key of another app's default form is refused before anything is spooled, and by
        // the daemon when written by hand; billing's own release of that label then runs.
        let squat = try await Self.submit(b, app: "shop", dir: shop.path, key: "billing/v1")
        #expect(squat.status == 2, "\(squat)")
        #expect(squat.stderr.contains("--deploy-key \"billing/v1\" has the form of app billing's own keys (billing/<release>); a release of shop cannot use it"), "\(squat)")
        let raw = ReleaseRequest(id: ReleaseID.generate(), app: "shop", release: "v1", directory: shop.path,
                                 env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"], deployKey: "billing/v1")
        try b.drop(name: "\(raw.id).json", contents: Data(raw.encoded()))
        let rawRecord = try await b.waitForRecord(raw.id.rawValue)
        #expect(rawRecord.state == .rejected && rawRecord.reasonCode == "deploy-key", "\(rawRecord)")
        let own = try await a.ctl(["submit", "--app", "billing", "--release", "v1", "--dir", billing.path, "--env", "RUN_MIGRATIONS_DURING_RELEASE=true", "--wait"])
        #expect(own.status == 0, "\(own)")
        #expect(own.stdout.contains("billing migrated"), "\(own)")
        #expect(Self.lines(billingRuns) == ["billing-migrated", "billing-migrated"])
        #expect(Self.lines(shopRuns) == ["shop-migrated"])
        await a.cleanUp()
        await b.cleanUp()
        await pg.remove()
    }

    /// The timestamps (ns) of a trace's lines `<kind> <name> <ns>`, by name.
    static func times(_ trace: String) -> [String: [Int64]] {
        var result: [String: [Int64]] = [:]
        for line in lines(trace) {
            let parts = line.split(separator: " ")
            guard parts.count == 3, let ns = Int64(parts[2]) else { continue }
            result[String(parts[1]), default: []].append(ns)
        }
        return result
    }

    @Test("the running node's daemon stopped (SIGSTOP) past its lease: its migration ends before the lease runs out, by the task's own clock; the next release of the serial key starts only after; every caller of each key is told the same")
    func stalledDaemon() async throws {
        let pg = try await TestPostgres.start()
        let work = TempDir()
        let trace = work.file("trace")
        // a1 migrates for 10 s, saying so every 50 ms; a2 shares its serial key.
        let a1 = try AppFixture(commands: ["migrate": "echo migrating; i=0; while [ $i -lt 200 ]; do echo \"tick a1 $(date +%s%N)\" >> \(trace); sleep 0.05; i=$((i+1)); done"])
        let a2 = try AppFixture(commands: ["migrate": "echo \"start a2 $(date +%s%N)\" >> \(trace); echo a2 migrated"])
        defer { work.remove(); a1.remove(); a2.remove() }
        let db = try await pg.createDatabase()
        let shared = "[apps.a1]\nserial-key = \"db\"\n[apps.a2]\nserial-key = \"db\"\n"
        var nodes: [DaemonProcess] = []
        for name in ["a", "b", "c"] { nodes.append(try await Self.node(pg, db, name, in: work, lease: "3s", extra: shared)) }
        let first = nodes.map { n in Task { try await Self.submit(n, app: "a1", dir: a1.path, key: "k-a1") } }
        try await eventually("a1's migration to start", timeout: .seconds(30)) { Self.times(trace)["a1"] != nil }
        let runner = try #require(Self.runner(nodes))
        let second = nodes.map { n in Task { try await Self.submit(n, app: "a2", dir: a2.path, key: "k-a2") } }
        // The runner's daemon stops for 8 s (its guard and its task do not): past the 3 s lease.
        kill(runner.pid, SIGSTOP)
        try await Task.sleep(for: .seconds(8))
        kill(runner.pid, SIGCONT)
        for (i, f) in first.enumerated() {
            let r = try await f.value
            #expect(r.status == 3, "node \(i), the runner's own caller included: \(r)")
            #expect(try nodes[i].record(r.lines[0])?.state == .interrupted)
        }
        for (i, f) in second.enumerated() {
            let r = try await f.value
            #expect(r.status == 0, "node \(i): \(r)")
        }
        let times = Self.times(trace)
        let lastTick = try #require(times["a1"]?.max()), a2Start = try #require(times["a2"]?.min())
        #expect(lastTick < a2Start, "a1's migration was still running \(Double(lastTick - a2Start) / 1e9) s into a2's")
        #expect(times["a1"]!.count < 120, "a1's migration ran on for \(times["a1"]!.count) ticks of its 200")
        let swept = try await pg.sql("SELECT (extract(epoch FROM finished_at) * 1e9)::bigint FROM releasectl_deploys WHERE deploy_key = 'k-a1'", database: db)
        let sweptAt = try #require(Int64(swept.trimmingCharacters(in: .whitespacesAndNewlines)), "\(swept)")
        #expect(lastTick < sweptAt, "a1's migration outlived its lease by \(Double(lastTick - sweptAt) / 1e9) s")
        #expect(runner.log.contains("released: process guard: release ") && runner.log.contains("reached its lease deadline without a renewal from the daemon"),
                "the guard, not the stopped daemon, ended the task: \(runner.log)")
        for n in nodes { await n.cleanUp() }
        await pg.remove()
    }

    @Test("a release that succeeded on a node cut off before the cluster took the outcome is interrupted for every caller, the runner's own included; its record says the migration ran", .enabled(if: NetworkNamespace.isAvailable, "needs root and iproute2"))
    func outcomeNotTaken() async throws {
        let pg = try await TestPostgres.start()
        let netns = try await NetworkNamespace()
        let work = TempDir()
        let ended = work.file("ended"), go = work.file("go")
        let app = try AppFixture(commands: ["migrate": "echo migrating; touch \(ended); while [ ! -e \(go) ]; do sleep 0.02; done; echo migrated"])
        defer { work.remove(); app.remove() }
        let db = try await pg.createDatabase()
        let cut = try await Self.node(pg, db, "cut", in: work, lease: "3s", host: netns.hostAddress, wrapper: netns.exec)
        let b = try await Self.node(pg, db, "b", in: work, lease: "3s"), c = try await Self.node(pg, db, "c", in: work, lease: "3s")
        let own = Task { try await Self.submit(cut, dir: app.path, key: "deploy-t") }
        try await eventually("the task to reach its end", timeout: .seconds(30)) { FileManager.default.fileExists(atPath: ended) }
        #expect(Self.runner([cut, b, c]) === cut)
        let followers = [b, c].map { n in Task { try await Self.submit(n, dir: app.path, key: "deploy-t") } }
        try await eventually("the followers to follow", timeout: .seconds(15)) {
            [b, c].allSatisfy { $0.log.contains("runs on node cut; following it") }
        }
        // Cut off as the task succeeds: the outcome cannot reach the cluster before the lease ends.
        try await netns.cut()
        FileManager.default.createFile(atPath: go, contents: nil)
        for f in followers {
            let r = try await f.value
            #expect(r.status == 3, "\(r)")
        }
        try await eventually("the cut-off node to have the outcome pending", timeout: .seconds(15)) {
            cut.log.contains("waiting for the cluster database to take the outcome")
        }
        try await netns.restore()
        let r = try await own.value
        #expect(r.status == 3, "the runner's caller is told what every other caller was: \(r)")
        #expect(r.stdout.contains("migrated"), "\(r)")
        let record = try #require(try cut.record(r.lines[0]))
        #expect(record.state == .interrupted)
        #expect(record.tasks.first { $0.name == "migrate" }?.state == .succeeded, "the record says the migration ran: \(record)")
        #expect(record.reason?.contains("its tasks ran here and ended (succeeded), but the cluster could not take the outcome before this node's lease ran out") == true,
                "\(record.reason ?? "")")
        let stored = try await pg.sql("SELECT state || ' ' || (record IS NOT NULL) FROM releasectl_deploys WHERE deploy_key = 'deploy-t'", database: db)
        #expect(stored.trimmingCharacters(in: .whitespacesAndNewlines) == "interrupted true", "the cluster keeps what the tasks did: \(stored)")
        // A node that asks later is told the same, with the tasks.
        let late = try await Self.node(pg, db, "d", in: work, lease: "3s")
        let again = try await Self.submit(late, dir: app.path, key: "deploy-t")
        #expect(again.status == 3, "\(again)")
        #expect(try late.record(again.lines[0])?.tasks.first { $0.name == "migrate" }?.state == .succeeded)
        for n in [cut, b, c, late] { await n.cleanUp() }
        await netns.remove()
        await pg.remove()
    }

    @Test("a lease the kill grace cannot fit stops the daemon at start, and is refused on reload, naming both values and what would work")
    func leaseTooShort() async throws {
        let pg = try await TestPostgres.start()
        let work = TempDir()
        defer { work.remove() }
        let db = try await pg.createDatabase()
        let path = work.file("released-short.toml")
        try (try pg.clusterTOML(database: db, node: "short", lease: "3s", host: "127.0.0.1", in: work, password: TestPostgres.password))
            .write(toFile: path, atomically: true, encoding: .utf8)
        let short = try await DaemonProcess(arguments: ["--config", path], waitReady: false)
        try await eventually("released to exit", timeout: .seconds(30)) { !short.isRunning }
        #expect(short.exitStatus == 1)
        #expect(short.log.contains("[cluster] lease = \"3s\" cannot hold with kill-grace = \"10s\": a running release must be able to miss a renewal (one every 1s)"), "\(short.log)")
        #expect(short.log.contains("set lease to at least 18s, or a longer lease") || short.log.contains("set lease to at least 18s, or kill-grace to at most"), "\(short.log)")
        await short.cleanUp()

        let good = try await Self.node(pg, db, "good", in: work, lease: "6s")
        let file = work.file("released-good.toml")
        let text = try String(contentsOfFile: file, encoding: .utf8).replacingOccurrences(of: "kill-grace = \"1s\"", with: "kill-grace = \"5s\"")
        try text.write(toFile: file, atomically: true, encoding: .utf8)
        kill(good.pid, SIGHUP)
        try await eventually("the reload to be refused") { good.log.contains("configuration not reloaded, keeping the old one") }
        #expect(good.log.contains("[cluster] lease = \"6s\" cannot hold with kill-grace = \"5s\""), "\(good.log)")
        #expect(good.isRunning)
        await good.cleanUp()
        await pg.remove()
    }
}
