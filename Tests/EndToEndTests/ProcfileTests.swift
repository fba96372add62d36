import Foundation
import Glibc
import ReleaseKit
import Testing

/// Heroku/Dokku compatibility: the Procfile's `release:` line runs as the `procfile` task,
/// first, with the gates left to the app's own script.
@Suite("Procfile release: line", .serialized)
struct ProcfileTests {
    /// An app as it ships to Heroku: a Procfile with `release: bash ./release-tasks.sh`.
    static func herokuApp(script: String = echoReleaseTasksScript, procfile: String? = nil, toml: [String: String] = [:],
                          timeouts: [String: String] = [:], railsApp: Bool = false) throws -> AppFixture {
        var files = ["Procfile": procfile ?? "web: bundle exec puma -C config/puma.rb\nrelease: bash ./release-tasks.sh\n",
                     "release-tasks.sh": script]
        if railsApp { files["bin/rails"] = "#!/bin/sh\nexit 0\n" }
        let app = try AppFixture(commands: toml, timeouts: timeouts, extraFiles: files)
        try makeExecutable(app.dir.file("release-tasks.sh"))
        if railsApp { try makeExecutable(app.dir.file("bin/rails")) }
        return app
    }

    @Test("a Procfile-only app runs its release-tasks.sh first; the gates inside the script decide; gated tasks are left to it")
    func classicScript() async throws {
        let daemon = try await DaemonProcess()
        let app = try Self.herokuApp()
        defer { app.remove() }
        let r = try await daemon.submitWait(app: "shop", release: "v12", dir: app.path, env: [
            "RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "false", "CLEAR_CACHE_DURING_RELEASE": "true",
        ])
        #expect(r.status == 0, "\(r)")
        let lines = r.lines.filter { !$0.isEmpty }
        #expect(lines[1] == "-----> shop v12: running procfile", "procfile is the only task that runs: \(r)")
        #expect(lines[2] == "-----> procfile: bash ./release-tasks.sh")
        #expect(Array(lines[3...8]) == [
            "       Running Release Tasks", "       Running Migrations", "       rails db:migrate",
            "       Clearing Rails Cache", "       rails r Rails.cache.clear", "       Done running release-tasks.sh",
        ])
        #expect(lines[9].hasPrefix("-----> procfile succeeded in "))
        // The script ran in the app directory with the request's env: its gates decided.
        #expect(FileManager.default.fileExists(atPath: app.dir.file("migrated")))
        #expect(!FileManager.default.fileExists(atPath: app.dir.file("seeded")))
        #expect(FileManager.default.fileExists(atPath: app.dir.file("cache-cleared")))

        let record = try #require(try daemon.record(r.lines[0]))
        let byName = Dictionary(uniqueKeysWithValues: record.tasks.map { ($0.name, $0) })
        #expect(record.tasks.first { $0.state != .skipped }?.name == "procfile", "the first task to run")
        #expect(byName["procfile"]?.state == .succeeded)
        #expect(byName["procfile"]?.command == ["/bin/sh", "-c", "bash ./release-tasks.sh"])
        #expect(byName["procfile"]?.gate == GateReading(variable: "RUN_PROCFILE_RELEASE", value: nil))
        #expect(byName["migrate"]?.state == .skipped)
        #expect(byName["migrate"]?.reason == "left to the Procfile release: line")
        #expect(byName["cache-clear"]?.reason == "left to the Procfile release: line")
        #expect(byName["seed"]?.reason == "SEED_DB_DURING_RELEASE is off (false)")
        await daemon.cleanUp()
    }

    @Test("the seed's script, unchanged, in a Rails app: bundle runs once per enabled gate — migrations are not run twice")
    func unchangedScriptRailsApp() async throws {
        let daemon = try await DaemonProcess()
        let fakes = try FakeCommands(["bundle"])
        let app = try Self.herokuApp(script: classicReleaseTasksScript, railsApp: true)
        defer { app.remove(); fakes.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: [
            "RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true", "PATH": fakes.path,
        ])
        #expect(r.status == 0, "\(r)")
        #expect(fakes.calls == [
            "bundle [exec] [rails] [db:migrate] @\(app.path)",
            "bundle [exec] [rails] [db:seed] @\(app.path)",
        ], "the Rails preset must not run as well")
        let record = try #require(try daemon.record(r.lines[0]))
        #expect(record.tasks.filter { $0.state == .succeeded }.map(\.name) == ["procfile"])
        await daemon.cleanUp()
    }

    @Test("RUN_PROCFILE_RELEASE=false turns it off: the Rails preset runs instead; plugins lists procfile first")
    func turnedOff() async throws {
        let daemon = try await DaemonProcess()
        let fakes = try FakeCommands(["bundle"])
        let app = try Self.herokuApp(script: classicReleaseTasksScript, railsApp: true)
        defer { app.remove(); fakes.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: [
            "RUN_PROCFILE_RELEASE": "false", "RUN_MIGRATIONS_DURING_RELEASE": "true", "PATH": fakes.path,
        ])
        #expect(r.status == 0, "\(r)")
        #expect(!r.stdout.contains("Running Release Tasks"), "the script must not run")
        #expect(fakes.calls == ["bundle [exec] [rails] [db:migrate:status] @\(app.path)", "bundle [exec] [rails] [db:migrate] @\(app.path)",
                                "bundle [exec] [rails] [db:migrate:status] @\(app.path)"])
        let record = try #require(try daemon.record(r.lines[0]))
        let procfile = try #require(record.tasks.first { $0.name == "procfile" })
        #expect(procfile.state == .skipped)
        #expect(procfile.reason == "RUN_PROCFILE_RELEASE is off (false)")
        #expect(record.tasks.first { $0.name == "migrate" }?.command == ["bundle", "exec", "rails", "db:migrate"])

        let plugins = try await daemon.ctl(["plugins"])
        #expect(plugins.status == 0)
        // Only app.json's predeploy script (Dokku runs it before the release: line) comes first.
        let rows = plugins.lines.dropFirst().prefix(2).map { $0.split(separator: " ").prefix(3).joined(separator: " ") }
        #expect(rows == ["app-json-predeploy predeploy RUN_APP_JSON_PREDEPLOY", "procfile predeploy RUN_PROCFILE_RELEASE"], "\(plugins)")
        let json = try await daemon.ctl(["plugins", "--json"])
        let entries = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]])
        #expect(entries.map { $0["name"] as? String }.prefix(6) == ["app-json-predeploy", "procfile", "migrate", "seed", "cache-clear", "notify"])
        #expect(entries[1]["gate"] as? String == "RUN_PROCFILE_RELEASE")
        #expect(entries.filter { $0["phase"] as? String == "postdeploy" }.map { $0["name"] as? String }
                == ["post-migrate", "app-json-postdeploy", "app-json-first-deploy", "warm-up", "notify-deployed"])
        await daemon.cleanUp()
    }

    @Test("a failing release: line fails the release (exit 1) like any task; notify still reports it")
    func failure() async throws {
        let server = try await WebhookServer()
        let daemon = try await DaemonProcess()
        let app = try Self.herokuApp(script: "#!/bin/bash\necho 'PG::ConnectionBad: could not connect' >&2\nexit 3\n",
                                     toml: ["seed": "echo seeding"])
        defer { app.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: [
            "SEED_DB_DURING_RELEASE": "true", "NOTIFY_DURING_RELEASE": "true", "RELEASE_NOTIFY_URL": server.url,
        ])
        #expect(r.status == 1, "\(r)")
        #expect(r.stdout.contains("       PG::ConnectionBad: could not connect"))
        #expect(!r.stdout.contains("seeding"))
        let record = try #require(try daemon.record(r.lines[0]))
        #expect(record.state == .failed)
        #expect(record.reason == "procfile exited with status 3")
        let byName = Dictionary(uniqueKeysWithValues: record.tasks.map { ($0.name, $0) })
        #expect(byName["procfile"]?.exitStatus == 3)
        #expect(byName["seed"]?.state == .notRun, "a seed command in release.toml still runs after procfile, unless it failed")
        #expect(server.received.first?.json?["reason"] as? String == "procfile exited with status 3")
        await daemon.cleanUp()
        await server.shutdown()
    }

    @Test("a release.toml timeout for procfile applies; a release.toml command for migrate runs after the Procfile line")
    func timeoutAndOrder() async throws {
        let daemon = try await DaemonProcess()
        let trace = TempDir()
        defer { trace.remove() }
        let ordered = try Self.herokuApp(script: "#!/bin/bash\necho procfile >> \(trace.file("order"))\n",
                                         toml: ["migrate": "echo migrate >> \(trace.file("order"))"])
        defer { ordered.remove() }
        let ok = try await daemon.submitWait(app: "shop", dir: ordered.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        #expect(ok.status == 0, "\(ok)")
        #expect(try String(contentsOfFile: trace.file("order"), encoding: .utf8) == "procfile\nmigrate\n")
        let okRecord = try #require(try daemon.record(ok.lines[0]))
        #expect(okRecord.tasks.first { $0.name == "migrate" }?.state == .succeeded, "a command in release.toml is not left to the Procfile")

        let slow = try Self.herokuApp(script: "#!/bin/bash\necho started\nsleep 30\n", timeouts: ["procfile": "300ms"])
        defer { slow.remove() }
        let clock = ContinuousClock()
        let start = clock.now
        let r = try await daemon.submitWait(app: "shop", dir: slow.path)
        #expect(clock.now - start < .seconds(15), "the timeout stops the script (and its sleep)")
        #expect(r.status == 1, "\(r)")
        let record = try #require(try daemon.record(r.lines[0]))
        let procfile = try #require(record.tasks.first { $0.name == "procfile" })
        #expect(procfile.state == .timedOut)
        #expect(record.reason == "procfile timed out after its timeout of 300ms")
        await daemon.cleanUp()
    }

    @Test("no release: line: procfile is off by default, and turning it on fails with a message")
    func noReleaseLine() async throws {
        let daemon = try await DaemonProcess()
        let app = try Self.herokuApp(procfile: "web: bundle exec puma\n# release: commented out\n", toml: ["migrate": "echo migrated"])
        defer { app.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(r.status == 0, "\(r)")
        let record = try #require(try daemon.record(r.lines[0]))
        #expect(record.tasks.first { $0.name == "procfile" }?.reason == "RUN_PROCFILE_RELEASE is off (unset)")
        #expect(record.tasks.first { $0.name == "migrate" }?.state == .succeeded)

        let on = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_PROCFILE_RELEASE": "true"])
        #expect(on.status == 1, "\(on)")
        let failed = try #require(try daemon.record(on.lines[0]))
        #expect(failed.reason == "procfile RUN_PROCFILE_RELEASE is on but \(app.path)/Procfile has no release: line")
        await daemon.cleanUp()
    }

    @Test("a Procfile that is a named pipe rejects the release; it cannot block the daemon")
    func fifoProcfile() async throws {
        let daemon = try await DaemonProcess()
        let app = try AppFixture(commands: ["migrate": "echo migrated"])
        defer { app.remove() }
        #expect(mkfifo(app.dir.file("Procfile"), 0o644) == 0)
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"],
                                            extra: ["--timeout", "20s"])
        #expect(r.status == 2, "\(r)")
        #expect(try daemon.record(r.lines[0])?.reason == "\(app.path)/Procfile is not a regular file")
        #expect(try daemon.record(r.lines[0])?.reasonCode == "procfile")
        #expect(daemon.isRunning)
        await daemon.cleanUp()
    }

    @Test("a Procfile or release.toml the daemon cannot read rejects the release: it never skips a task silently")
    func unreadableAppFiles() async throws {
        let daemon = try await DaemonProcess()
        let app = try AppFixture(commands: ["migrate": "echo migrated"])
        defer { app.remove() }
        // A directory where the file should be: unreadable as a file, whoever the daemon runs as.
        try FileManager.default.createDirectory(atPath: app.dir.file("Procfile"), withIntermediateDirectories: false)
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(r.status == 2, "\(r)")
        #expect(r.stdout.contains("\(app.path)/Procfile is not a regular file"), "\(r)")
        try FileManager.default.removeItem(atPath: app.dir.file("Procfile"))
        let big = String(repeating: "# padding\n", count: 7000)
        try big.write(toFile: app.dir.file("release.toml"), atomically: true, encoding: .utf8)
        let tooBig = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(tooBig.status == 2, "\(tooBig)")
        #expect(tooBig.stdout.contains("release.toml is 70000 bytes, over the limit of 64 KiB"), "\(tooBig)")
        await daemon.cleanUp()
    }
}
