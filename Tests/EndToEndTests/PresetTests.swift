import Foundation
import ReleaseKit
import Testing

/// Framework presets: detected from the app directory when release.toml names no command, and
/// run for real — fake `bundle`, `python`, `php`, `mix`, `npx` on the request's PATH record the
/// exact argv and working directory they were called with.
@Suite("framework presets", .serialized)
struct PresetTests {
    struct Case: Sendable, CustomTestStringConvertible {
        var preset: String
        /// The sample tree: path → contents (paths under bin/ are made executable).
        var files: [String: String]
        var fakes: [String]
        /// The gates to turn on, and the tasks' calls expected, in order.
        var gates: [String]
        var calls: [String]
        /// The framework's migration status command, run before and after migrate (the
        /// record's `migrations`).
        var status: String
        var testDescription: String { preset }

        /// Every call expected: migrate's (the first) between its status before and after.
        var allCalls: [String] { [status, calls[0], status] + calls.dropFirst() }
    }

    static let allGates = ["RUN_MIGRATIONS_DURING_RELEASE", "SEED_DB_DURING_RELEASE", "CLEAR_CACHE_DURING_RELEASE"]

    static let cases: [Case] = [
        Case(preset: "rails", files: ["bin/rails": "#!/bin/sh\n", "Gemfile": "source 'https://rubygems.org'\n", "config.ru": ""],
             fakes: ["bundle"], gates: allGates,
             calls: ["bundle [exec] [rails] [db:migrate]", "bundle [exec] [rails] [db:seed]", "bundle [exec] [rails] [r] [Rails.cache.clear]"],
             status: "bundle [exec] [rails] [db:migrate:status]"),
        Case(preset: "rails", files: ["Gemfile": "source 'https://rubygems.org'\ngem \"rails\", \"~> 7.1\"\n"],
             fakes: ["bundle"], gates: ["RUN_MIGRATIONS_DURING_RELEASE"], calls: ["bundle [exec] [rails] [db:migrate]"],
             status: "bundle [exec] [rails] [db:migrate:status]"),
        Case(preset: "django", files: ["manage.py": "import sys\n", "mysite/settings.py": ""],
             fakes: ["python", "python3"], gates: ["RUN_MIGRATIONS_DURING_RELEASE"],
             calls: ["python [manage.py] [migrate] [--noinput]"], status: "python [manage.py] [showmigrations] [--plan]"),
        Case(preset: "django", files: ["manage.py": "import sys\n"],
             fakes: ["python3"], gates: ["RUN_MIGRATIONS_DURING_RELEASE"],
             calls: ["python3 [manage.py] [migrate] [--noinput]"], status: "python3 [manage.py] [showmigrations] [--plan]"),
        Case(preset: "laravel", files: ["artisan": "<?php\n", "composer.json": "{}"],
             fakes: ["php"], gates: allGates,
             calls: ["php [artisan] [migrate] [--force]", "php [artisan] [db:seed] [--force]", "php [artisan] [cache:clear]"],
             status: "php [artisan] [migrate:status]"),
        Case(preset: "phoenix", files: ["mix.exs": "defp deps do\n  [{:phoenix, \"~> 1.7\"}, {:ecto_sql, \"~> 3.10\"}]\nend\n"],
             fakes: ["mix"], gates: ["RUN_MIGRATIONS_DURING_RELEASE"], calls: ["mix [ecto.migrate]"], status: "mix [ecto.migrations]"),
        Case(preset: "prisma", files: ["package.json": "{}", "prisma/schema.prisma": "datasource db { provider = \"postgresql\" }\n"],
             fakes: ["npx"], gates: ["RUN_MIGRATIONS_DURING_RELEASE"], calls: ["npx [prisma] [migrate] [deploy]"],
             status: "npx [prisma] [migrate] [status]"),
    ]

    @Test("each preset is detected from a sample tree and its exact commands run", arguments: cases)
    func detectedAndRun(_ c: Case) async throws {
        let daemon = try await DaemonProcess()
        let app = try AppFixture(extraFiles: c.files)
        let fakes = try FakeCommands(c.fakes)
        defer { app.remove(); fakes.remove() }
        for name in c.files.keys where name.hasPrefix("bin/") { try makeExecutable(app.dir.file(name)) }
        // Only the fakes on PATH: the Django case without `python` must fall back to python3.
        var env = ["PATH": fakes.bin]
        for gate in c.gates { env[gate] = "true" }

        let plan = try await daemon.ctl(["plan", "--app", "shop", "--dir", app.path, "--json"] + env.sorted { $0.key < $1.key }.flatMap { ["--env", "\($0.key)=\($0.value)"] })
        #expect(plan.status == 0, "\(plan)")
        #expect(try jsonObject(plan.stdout)["preset"] as? String == c.preset)

        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: env)
        #expect(r.status == 0, "\(r)")
        #expect(fakes.calls == c.allCalls.map { "\($0) @\(app.path)" })
        let record = try #require(try daemon.record(r.lines[0]))
        // The record names the same commands (argv), in the same order.
        let recorded = record.tasks.filter { $0.state == .succeeded }.compactMap { $0.command?.joined(separator: " ") }
        #expect(recorded == c.calls.map { $0.replacingOccurrences(of: "[", with: "").replacingOccurrences(of: "]", with: "") })
        await daemon.cleanUp()
    }

    @Test("a preset command that fails fails the release with its exit status")
    func presetFailure() async throws {
        let daemon = try await DaemonProcess()
        let app = try AppFixture(extraFiles: ["bin/rails": "#!/bin/sh\n"])
        let fakes = try FakeCommands(["bundle"], exitStatus: ["bundle": 1], output: ["bundle": "ActiveRecord::PendingMigrationError"])
        defer { app.remove(); fakes.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: [
            "RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true", "PATH": fakes.path,
        ])
        #expect(r.status == 1, "\(r)")
        #expect(r.stdout.contains("       ActiveRecord::PendingMigrationError"))
        // The migration status before and after migrate, and migrate: seed does not run.
        #expect(fakes.calls.map { $0.split(separator: " ").prefix(3).joined(separator: " ") }
                == ["bundle [exec] [rails]", "bundle [exec] [rails]", "bundle [exec] [rails]"], "\(fakes.calls)")
        #expect(!fakes.calls.contains { $0.contains("db:seed") }, "seed does not run after migrate failed")
        #expect(try daemon.record(r.lines[0])?.reason == "migrate exited with status 1")
        await daemon.cleanUp()
    }

    @Test("release.toml wins over the preset, task by task")
    func releaseTomlWins() async throws {
        let daemon = try await DaemonProcess()
        let app = try AppFixture(argv: ["migrate": ["bundle", "exec", "rake", "db:migrate:with_data"]],
                                 extraFiles: ["bin/rails": "#!/bin/sh\n"])
        let fakes = try FakeCommands(["bundle"])
        defer { app.remove(); fakes.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: [
            "RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true", "PATH": fakes.path,
        ])
        #expect(r.status == 0, "\(r)")
        // (The Rails preset still reads the migration status around migrate.)
        #expect(fakes.calls == ["bundle [exec] [rails] [db:migrate:status] @\(app.path)", "bundle [exec] [rake] [db:migrate:with_data] @\(app.path)",
                                "bundle [exec] [rails] [db:migrate:status] @\(app.path)", "bundle [exec] [rails] [db:seed] @\(app.path)"])
        await daemon.cleanUp()
    }

    @Test("no preset and no release.toml command: a task whose gate is on fails, saying what to add to release.toml")
    func noCommand() async throws {
        let daemon = try await DaemonProcess()
        // mix.exs without ecto is not a Phoenix app with a database.
        let app = try AppFixture(extraFiles: ["mix.exs": "defp deps do\n  [{:plug, \"~> 1.0\"}]\nend\n", "README": "hi"])
        defer { app.remove() }
        let plan = try await daemon.ctl(["plan", "--app", "shop", "--dir", app.path, "--env", "RUN_MIGRATIONS_DURING_RELEASE=true", "--json"])
        #expect(plan.status == 1, "plan says the release would fail: \(plan)")
        let json = try jsonObject(plan.stdout)
        #expect(json["preset"] is NSNull, "preset is present and null: \(plan.stdout)")
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(r.status == 1, "\(r)")
        let message = "no command for migrate in this app: add [tasks.migrate] command = \"…\" to \(app.path)/release.toml"
        #expect(r.stdout.contains(message), "\(r)")
        let record = try #require(try daemon.record(r.lines[0]))
        #expect(record.reason == "migrate \(message)")
        #expect(record.tasks.first { $0.name == "migrate" }?.state == .failed)
        await daemon.cleanUp()
    }
}
