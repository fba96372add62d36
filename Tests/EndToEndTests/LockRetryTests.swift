import Foundation
import ReleaseKit
import Testing

/// A migration's lock timeouts and retries with a real daemon and real task processes (a
/// migration that prints PostgreSQL's lock-timeout error stands in for one that meets a held
/// lock; the real thing is `LockSafeMigrationTests`): what is retried and what is not, how
/// retries end, and where the attempts are told.
@Suite("lock retries", .serialized)
struct LockRetryTests {
    /// A migrate command that fails with a lock timeout until its `n`th run.
    static func flaky(until n: Int, in dir: TempDir) -> String {
        "c=$(cat \(dir.file("count")) 2>/dev/null || echo 0); c=$((c+1)); echo $c > \(dir.file("count")); "
            + "if [ $c -lt \(n) ]; then echo 'ERROR:  canceling statement due to lock timeout' >&2; exit 1; fi; echo migrated; echo \"PGOPTIONS=$PGOPTIONS\""
    }

    static func app(_ command: String, _ settings: String) throws -> AppFixture {
        let app = try AppFixture()
        try "[tasks.migrate]\ncommand = \(tomlString(command))\n\(settings)".write(toFile: app.dir.file("release.toml"), atomically: true, encoding: .utf8)
        return app
    }

    @Test("a lock timeout is tried again after a backoff until it succeeds; each attempt is in the output, record, status, notify and metrics; PGOPTIONS carries the settings after the app's own")
    func retriedUntilSuccess() async throws {
        let server = try await WebhookServer()
        let work = TempDir()
        let metrics = work.file("metrics.prom")
        let daemon = try await DaemonProcess(arguments: ["--metrics-file", metrics])
        let app = try Self.app(Self.flaky(until: 3, in: work), "lock-timeout = \"2s\"\nstatement-timeout = \"5m\"\nlock-retries = 4\n")
        defer { app.remove(); work.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: [
            "RUN_MIGRATIONS_DURING_RELEASE": "true", "NOTIFY_DURING_RELEASE": "true", "RELEASE_NOTIFY_URL": server.url,
            "PGOPTIONS": "-c search_path=shop -c statement_timeout=1min",
        ])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("-----> migrate hit a lock timeout (canceling statement due to lock timeout); attempt 2 of 5 in 1s"), "\(r)")
        #expect(r.stdout.contains("-----> migrate hit a lock timeout (canceling statement due to lock timeout); attempt 3 of 5 in 2s"), "\(r)")
        // The app's own statement_timeout stands; the lock timeout is added after its options.
        #expect(r.stdout.contains("PGOPTIONS=-c search_path=shop -c statement_timeout=1min -c lock_timeout=2000ms"), "\(r)")
        #expect(r.stdout.contains("migrate ok") && r.stdout.contains("(3 attempts)"), "\(r)")
        let migrate = try #require(try daemon.record(r.lines[0])?.tasks.first { $0.name == "migrate" })
        #expect(migrate.attempts?.map(\.outcome) == ["lock-timeout", "lock-timeout", "succeeded"], "\(migrate)")
        #expect(migrate.attempts?.first?.exitStatus == 1 && migrate.attempts?.first?.reason == "exited with status 1")
        let status = try await daemon.ctl(["status", r.lines[0]])
        #expect(status.stdout.contains("attempts: lock-timeout "), "\(status)")
        let notified = try #require(server.received.first?.json?["tasks"] as? [[String: Any]])
        let attempts = try #require(notified.first { $0["name"] as? String == "migrate" }?["attempts"] as? [[String: Any]])
        #expect(attempts.map { $0["outcome"] as? String } == ["lock-timeout", "lock-timeout", "succeeded"])
        try await eventually("the lock timeouts in the metrics") {
            ((try? String(contentsOfFile: metrics, encoding: .utf8)) ?? "").contains("releasectl_task_lock_timeouts_total{app=\"shop\",task=\"migrate\"} 2")
        }
        let plan = try await daemon.ctl(["plan", "--app", "shop", "--dir", app.path, "--env", "RUN_MIGRATIONS_DURING_RELEASE=true",
                                         "--env", "PGOPTIONS=-c statement_timeout=1min"])
        #expect(plan.stdout.contains("locks: lock-timeout 2s, statement-timeout 5m, lock-retries 4; statement_timeout left as the app's PGOPTIONS sets it; PGOPTIONS is set; this task's database client is not known"), "\(plan)")
        await daemon.cleanUp()
        await server.shutdown()
    }

    @Test("a failure that is not a lock timeout is not retried; retries end with their count, on cancel, and before the task's deadline")
    func retriesEnd() async throws {
        let daemon = try await DaemonProcess()
        let work = TempDir()
        defer { work.remove() }
        let on = ["RUN_MIGRATIONS_DURING_RELEASE": "true"]
        // Another failure: one attempt.
        let other = try Self.app("echo 'ERROR:  relation \"books\" does not exist'; exit 1", "lock-retries = 5\n")
        defer { other.remove() }
        let failed = try await daemon.submitWait(app: "shop", dir: other.path, env: on)
        #expect(failed.status == 1)
        #expect(try daemon.record(failed.lines[0])?.tasks.first { $0.name == "migrate" }?.attempts?.map(\.outcome) == ["failed"])
        #expect(!failed.stdout.contains("hit a lock timeout"))

        // Out of attempts: the reason says so.
        let always = "echo 'PG::LockNotAvailable: ERROR:  canceling statement due to lock timeout'; exit 1"
        let few = try Self.app(always, "lock-retries = 1\n")
        defer { few.remove() }
        let exhausted = try await daemon.submitWait(app: "shop", dir: few.path, env: on)
        #expect(exhausted.status == 1)
        let record = try #require(try daemon.record(exhausted.lines[0]))
        #expect(record.reason == "migrate exited with status 1: a lock timeout on each of 2 attempts (lock-retries 1)", "\(record)")

        // The task's timeout: no attempt starts that could not end before it.
        let short = try Self.app(always, "lock-retries = 10\ntimeout = \"2500ms\"\n")
        defer { short.remove() }
        let timedOut = try await daemon.submitWait(app: "shop", dir: short.path, env: on)
        #expect(timedOut.status == 1)
        let t = try #require(try daemon.record(timedOut.lines[0])?.tasks.first { $0.name == "migrate" })
        #expect(t.attempts?.count == 2 && t.reason?.hasSuffix("a lock timeout, and no time left for another attempt before the task's deadline") == true, "\(t)")

        // A cancel while it waits to try again.
        let long = try Self.app(always, "lock-retries = 10\n")
        defer { long.remove() }
        let id = try await daemon.submit(app: "shop", dir: long.path, env: on)
        try await eventually("the first lock timeout") {
            ((try? String(contentsOfFile: "\(daemon.spoolPath)/logs/\(id).log", encoding: .utf8)) ?? "").contains("hit a lock timeout")
        }
        _ = try await daemon.ctl(["cancel", id])
        let cancelled = try await daemon.waitForRecord(id)
        #expect(cancelled.state == .cancelled)
        let c = try #require(cancelled.tasks.first { $0.name == "migrate" })
        #expect(c.state == .cancelled && c.reason == "the release was cancelled while waiting to try again after a lock timeout", "\(c)")
        #expect((c.attempts?.count ?? 0) < 4, "\(c)")
        await daemon.cleanUp()
    }

    @Test("skip-when-none-pending never trusts a status command that failed: the migration runs")
    func failedStatusIsNoAnswer() async throws {
        let daemon = try await DaemonProcess()
        // Lists every migration as applied, then fails (a second database it cannot reach).
        let fakes = try FakeCommands(["bundle"], exitStatus: ["bundle": 1], output: ["bundle": "   up     20260101000000  Create users"])
        let app = try AppFixture(extraFiles: ["bin/rails": "#!/bin/sh\n", "release.toml": "[tasks.migrate]\nskip-when-none-pending = true\n"])
        defer { app.remove(); fakes.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true", "PATH": fakes.path])
        let migrate = try #require(try daemon.record(r.lines[0])?.tasks.first { $0.name == "migrate" })
        #expect(migrate.state == .failed, "the migration ran (and failed here): \(migrate)")
        #expect(fakes.calls.contains { $0.hasPrefix("bundle [exec] [rails] [db:migrate] ") }, "\(fakes.calls)")
        #expect(r.stdout.contains("gave no list of migrations this daemon can rely on (exited with status 1); the record says nothing of them, and the task runs"), "\(r)")
        #expect(migrate.migrations == nil)
        await daemon.cleanUp()
    }

    @Test("a status command that floods (over 1 MiB, every migration \"up\") is no answer: the migration runs and the record stays small")
    func floodingStatusIsNoAnswer() async throws {
        let daemon = try await DaemonProcess()
        let flood = String(repeating: "   up     20260101000000  Create users\n", count: 40_000)
        let fakes = try FakeCommands(["bundle"], output: ["bundle": flood])
        let app = try AppFixture(extraFiles: ["bin/rails": "#!/bin/sh\n", "release.toml": "[tasks.migrate]\nskip-when-none-pending = true\n"])
        defer { app.remove(); fakes.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true", "PATH": fakes.path])
        #expect(r.status == 0, "\(r)")
        let migrate = try #require(try daemon.record(r.lines[0])?.tasks.first { $0.name == "migrate" })
        #expect(migrate.state == .succeeded && migrate.migrations == nil, "\(migrate)")
        #expect(r.stdout.contains("gave no list of migrations this daemon can rely on (it printed more than 1024 KiB)"), "\(r)")
        let size = try FileManager.default.attributesOfItem(atPath: "\(daemon.spoolPath)/done/\(r.lines[0]).record.json")[.size] as? Int ?? 0
        #expect(size < 64 * 1024, "the record is \(size) bytes")
        await daemon.cleanUp()
    }

    @Test("plan --pending runs the app's code only as the app's user: another user is refused")
    func pendingAsAppUserOnly() async throws {
        guard geteuid() == 0, let paas = try? TestUser.paas() else { return }
        let work = TempDir()
        defer { work.remove() }
        chmod(work.path, 0o755)
        let app = try AppFixture(extraFiles: ["bin/rails": "#!/bin/sh\n"])
        defer { app.remove() }
        chmod(app.path, 0o755)
        let config = work.file("released.toml")
        try "[apps.shop]\nuser = \"rctl-app1\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        chmod(config, 0o644)
        let r = try await paas.run(Binaries.releasectl, ["plan", "--app", "shop", "--dir", app.path, "--pending", "--config", config,
                                                         "--env", "RUN_MIGRATIONS_DURING_RELEASE=true", "--spool", work.file("spool")])
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.contains("--pending boots the app, which runs its code as whoever runs it: run it as the user shop's tasks run as (rctl-app1), or as root"), "\(r)")
    }

    @Test("bad lock settings reject the release naming the key; they belong to migration tasks only")
    func badSettings() async throws {
        let daemon = try await DaemonProcess()
        let cases = [
            ("[tasks.migrate]\nlock-retries = -3\n", "[tasks.migrate] lock-retries must be a whole number from 0 to 100, not -3"),
            ("[tasks.migrate]\nlock-timeout = \"3 days\"\n", "[tasks.migrate] lock-timeout: \"3 days\" is not a duration"),
            ("[tasks.migrate]\nstatement-timeout = 10\n", "[tasks.migrate] statement-timeout must be a duration such as \"1m40s\", not an integer"),
            ("[tasks.seed]\nlock-timeout = \"1s\"\n", "[tasks.seed] lock-timeout is for migration tasks (migrate, post-migrate)"),
            ("[tasks.migrate]\nskip-when-none-pending = \"yes\"\n", "[tasks.migrate] skip-when-none-pending must be true or false, not a string"),
        ]
        for (toml, message) in cases {
            let app = try AppFixture()
            defer { app.remove() }
            try toml.write(toFile: app.dir.file("release.toml"), atomically: true, encoding: .utf8)
            let r = try await daemon.submitWait(app: "shop", dir: app.path)
            #expect(r.status == 2, "\(r)")
            let reason = try daemon.record(r.lines[0])?.reason ?? ""
            #expect(reason.contains(message), "\(message): \(reason)")
        }
        // released.toml's: the daemon refuses the file, naming the key.
        let work = TempDir()
        defer { work.remove() }
        let config = work.file("released.toml")
        try "[apps.shop]\nlock-timeout = \"forever\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let check = try await runProgram(Binaries.released, ["--config", config, "--spool", work.file("spool"), "--log-target", "console"],
                                         timeout: .seconds(30))
        #expect(check.status != 0 && check.stderr.contains("[apps.shop] lock-timeout: \"forever\" is not a duration"), "\(check)")
        await daemon.cleanUp()
    }
}
