import Foundation
import Glibc
import ReleaseKit
import Testing

/// Time limits, cancel, shutdown, crashes, lost inotify events: the daemon never loses a
/// request, never runs one twice, never leaves a task process behind.
@Suite("reliability", .serialized)
struct ReliabilityTests {
    /// A config file with short limits, so the tests take seconds.
    static func config(_ dir: TempDir, _ extra: String = "") throws -> String {
        let path = dir.file("released.toml")
        try ("kill-grace = \"1s\"\nshutdown-grace = \"2s\"\n" + extra).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    /// A task that starts a grandchild ignoring SIGTERM, then waits on it.
    static func stubbornTask(_ marker: Int) -> String {
        "sh -c 'trap \"\" TERM; exec sleep \(marker)' & trap 'echo parent got TERM' TERM; echo started; wait; wait"
    }

    @Test("a task over its timeout is timed-out: SIGTERM to its group, SIGKILL after the grace, grandchildren included")
    func taskTimeout() async throws {
        let work = TempDir()
        let marker = ProcessTable.uniqueSleep()
        let app = try AppFixture(commands: ["migrate": Self.stubbornTask(marker), "seed": "echo seeded"], timeouts: ["migrate": "1s"])
        defer { app.remove(); work.remove() }
        let daemon = try await DaemonProcess(arguments: ["--config", try Self.config(work)])
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1", "SEED_DB_DURING_RELEASE": "1"])
        #expect(r.status == 1, "\(r)")
        #expect(r.stdout.contains("parent got TERM"), "the whole group gets SIGTERM first")
        #expect(r.stdout.contains("sending SIGKILL"), "SIGKILL after the grace for what ignored SIGTERM")
        let record = try #require(try daemon.record(r.lines[0]))
        let migrate = try #require(record.tasks.first { $0.name == "migrate" })
        #expect(migrate.state == .timedOut)
        #expect(migrate.reason == "timed out after its timeout of 1s")
        #expect(record.tasks.first { $0.name == "seed" }?.state == .notRun)
        #expect(record.state == .failed)
        #expect(ProcessTable.pids(withCommandLineContaining: "sleep \(marker)").isEmpty, "no grandchild outlives its task")
        await daemon.cleanUp()
    }

    @Test("a task starts clean: in a session of its own (its starter's, releasectl-init's, not the daemon's), no signal blocked, none ignored that the daemon ignores (SIGPIPE, SIGHUP), no descriptor but 0-2; one that cannot be exec'd fails with the kernel's reason, and is reaped")
    func taskStartsClean() async throws {
        let garbage = "not a program\n"
        let app = try AppFixture(argv: ["migrate": ["sh", "-c", "cat /proc/$PPID/comm; exec grep -E '^(Sig(Blk|Ign)|NSsid|Pid|PPid):' /proc/self/status"],
                                        "seed": ["ls", "/proc/self/fd"], "cache-clear": ["./garbage"]],
                                 extraFiles: ["garbage": garbage])
        defer { app.remove() }
        #expect(chmod(app.dir.file("garbage"), 0o755) == 0)
        let daemon = try await DaemonProcess()
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1", "SEED_DB_DURING_RELEASE": "1"])
        #expect(r.status == 0, "\(r)")
        let fields = Dictionary(r.lines.compactMap { line -> (String, String)? in
            let parts = line.trimmingCharacters(in: .whitespaces).split(separator: ":", maxSplits: 1)
            return parts.count == 2 ? (String(parts[0]), parts[1].trimmingCharacters(in: .whitespaces)) : nil
        }, uniquingKeysWith: { a, _ in a })
        #expect(fields["SigBlk"] == "0000000000000000", "no signal blocked: \(r.stdout)")
        // Only glibc's own two real-time signals (32, 33) stay ignored, as posix_spawn leaves them.
        #expect(fields["SigIgn"] == "0000000180000000", "SIGPIPE and SIGHUP are not ignored: \(r.stdout)")
        // The task is forked by its starter, which leads the session the daemon made for it (so
        // the task's figures are its own, none of the starter's): the session holds only them.
        #expect(fields["NSsid"] != nil && fields["NSsid"] == fields["PPid"], "the task's session is its starter's: \(r.stdout)")
        #expect(r.lines.contains("       releasectl-init"), "its starter is releasectl-init: \(r.stdout)")
        #expect(fields["NSsid"] != String(getsid(daemon.pid)), "not the daemon's session: \(r.stdout)")
        // `ls` lists 0, 1, 2 and the descriptor it opened the folder with.
        let fds = r.lines.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && $0.allSatisfy(\.isNumber) }
        #expect(fds == ["0", "1", "2", "3"], "nothing of the daemon's is inherited: \(r.stdout)")

        let broken = try await daemon.submitWait(app: "shop", dir: app.path, env: ["CLEAR_CACHE_DURING_RELEASE": "1"])
        #expect(broken.status == 1, "\(broken)")
        let record = try #require(try daemon.record(broken.lines[0]))
        let task = try #require(record.tasks.first { $0.name == "cache-clear" })
        #expect(task.state == .failed)
        #expect(task.reason?.contains("Exec format error") == true, "\(String(describing: task.reason))")
        let zombies = try FileManager.default.contentsOfDirectory(atPath: "/proc").compactMap(Int32.init)
            .filter { ProcessTable.parent(of: $0) == daemon.pid && ProcessTable.isZombie($0) }
        #expect(zombies.isEmpty, "the child that could not exec was reaped")
        let after = try await daemon.submitWait(app: "shop", dir: app.path, env: ["SEED_DB_DURING_RELEASE": "1"])
        #expect(after.status == 0, "the daemon goes on: \(after)")
        await daemon.cleanUp()
    }

    @Test("a process that leaves the task's group (setsid), even one ignoring SIGTERM, does not outlive its task")
    func escapeeEnded() async throws {
        let work = TempDir()
        let marker = ProcessTable.uniqueSleep()
        let stubborn = ProcessTable.uniqueSleep()
        let app = try AppFixture(commands: [
            "migrate": "setsid sleep \(marker) & setsid sh -c 'trap \"\" TERM; sleep \(stubborn)' & sleep 0.2; echo migrated",
            "seed": "echo seeded",
        ])
        defer { app.remove(); work.remove() }
        let daemon = try await DaemonProcess(arguments: ["--config", try Self.config(work)])
        // A large environment: the escapees' RELEASE_ID may sit past the first read of it.
        // (Three values of 100 kB: one exec argument or variable is at most 128 KiB.)
        let big = String(repeating: "x", count: 100_000)
        let r = try await daemon.submitWait(app: "shop", dir: app.path,
                                            env: ["RUN_MIGRATIONS_DURING_RELEASE": "1", "SEED_DB_DURING_RELEASE": "1",
                                                  "AAA_BIG1": big, "AAA_BIG2": big, "AAA_BIG3": big])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("left processes outside its process group"), "\(r)")
        #expect(r.stdout.contains("processes outside its group still running after 1s; sending SIGKILL"), "\(r)")
        // Ended before the task counted as done, so before the next task and the record.
        #expect(ProcessTable.pids(withCommandLineContaining: "sleep \(marker)").isEmpty, "the setsid escapee outlived its task")
        #expect(ProcessTable.pids(withCommandLineContaining: "sleep \(stubborn)").isEmpty, "the escapee ignoring SIGTERM outlived its task")
        await daemon.cleanUp()
    }

    @Test("the release's own time limit (release-timeout) times out a task with no timeout of its own")
    func releaseTimeout() async throws {
        let work = TempDir()
        let marker = ProcessTable.uniqueSleep()
        let app = try AppFixture(commands: ["migrate": "sleep \(marker)"])
        defer { app.remove(); work.remove() }
        let daemon = try await DaemonProcess(arguments: ["--config", try Self.config(work, "release-timeout = \"1s\"\n")])
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        #expect(r.status == 1, "\(r)")
        let record = try #require(try daemon.record(r.lines[0]))
        #expect(record.tasks.first { $0.name == "migrate" }?.reason == "timed out after the release's time limit of 1s")
        #expect(record.reason == "migrate timed out after the release's time limit of 1s")
        #expect(ProcessTable.pids(withCommandLineContaining: "sleep \(marker)").isEmpty)
        await daemon.cleanUp()
    }

    @Test("two releases' tasks running at once each time out at their own deadline, the later one started first")
    func deadlinesOfTasksRunningAtOnce() async throws {
        let work = TempDir()
        let (long, short) = (ProcessTable.uniqueSleep(), ProcessTable.uniqueSleep())
        let slow = try AppFixture(commands: ["migrate": "touch \(work.file("slow-running")); sleep \(long)"], timeouts: ["migrate": "3s"])
        let quick = try AppFixture(commands: ["migrate": "sleep \(short)"], timeouts: ["migrate": "1s"])
        defer { slow.remove(); quick.remove(); work.remove() }
        let daemon = try await DaemonProcess(arguments: ["--config", try Self.config(work), "--max-parallel", "2"])
        let first = try await daemon.submit(app: "shop", dir: slow.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        try await eventually("the 3 s task to start") { FileManager.default.fileExists(atPath: work.file("slow-running")) }
        let second = try await daemon.submit(app: "blog", dir: quick.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        let (a, b) = (try await daemon.waitForRecord(first), try await daemon.waitForRecord(second))
        let slowTask = try #require(a.tasks.first { $0.name == "migrate" })
        let quickTask = try #require(b.tasks.first { $0.name == "migrate" })
        #expect(slowTask.state == .timedOut && quickTask.state == .timedOut, "\(a) \(b)")
        // Each at its own deadline: the earlier one, armed second, does not wait for the later;
        // the later one still goes off after the earlier has.
        let quickMs = try #require(quickTask.durationMs), slowMs = try #require(slowTask.durationMs)
        #expect((1_000..<2_500).contains(quickMs), "the 1 s task ran \(quickMs) ms")
        #expect((3_000..<4_500).contains(slowMs), "the 3 s task ran \(slowMs) ms")
        #expect(ProcessTable.pids(withCommandLineContaining: "sleep \(long)").isEmpty && ProcessTable.pids(withCommandLineContaining: "sleep \(short)").isEmpty)
        await daemon.cleanUp()
    }

    @Test("cancel: a queued release is cancelled without running; a running one is stopped; waiters exit 3")
    func cancelQueuedAndRunning() async throws {
        let work = TempDir()
        let marker = ProcessTable.uniqueSleep()
        let app = try AppFixture(commands: [
            "migrate": "touch \(work.file("running")); " + Self.stubbornTask(marker),
            "seed": "touch \(work.file("queued-ran"))",
        ])
        defer { app.remove(); work.remove() }
        let daemon = try await DaemonProcess(arguments: ["--config", try Self.config(work), "--max-parallel", "1"])
        let first = try await daemon.submit(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        try await eventually("the first release's task to start") { FileManager.default.fileExists(atPath: work.file("running")) }
        let second = try await daemon.submit(app: "blog", dir: app.path, env: ["SEED_DB_DURING_RELEASE": "1"])
        #expect(daemon.files(in: "incoming") == ["\(second).json"], "blog waits: max-parallel 1")

        let cancelQueued = try await daemon.ctl(["cancel", second])
        #expect(cancelQueued.status == 0, "\(cancelQueued)")
        let waitQueued = try await daemon.ctl(["wait", second])
        #expect(waitQueued.status == 3)
        #expect(try daemon.record(second)?.state == .cancelled)
        #expect(try daemon.record(second)?.tasks.isEmpty == true)
        #expect(!FileManager.default.fileExists(atPath: work.file("queued-ran")), "a cancelled queued release never runs")

        async let waiter = daemon.ctl(["wait", first])
        let cancelRunning = try await daemon.ctl(["cancel", first])
        #expect(cancelRunning.status == 0, "\(cancelRunning)")
        let waited = try await waiter
        #expect(waited.status == 3, "\(waited)")
        let record = try #require(try daemon.record(first))
        #expect(record.state == .cancelled)
        #expect(record.tasks.first { $0.name == "migrate" }?.state == .cancelled)
        try await eventually("the cancelled task's processes to be gone") {
            ProcessTable.pids(withCommandLineContaining: "sleep \(marker)").isEmpty
        }
        // Cancelling a finished release: 1 if it ended otherwise, 0 if it is cancelled, 2 if unknown.
        let again = try await daemon.ctl(["cancel", first])
        #expect(again.status == 0)
        let ok = try await daemon.submitWait(app: "shop", dir: app.path)
        let done = try await daemon.ctl(["cancel", ok.lines[0]])
        #expect(done.status == 1, "\(done)")
        let unknown = try await daemon.ctl(["cancel", "01JDQ8K3ZP6V4TQX2M9B7C5N1R"])
        #expect(unknown.status == 2)
        await daemon.cleanUp()
    }

    @Test("a cancel requested while no daemon runs is applied before anything runs when it starts")
    func cancelWhileStopped() async throws {
        let spool = TempDir("releasectl-spool")
        let work = TempDir()
        let app = try AppFixture(commands: ["migrate": "touch \(work.file("ran"))"])
        defer { app.remove(); work.remove() }
        let submit = try await runProgram(Binaries.releasectl, ["submit", "--spool", spool.path + "/spool", "--app", "shop", "--release", "v1",
                                                                  "--dir", app.path, "--env", "RUN_MIGRATIONS_DURING_RELEASE=1"])
        let id = submit.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let cancel = try await runProgram(Binaries.releasectl, ["cancel", "--spool", spool.path + "/spool", id])
        #expect(cancel.status == 0)
        #expect(cancel.stdout.contains("no released is running"))
        let daemon = try await DaemonProcess(spool: spool)
        let record = try await daemon.waitForRecord(id)
        #expect(record.state == .cancelled)
        #expect(!FileManager.default.fileExists(atPath: work.file("ran")))
        await daemon.cleanUp()
    }

    @Test("SIGTERM: running releases get the shutdown grace, then become interrupted; queued ones stay queued")
    func gracefulShutdown() async throws {
        let work = TempDir()
        let marker = ProcessTable.uniqueSleep()
        let app = try AppFixture(commands: [
            "migrate": "touch \(work.file("slow-started")); " + Self.stubbornTask(marker),
            "seed": "touch \(work.file("quick-started")); sleep 0.5; echo quick done",
        ])
        defer { app.remove(); work.remove() }
        let daemon = try await DaemonProcess(arguments: ["--config", try Self.config(work), "--max-parallel", "2"])
        let slow = try await daemon.submit(app: "slow", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        let quick = try await daemon.submit(app: "quick", dir: app.path, env: ["SEED_DB_DURING_RELEASE": "1"])
        try await eventually("both tasks to start") {
            FileManager.default.fileExists(atPath: work.file("slow-started")) && FileManager.default.fileExists(atPath: work.file("quick-started"))
        }
        let queued = try await daemon.submit(app: "slow", release: "v2", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        try await daemon.stop()
        #expect(try daemon.record(quick)?.state == .succeeded, "a release that ends within the grace keeps its outcome")
        let interrupted = try #require(try daemon.record(slow))
        #expect(interrupted.state == .interrupted)
        #expect(interrupted.tasks.first { $0.name == "migrate" }?.state == .cancelled)
        #expect(daemon.files(in: "incoming") == ["\(queued).json"], "the queued request stays for the next start")
        #expect(daemon.files(in: "running").isEmpty)
        #expect(ProcessTable.pids(withCommandLineContaining: "sleep \(marker)").isEmpty)
        #expect(daemon.exitStatus == 0)
        await daemon.cleanUp()
    }

    @Test("SIGKILL mid-release: the guard kills the task's processes; on restart the release is interrupted, never re-run; retry makes a new one")
    func crashAndRetry() async throws {
        let work = TempDir()
        let marker = ProcessTable.uniqueSleep()
        let trace = work.file("trace")
        let app = try AppFixture(commands: ["migrate": "echo $RELEASE_ID >> \(trace); if [ ! -f \(work.file("second")) ]; then touch \(work.file("second")); " + Self.stubbornTask(marker) + "; fi"])
        defer { app.remove(); work.remove() }
        let daemon = try await DaemonProcess(arguments: ["--config", try Self.config(work)])
        let id = try await daemon.submit(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        // (The task's own command line names the sleep too: the trace line and the `second`
        // marker, written before the sleep starts, say it got that far — without the marker a
        // kill between the two would leave the retry to run the stubborn branch again.)
        try await eventually("the task's trace line, its marker and its grandchild") {
            FileManager.default.fileExists(atPath: trace) && FileManager.default.fileExists(atPath: work.file("second"))
                && !ProcessTable.pids(withCommandLineContaining: "sleep \(marker)").isEmpty
        }
        try await daemon.kill9()
        try await eventually("the process guard to kill the orphaned task processes", timeout: .seconds(10)) {
            ProcessTable.pids(withCommandLineContaining: "sleep \(marker)").isEmpty
        }
        #expect(daemon.files(in: "running").contains("\(id).json"))

        let restarted = try await DaemonProcess(spool: daemon.spool)
        let record = try #require(try restarted.record(id))
        #expect(record.state == .interrupted, "recovery happens before READY")
        #expect(record.tasks.first { $0.name == "migrate" }?.state == .cancelled)
        #expect(restarted.files(in: "running").isEmpty)
        let waited = try await restarted.ctl(["wait", id])
        #expect(waited.status == 3)
        #expect(try String(contentsOfFile: trace, encoding: .utf8) == "\(id)\n", "the interrupted release did not run again")

        let retry = try await restarted.ctl(["retry", id, "--wait"])
        #expect(retry.status == 0, "\(retry)")
        let newID = retry.lines[0]
        #expect(newID != id)
        #expect(try restarted.record(newID)?.retryOf == id)
        #expect(try String(contentsOfFile: trace, encoding: .utf8) == "\(id)\n\(newID)\n")
        await restarted.cleanUp()
        daemon.notify.close()
    }

    @Test("a daemon restarted at once after a SIGKILL starts no task before the dead daemon's guard has ended its processes (whose last sweep ends every process of the app's user started since)")
    func restartWhileGuardSweeps() async throws {
        _ = try TestUser.app1()
        let shared = try SharedSpool()
        defer { shared.remove() }
        let marker = ProcessTable.uniqueSleep()
        // v1 runs until the daemon is killed; v2, queued behind it (one release of an app at a
        // time), runs in the restarted daemon while the old guard would still be sweeping.
        let app = try readableApp(commands: ["migrate": "if [ \"$RELEASE_NAME\" = v1 ]; then exec sleep \(marker); fi; sleep 1; echo v2 done"])
        defer { app.remove() }
        let config = try shared.config("default-user = \"rctl-app1\"\n")
        let daemon = try await DaemonProcess(arguments: ["--config", config], spool: shared.dir, allowRootTasks: false)
        let first = try await daemon.submit(app: "shop", release: "v1", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        try await eventually("v1's task to start") { !ProcessTable.pids(withCommandLineContaining: "sleep \(marker)").isEmpty }
        let second = try await daemon.submit(app: "shop", release: "v2", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        // Restarted the moment it is dead (a zombie), as a supervisor would.
        kill(daemon.pid, SIGKILL)
        try await eventually("released to die after SIGKILL", interval: .milliseconds(1)) { ProcessTable.isZombie(daemon.pid) }
        let restarted = try await DaemonProcess(arguments: ["--config", config], spool: shared.dir, allowRootTasks: false)
        let record = try await restarted.waitForRecord(second)
        let log = (try? String(contentsOfFile: restarted.spoolPath + "/logs/\(second).log", encoding: .utf8)) ?? ""
        #expect(record.state == .succeeded, "v2 was ended by the old daemon's guard: \(log)")
        #expect(try restarted.record(first)?.state == .interrupted)
        #expect(ProcessTable.pids(withCommandLineContaining: "sleep \(marker)").isEmpty)
        await restarted.cleanUp()
        daemon.notify.close()
    }

    @Test("inotify overflow while the loop is busy: the daemon rescans and every one of 1000 requests is processed")
    func overflowRescan() async throws {
        let limitPath = "/proc/sys/fs/inotify/max_queued_events"
        let original = try String(contentsOfFile: limitPath, encoding: .utf8)
        try "16\n".write(toFile: limitPath, atomically: false, encoding: .utf8)
        let daemon: DaemonProcess
        do {
            daemon = try await DaemonProcess(arguments: ["--test-stall-on-sigusr2"], environment: ["RELEASED_TEST_STALL_SECONDS": "2"])
        } catch {
            try? original.write(toFile: limitPath, atomically: false, encoding: .utf8)
            throw error
        }
        try original.write(toFile: limitPath, atomically: false, encoding: .utf8)
        let app = try AppFixture()
        defer { app.remove() }
        kill(daemon.pid, SIGUSR2)
        try await eventually("the daemon to report its stalled loop") { daemon.log.contains("blocking the event loop") }
        var ids: [String] = []
        for i in 0..<1000 {
            let request = ReleaseRequest(id: ReleaseID.generate(), app: "app\(i % 25)", release: "v\(i)", directory: app.path)
            try daemon.drop(name: "\(request.id).json", contents: Data(request.encoded()))
            ids.append(request.id.rawValue)
        }
        try await eventually("all 1000 requests to finish", timeout: .seconds(600)) {
            daemon.files(in: "done").count == 2000
        }
        #expect(daemon.log.contains("inotify queue overflowed; rescanning"))
        #expect(daemon.files(in: "incoming").isEmpty)
        #expect(daemon.files(in: "rejected").isEmpty)
        for id in ids.prefix(50) { #expect(try daemon.record(id)?.state == .succeeded) }
        await daemon.cleanUp()
    }
}

@Suite("retention", .serialized)
struct RetentionTests {
    @Test("finished releases past retention-days are removed (request, record, log), keeping the newest retention-keep per app")
    func sweep() async throws {
        let work = TempDir()
        defer { work.remove() }
        let app = try AppFixture(commands: ["migrate": "echo hi"])
        defer { app.remove() }
        let daemon = try await DaemonProcess()
        var shop: [String] = []
        for i in 0..<4 {
            shop.append(try await daemon.submitWait(app: "shop", release: "v\(i)", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"]).lines[0])
        }
        let blog = try await daemon.submitWait(app: "blog", dir: app.path).lines[0]
        try await daemon.stop()
        let config = work.file("released.toml")
        try "retention-days = 0\nretention-keep = 2\n".write(toFile: config, atomically: true, encoding: .utf8)
        let restarted = try await DaemonProcess(arguments: ["--config", config], spool: daemon.spool)
        try await eventually("the sweep at start") { restarted.log.contains("retention: removed 2 finished release(s)") }
        for id in shop.prefix(2) {
            #expect(try restarted.record(id) == nil, "\(id) is past retention")
            #expect(!FileManager.default.fileExists(atPath: "\(restarted.spoolPath)/done/\(id).json"))
            #expect(!FileManager.default.fileExists(atPath: "\(restarted.spoolPath)/logs/\(id).log"))
        }
        for id in shop.suffix(2) + [blog] {
            #expect(try restarted.record(id) != nil, "the newest two per app stay")
        }
        await restarted.cleanUp()
        daemon.notify.close()
    }

    @Test("an app's newest succeeded release of each phase outlives retention: the app stays known as deployed (first-deploy tasks)")
    func keepsLastDeployed() async throws {
        let work = TempDir()
        defer { work.remove() }
        let app = try AppFixture(commands: ["migrate": "test \"$FAIL\" != 1", "post-migrate": "true"])
        defer { app.remove() }
        let daemon = try await DaemonProcess()
        let on = ["RUN_MIGRATIONS_DURING_RELEASE": "1", "RUN_MIGRATIONS_AFTER_DEPLOY": "1"]
        let deployed = try await daemon.submitWait(app: "shop", release: "v0", dir: app.path, env: on).lines[0]
        let post = try await daemon.submitWait(app: "shop", release: "v0", dir: app.path, env: on, extra: ["--phase", "postdeploy"]).lines[0]
        var failed: [String] = []
        for i in 1...3 {
            failed.append(try await daemon.submitWait(app: "shop", release: "v\(i)", dir: app.path, env: on.merging(["FAIL": "1"]) { $1 }).lines[0])
        }
        try await daemon.stop()
        let config = work.file("released.toml")
        try "retention-days = 0\nretention-keep = 1\n".write(toFile: config, atomically: true, encoding: .utf8)
        let restarted = try await DaemonProcess(arguments: ["--config", config], spool: daemon.spool)
        try await eventually("the sweep at start") { restarted.log.contains("retention: removed 2 finished release(s)") }
        #expect(try restarted.record(deployed) != nil, "the last succeeded predeploy stays")
        #expect(try restarted.record(post) != nil, "the last succeeded postdeploy stays")
        #expect(try restarted.record(failed[2]) != nil, "the newest stays")
        #expect(try restarted.record(failed[0]) == nil && restarted.record(failed[1]) == nil)
        await restarted.cleanUp()
        daemon.notify.close()
    }
}
