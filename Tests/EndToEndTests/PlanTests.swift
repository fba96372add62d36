import Foundation
import ReleaseKit
import Testing

/// `releasectl plan`: what a release would do, without a daemon and without running anything.
@Suite("releasectl plan")
struct PlanTests {
    /// A Rails app whose release.toml migrates with a command that would leave a trace.
    static func app() throws -> AppFixture {
        let app = try AppFixture(commands: ["migrate": "touch ran-migrate"], timeouts: ["migrate": "15m"],
                                 extraFiles: ["bin/rails": "#!/bin/sh\n"])
        try makeExecutable(app.dir.file("bin/rails"))
        return app
    }

    static func plan(_ app: AppFixture, _ env: [String: String], extra: [String] = [], spool: String? = nil) async throws -> CommandResult {
        var args = ["plan", "--app", "shop", "--dir", app.path]
        for (k, v) in env.sorted(by: { $0.key < $1.key }) { args += ["--env", "\(k)=\(v)"] }
        if let spool { args += ["--spool", spool] }
        return try await releasectl(args + extra)
    }

    @Test("gates on and off: each task, whether it runs, why, the exact command and directory, timeouts, the preset; nothing runs")
    func gatesOnOff() async throws {
        let app = try Self.app()
        let spool = TempDir()
        defer { app.remove(); spool.remove() }
        let r = try await Self.plan(app, ["RUN_MIGRATIONS_DURING_RELEASE": "yes", "SEED_DB_DURING_RELEASE": "off"],
                                    spool: spool.path + "/spool")
        #expect(r.status == 0, "\(r)")
        #expect(r.lines[0] == "shop in \(app.path)")
        #expect(r.stdout.contains("  preset:            rails\n"))
        #expect(r.stdout.contains("  working directory: \(app.path)\n"))
        #expect(r.stdout.contains("  release limit:     1h\n"))
        #expect(r.stdout.contains("""
              skip  app-json-predeploy  RUN_APP_JSON_PREDEPLOY is off (unset)
              skip  procfile            RUN_PROCFILE_RELEASE is off (unset)
              run   migrate             RUN_MIGRATIONS_DURING_RELEASE=yes; command from release.toml
                                        $ /bin/sh -c 'touch ran-migrate'
                                        timeout 15m
              skip  seed                SEED_DB_DURING_RELEASE is off (off)
              skip  cache-clear         CLEAR_CACHE_DURING_RELEASE is off (unset)
              skip  notify              NOTIFY_DURING_RELEASE is off (unset)

            """), "\(r)")
        #expect(!FileManager.default.fileExists(atPath: app.dir.file("ran-migrate")), "plan must not run anything")
        #expect(!FileManager.default.fileExists(atPath: spool.path + "/spool"), "plan must not spool anything")

        // The preset's command for a task release.toml does not name.
        let seed = try await Self.plan(app, ["SEED_DB_DURING_RELEASE": "1"])
        #expect(seed.stdout.contains("""
              run   seed                SEED_DB_DURING_RELEASE=1; command from the rails preset
                                        $ bundle exec rails db:seed

            """), "\(seed)")
    }

    @Test("--json: {app, directory, preset, tasks: [{name, willRun, reason, gate, command, timeout}]}")
    func json() async throws {
        let app = try Self.app()
        defer { app.remove() }
        let r = try await Self.plan(app, ["RUN_MIGRATIONS_DURING_RELEASE": "true", "CLEAR_CACHE_DURING_RELEASE": "true"], extra: ["--json"])
        #expect(r.status == 0, "\(r)")
        let plan = try jsonObject(r.stdout)
        #expect(plan["app"] as? String == "shop")
        #expect(plan["directory"] as? String == app.path)
        #expect(plan["preset"] as? String == "rails")
        let tasks = try #require(plan["tasks"] as? [[String: Any]])
        #expect(tasks.map { $0["name"] as? String } == ["app-json-predeploy", "procfile", "migrate", "seed", "cache-clear", "notify"])
        for task in tasks {
            for key in ["name", "willRun", "reason", "gate", "command", "timeout"] {
                #expect(task.keys.contains(key), "\(key) missing in \(task)")
            }
        }
        let migrate = tasks[2]
        #expect(migrate["willRun"] as? Bool == true)
        #expect(migrate["reason"] as? String == "RUN_MIGRATIONS_DURING_RELEASE=true; command from release.toml")
        #expect(migrate["command"] as? [String] == ["/bin/sh", "-c", "touch ran-migrate"])
        #expect(migrate["timeout"] as? String == "15m")
        let gate = try #require(migrate["gate"] as? [String: Any])
        #expect(gate["variable"] as? String == "RUN_MIGRATIONS_DURING_RELEASE")
        #expect(gate["value"] as? String == "true")
        let cacheClear = tasks[4]
        #expect(cacheClear["command"] as? [String] == ["bundle", "exec", "rails", "r", "Rails.cache.clear"])
        #expect(cacheClear["timeout"] is NSNull)
        let seed = tasks[3]
        #expect(seed["willRun"] as? Bool == false)
        #expect(seed["command"] is NSNull)
        #expect(seed["reason"] as? String == "SEED_DB_DURING_RELEASE is off (unset)")
    }

    @Test("a gate typo: exit 2, naming the variable and value, on stderr; nothing on stdout")
    func typo() async throws {
        let app = try Self.app()
        defer { app.remove() }
        let r = try await Self.plan(app, ["RUN_MIGRATIONS_DURING_RELEASE": "ture"])
        #expect(r.status == 2, "\(r)")
        #expect(r.stdout.isEmpty)
        #expect(r.stderr.contains("the release would be rejected: RUN_MIGRATIONS_DURING_RELEASE=\"ture\" is not a gate value"), "\(r)")
        // --json too: the exit status says it, no half-written JSON.
        let j = try await Self.plan(app, ["SEED_DB_DURING_RELEASE": "enabled"], extra: ["--json"])
        #expect(j.status == 2 && j.stdout.isEmpty, "\(j)")
        // A misspelt gate name switched on rejects: the migration it meant would be skipped.
        let misspelt = try await Self.plan(app, ["RUN_MIGRATION_DURING_RELEASE": "true"])
        #expect(misspelt.status == 2 && misspelt.stdout.isEmpty, "\(misspelt)")
        #expect(misspelt.stderr.contains("RUN_MIGRATION_DURING_RELEASE=\"true\" looks like a misspelling of RUN_MIGRATIONS_DURING_RELEASE"), "\(misspelt)")
        // Switched off, it is only a warning.
        let near = try await Self.plan(app, ["RUN_MIGRATION_DURING_RELEASE": "false"])
        #expect(near.status == 0, "\(near)")
        #expect(near.stdout.contains("warning: RUN_MIGRATION_DURING_RELEASE looks like RUN_MIGRATIONS_DURING_RELEASE"))
        #expect(near.stdout.contains("skip  migrate             RUN_MIGRATIONS_DURING_RELEASE is off (unset)"))
    }

    @Test("other rejections exit 2 too: a missing directory, a malformed release.toml, an unknown --task")
    func rejections() async throws {
        let missing = try await releasectl(["plan", "--app", "shop", "--dir", "/nonexistent/shop/v1"])
        #expect(missing.status == 2, "\(missing)")
        #expect(missing.stderr.contains("/nonexistent/shop/v1"))

        let bad = try AppFixture(extraFiles: ["release.toml": "[tasks.migrate]\ncommand = \"\"\n"])
        defer { bad.remove() }
        let r = try await releasectl(["plan", "--app", "shop", "--dir", bad.path])
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.contains("\(bad.path)/release.toml: [tasks.migrate] command is empty"), "\(r)")

        let task = try await releasectl(["plan", "--app", "shop", "--dir", bad.path, "--task", "deploy"])
        #expect(task.status == 2, "\(task)")
        #expect(task.stderr.contains("unknown task"))
    }

    @Test("--env-file and --task are read as submit reads them; secrets are masked in commands")
    func envFileAndTasks() async throws {
        let app = try AppFixture(commands: ["migrate": "DATABASE_URL=postgres://app:hunter2@db/shop ./migrate", "seed": "./seed"])
        let files = TempDir()
        defer { app.remove(); files.remove() }
        try "# shop\nexport RUN_MIGRATIONS_DURING_RELEASE=true\nSEED_DB_DURING_RELEASE='true'\nDATABASE_URL=postgres://app:hunter2@db/shop\n"
            .write(toFile: files.file("shop.env"), atomically: true, encoding: .utf8)
        let r = try await releasectl(["plan", "--app", "shop", "--dir", app.path, "--env-file", files.file("shop.env"),
                                      "--env", "SEED_DB_DURING_RELEASE=false", "--task", "migrate", "--task", "seed"])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("run   migrate             RUN_MIGRATIONS_DURING_RELEASE=true; command from release.toml"))
        #expect(r.stdout.contains("skip  seed                SEED_DB_DURING_RELEASE is off (false)"), "--env wins over --env-file")
        #expect(r.stdout.contains("skip  cache-clear         not requested (tasks: migrate, seed)"))
        #expect(!r.stdout.contains("hunter2"), "\(r)")
        #expect(r.stdout.contains("***"))
    }

    @Test("a task that will fail is shown as FAIL with what to add to release.toml, and plan exits 1")
    func noCommand() async throws {
        let app = try AppFixture(extraFiles: ["README": "no framework here"])
        defer { app.remove() }
        let r = try await releasectl(["plan", "--app", "shop", "--dir", app.path, "--env", "RUN_MIGRATIONS_DURING_RELEASE=on"])
        #expect(r.status == 1, "\(r)")
        #expect(r.stderr == "releasectl: the release would fail: migrate cannot succeed (marked FAIL)\n", "\(r)")
        #expect(r.stdout.contains("  preset:            none detected\n"))
        #expect(r.stdout.contains("FAIL  migrate             RUN_MIGRATIONS_DURING_RELEASE=on; no command\n"), "\(r)")
        #expect(r.stdout.contains("will fail: no command for migrate in this app: add [tasks.migrate] command = \"…\" to \(app.path)/release.toml"))
    }

    @Test("notify: where it will post (scheme and host only), signed or not; a missing URL is called out")
    func notify() async throws {
        let app = try AppFixture()
        defer { app.remove() }
        let r = try await releasectl(["plan", "--app", "shop", "--dir", app.path, "--env", "NOTIFY_DURING_RELEASE=true",
                                      "--env", "RELEASE_NOTIFY_URL=https://hooks.slack.com/services/T0/B0/XYZ,http://10.0.0.5:8080/h",
                                      "--env", "RELEASE_NOTIFY_SECRET=k", "--env", "RELEASE_NOTIFY_TIMEOUT=3s"])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("""
              run   notify              NOTIFY_DURING_RELEASE=true
                                        POST to https://hooks.slack.com/…, http://10.0.0.5:8080/…, signed (X-Releasectl-Signature), 3s per request

            """), "\(r)")
        #expect(!r.stdout.contains("XYZ"), "webhook paths are secrets")
        let missing = try await releasectl(["plan", "--app", "shop", "--dir", app.path, "--env", "NOTIFY_DURING_RELEASE=true"])
        #expect(missing.stdout.contains("will fail: RELEASE_NOTIFY_URL is not set"), "\(missing)")
    }
}
