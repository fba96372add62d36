import Foundation
import ReleaseKit
import ReleasePlugins
import Testing

/// What a release will do, decided before anything runs: gates, the tasks filter, where each
/// command comes from, the Procfile's release: line, and problems that fail a task.
@Suite("release plans")
struct ReleasePlanTests {
    static let dir = "/srv/apps/shop/v42"

    static func plan(env: [String: String] = [:], tasks: [String]? = nil, config: AppConfig = AppConfig(),
                     procfile: String? = nil, preset: Preset? = nil) throws(RejectReason) -> ReleasePlan {
        let inspection = AppInspection(directory: dir, config: config, procfileRelease: procfile, preset: preset)
        return try ReleasePlan.make(app: "shop", directory: dir, env: env, tasks: tasks, registry: Registry.tasks,
                                    inspection: inspection)
    }

    static func step(_ plan: ReleasePlan, _ name: String) throws -> ReleasePlan.Step {
        try #require(plan.steps.first { $0.name == name })
    }

    static func config(_ commands: [String: Command], timeouts: [String: Duration] = [:]) -> AppConfig {
        var c = AppConfig()
        for name in Set(commands.keys).union(timeouts.keys) {
            c.tasks[name] = AppConfig.TaskSettings(command: commands[name], timeout: timeouts[name])
        }
        return c
    }

    // MARK: Gates

    @Test("every task appears once, in the registry's order, whatever runs")
    func stepsInOrder() throws {
        let p = try Self.plan()
        #expect(p.steps.map(\.name) == ["app-json-predeploy", "procfile", "migrate", "seed", "cache-clear", "notify"])
        #expect(p.steps.allSatisfy { !$0.willRun })
        #expect(p.app == "shop" && p.directory == Self.dir && p.preset == nil && p.warnings.isEmpty)
        #expect(try !Self.step(p, "notify").failureFailsRelease)
    }

    @Test("gate unset: skipped, saying so, with the gate reading recorded")
    func gateUnset() throws {
        let migrate = try Self.step(Self.plan(preset: .rails), "migrate")
        #expect(!migrate.willRun)
        #expect(migrate.reason == "RUN_MIGRATIONS_DURING_RELEASE is off (unset)")
        #expect(migrate.gate == GateReading(variable: "RUN_MIGRATIONS_DURING_RELEASE", value: nil))
        #expect(migrate.command == nil)
        #expect(migrate.problem == nil)
    }

    @Test("gate off: skipped with the value as written", arguments: ["false", "0", " NO ", "", "off"])
    func gateOff(_ value: String) throws {
        let seed = try Self.step(Self.plan(env: ["SEED_DB_DURING_RELEASE": value], preset: .rails), "seed")
        #expect(!seed.willRun)
        #expect(seed.reason == "SEED_DB_DURING_RELEASE is off (\(value))")
        #expect(seed.gate.value == value)
    }

    @Test("gate on: runs, with the variable and value in the reason", arguments: ["true", "1", "YES", " on "])
    func gateOn(_ value: String) throws {
        let seed = try Self.step(Self.plan(env: ["SEED_DB_DURING_RELEASE": value], preset: .rails), "seed")
        #expect(seed.willRun)
        #expect(seed.reason == "SEED_DB_DURING_RELEASE=\(value); command from the rails preset")
        #expect(seed.command == .argv(["bundle", "exec", "rails", "db:seed"]))
    }

    @Test("a gate value that is neither on nor off rejects the whole plan, even for a task not requested")
    func gateTypoRejects() {
        let error = #expect(throws: RejectReason.self) {
            try Self.plan(env: ["CLEAR_CACHE_DURING_RELEASE": "enabled"], tasks: ["migrate"])
        }
        #expect(error?.code == .gate)
        #expect(error?.message.hasPrefix(#"CLEAR_CACHE_DURING_RELEASE="enabled" is not a gate value"#) == true)
        let required = #expect(throws: RejectReason.self) { try Self.plan(env: ["RELEASE_NOTIFY_REQUIRED": "sure"]) }
        #expect(required?.message.hasPrefix(#"RELEASE_NOTIFY_REQUIRED="sure""#) == true)
    }

    // MARK: Where commands come from

    @Test("release.toml's command wins over a preset, with its timeout")
    func releaseTomlWins() throws {
        let config = Self.config(["migrate": .argv(["bin/migrate", "--all"])], timeouts: ["migrate": .seconds(900)])
        let migrate = try Self.step(Self.plan(env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"], config: config, preset: .rails), "migrate")
        #expect(migrate.willRun)
        #expect(migrate.command == .argv(["bin/migrate", "--all"]))
        #expect(migrate.reason == "RUN_MIGRATIONS_DURING_RELEASE=true; command from release.toml")
        #expect(migrate.timeout == .seconds(900))
    }

    @Test("with no release.toml command, the preset's", arguments: [
        (Preset.rails, "migrate", Command.argv(["bundle", "exec", "rails", "db:migrate"])),
        (Preset.rails, "cache-clear", Command.argv(["bundle", "exec", "rails", "r", "Rails.cache.clear"])),
        (Preset.laravel, "seed", Command.argv(["php", "artisan", "db:seed", "--force"])),
        (Preset.django(python: "python3"), "migrate", Command.argv(["python3", "manage.py", "migrate", "--noinput"])),
    ])
    func presetCommand(_ preset: Preset, _ task: String, _ command: Command) throws {
        let gate = Registry.tasks.first { $0.name == task }!.gate
        let p = try Self.plan(env: [gate: "true"], preset: preset)
        let step = try Self.step(p, task)
        #expect(step.willRun)
        #expect(step.command == command)
        #expect(step.reason == "\(gate)=true; command from the \(preset.name) preset")
        #expect(p.preset == preset.name)
    }

    @Test("gate on with no command anywhere: the task runs to fail, with a problem saying what to add to release.toml")
    func gateOnNoCommand() throws {
        let p = try Self.plan(env: ["RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "yes"], preset: .django(python: "python"))
        let migrate = try Self.step(p, "migrate")
        #expect(migrate.willRun && migrate.problem == nil, "django has a migrate command")
        let seed = try Self.step(p, "seed")
        #expect(seed.willRun)
        #expect(seed.command == nil)
        #expect(seed.problem == "no command for seed in this app: add [tasks.seed] command = \"…\" to \(Self.dir)/release.toml")
        let bare = try Self.step(Self.plan(env: ["CLEAR_CACHE_DURING_RELEASE": "1"]), "cache-clear")
        #expect(bare.problem?.contains("[tasks.cache-clear]") == true)
        #expect(bare.problem?.hasSuffix("\(Self.dir)/release.toml") == true)
    }

    @Test("a task without a command (notify) runs on its gate alone")
    func commandlessTask() throws {
        let notify = try Self.step(Self.plan(env: ["NOTIFY_DURING_RELEASE": "true"]), "notify")
        #expect(notify.willRun)
        #expect(notify.command == nil)
        #expect(notify.problem == "RELEASE_NOTIFY_URL is not set", "known to fail without a URL")
        let withURL = try Self.step(Self.plan(env: ["NOTIFY_DURING_RELEASE": "true", "RELEASE_NOTIFY_URL": "https://hooks.example.com/x"]), "notify")
        #expect(withURL.willRun && withURL.problem == nil)
        #expect(notify.reason == "NOTIFY_DURING_RELEASE=true")
    }

    @Test("RELEASE_NOTIFY_REQUIRED makes a notify failure fail the release")
    func notifyRequired() throws {
        #expect(try Self.step(Self.plan(env: ["RELEASE_NOTIFY_REQUIRED": "true"]), "notify").failureFailsRelease)
        #expect(try !Self.step(Self.plan(env: ["RELEASE_NOTIFY_REQUIRED": "false"]), "notify").failureFailsRelease)
        #expect(try !Self.step(Self.plan(), "notify").failureFailsRelease)
        #expect(try Self.step(Self.plan(), "migrate").failureFailsRelease, "any other task's failure fails the release")
    }

    // MARK: The tasks filter

    @Test("tasks narrows the set; gates still apply within it")
    func tasksFilter() throws {
        let env = ["RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true"]
        let p = try Self.plan(env: env, tasks: ["seed", "cache-clear"], preset: .rails)
        let migrate = try Self.step(p, "migrate")
        #expect(!migrate.willRun)
        #expect(migrate.reason == "not requested (tasks: seed, cache-clear)")
        #expect(try Self.step(p, "seed").willRun)
        let cache = try Self.step(p, "cache-clear")
        #expect(!cache.willRun, "requested but its gate is unset")
        #expect(cache.reason == "CLEAR_CACHE_DURING_RELEASE is off (unset)")
        #expect(try Self.plan(env: env, tasks: [], preset: .rails).steps.allSatisfy { !$0.willRun }, "an empty list runs nothing")
    }

    @Test("an unknown task in tasks rejects, naming it and the known ones")
    func unknownTask() {
        let error = #expect(throws: RejectReason.self) { try Self.plan(tasks: ["migrate", "deploy"]) }
        #expect(error?.code == .unknownTask)
        #expect(error?.message == #"unknown task "deploy" (known: app-json-predeploy, procfile, migrate, seed, cache-clear, notify, post-migrate, app-json-postdeploy, app-json-first-deploy, warm-up, notify-deployed)"#)
    }

    // MARK: The Procfile's release: line

    @Test("a Procfile release: line runs by default, from the Procfile")
    func procfileOnByDefault() throws {
        let p = try Self.plan(procfile: "bash release-tasks.sh", preset: .rails)
        let procfile = try Self.step(p, "procfile")
        #expect(procfile.willRun)
        #expect(procfile.command == .shell("bash release-tasks.sh"))
        #expect(procfile.reason == "on by default; command from the Procfile release: line")
    }

    @Test("while the Procfile runs, gated tasks without a release.toml command are left to it (no preset)")
    func leftToProcfile() throws {
        let env = ["RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true", "NOTIFY_DURING_RELEASE": "true"]
        let config = Self.config(["seed": .shell("rake db:seed")])
        let p = try Self.plan(env: env, config: config, procfile: "bash release-tasks.sh", preset: .rails)
        let migrate = try Self.step(p, "migrate")
        #expect(!migrate.willRun)
        #expect(migrate.leftTo == "procfile")
        #expect(migrate.reason == "left to the Procfile release: line")
        #expect(migrate.command == nil)
        let seed = try Self.step(p, "seed")
        #expect(seed.willRun && seed.command == .shell("rake db:seed"), "a release.toml command still runs")
        #expect(try Self.step(p, "notify").willRun, "notify needs no command, so it is not left to the Procfile")
        #expect(try Self.step(p, "cache-clear").leftTo == nil, "a task whose gate is off is just off")
        // With no gate on and no preset, a missing command is left to the Procfile, not a problem.
        let bare = try Self.step(Self.plan(env: ["CLEAR_CACHE_DURING_RELEASE": "1"], procfile: "./release.sh"), "cache-clear")
        #expect(bare.leftTo == "procfile" && bare.problem == nil)
    }

    @Test("RUN_PROCFILE_RELEASE=false turns the Procfile off, and the preset is used again")
    func procfileOff() throws {
        let p = try Self.plan(env: ["RUN_PROCFILE_RELEASE": "false", "RUN_MIGRATIONS_DURING_RELEASE": "true"],
                              procfile: "bash release-tasks.sh", preset: .rails)
        let procfile = try Self.step(p, "procfile")
        #expect(!procfile.willRun)
        #expect(procfile.reason == "RUN_PROCFILE_RELEASE is off (false)")
        let migrate = try Self.step(p, "migrate")
        #expect(migrate.willRun && migrate.leftTo == nil)
        #expect(migrate.command == .argv(["bundle", "exec", "rails", "db:migrate"]))
    }

    @Test("a tasks list without procfile does not leave anything to it")
    func procfileNotRequested() throws {
        let p = try Self.plan(env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"], tasks: ["migrate"], procfile: "bash r.sh", preset: .rails)
        #expect(try Self.step(p, "procfile").reason == "not requested (tasks: migrate)")
        #expect(try Self.step(p, "migrate").command == .argv(["bundle", "exec", "rails", "db:migrate"]))
    }

    @Test("RUN_PROCFILE_RELEASE on without a release: line: a problem naming the Procfile")
    func procfileOnWithoutLine() throws {
        let p = try Self.plan(env: ["RUN_PROCFILE_RELEASE": "true", "RUN_MIGRATIONS_DURING_RELEASE": "true"], preset: .rails)
        let procfile = try Self.step(p, "procfile")
        #expect(procfile.willRun)
        #expect(procfile.problem == "RUN_PROCFILE_RELEASE is on but \(Self.dir)/Procfile has no release: line")
        #expect(try Self.step(p, "migrate").command != nil, "nothing is left to a Procfile line that does not exist")
    }

    @Test("release: lines are found among other process types; comments and blanks ignored", arguments: [
        ("web: bundle exec puma\nrelease: bash release-tasks.sh\n", "bash release-tasks.sh"),
        ("# release: not this\nrelease:   ./bin/release  \r\nworker: sidekiq", "./bin/release"),
        ("  release : rake db:migrate", "rake db:migrate"),
        ("release: echo a: b", "echo a: b"),
    ])
    func procfileLines(_ text: String, _ command: String) {
        #expect(Procfile.releaseCommand(in: text) == command)
    }

    @Test("a Procfile without a (non-empty) release: line has none",
          arguments: ["web: puma", "", "release:", "release:   ", "releases: x", "# release: x", "prerelease: x"])
    func procfileWithoutRelease(_ text: String) {
        #expect(Procfile.releaseCommand(in: text) == nil)
    }

    // MARK: Warnings and JSON

    @Test("near-miss gate names become warnings; known variables do not")
    func warnings() throws {
        let p = try Self.plan(env: ["RUN_MIGRATION_DURING_RELEASE": "false", "RELEASE_NOTIFY_URL": "http://x", "RELEASE_NOTIFY_REQUIRE": ""])
        #expect(p.warnings == ["RELEASE_NOTIFY_REQUIRE looks like RELEASE_NOTIFY_REQUIRED",
                               "RUN_MIGRATION_DURING_RELEASE looks like RUN_MIGRATIONS_DURING_RELEASE"])
        #expect(try !Self.step(p, "migrate").willRun, "the misspelt gate turns nothing on")
    }

    @Test("a misspelt gate name switched on (or to no gate value) rejects, naming it and the gate it resembles",
          arguments: ["true", "1", " YES ", "on", "ture", "enabled"])
    func misspeltGateOn(_ value: String) {
        #expect {
            try Self.plan(env: ["RUN_MIGRATION_DURING_RELEASE": value])
        } throws: { error in
            let message = (error as? RejectReason)?.message ?? ""
            return (error as? RejectReason)?.code == .gate && message.contains("RUN_MIGRATION_DURING_RELEASE=")
                && message.contains("looks like a misspelling of RUN_MIGRATIONS_DURING_RELEASE")
        }
        // With the gate itself set as well, the look-alike decides nothing: a warning.
        let both = try? Self.plan(env: ["RUN_MIGRATION_DURING_RELEASE": value, "RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(both?.warnings == ["RUN_MIGRATION_DURING_RELEASE looks like RUN_MIGRATIONS_DURING_RELEASE"])
    }

    // MARK: Reading the app directory

    @Test("inspect reads release.toml, the Procfile's release: line and the preset from a real directory")
    func inspectDirectory() throws {
        let dir = try TempFolder()
        defer { dir.remove() }
        try dir.write("release.toml", "[tasks.seed]\ncommand = [\"bin/seed\"]\n")
        try dir.write("Procfile", "web: puma\nrelease: ./release.sh\n")
        try dir.write("Gemfile", "source 'https://rubygems.org'\ngem 'rails', '~> 8.0'\n")
        let inspection = try AppInspection.inspect(directory: dir.path, path: "/usr/bin:/bin", registry: Registry.tasks)
        #expect(inspection.config.tasks["seed"]?.command == .argv(["bin/seed"]))
        #expect(inspection.procfileRelease == "./release.sh")
        #expect(inspection.preset == .rails)
    }

    @Test("inspect rejects a malformed release.toml naming the file", arguments: [
        ("[tasks.deploy]\ncommand = \"x\"\n", "unknown task \"deploy\""),
        ("[tasks.notify]\ncommand = \"x\"\n", "[tasks.notify] takes no command"),
        ("[tasks.migrate\n", "line 1: "),
    ])
    func inspectRejects(_ toml: String, _ problem: String) throws {
        let dir = try TempFolder()
        defer { dir.remove() }
        try dir.write("release.toml", toml)
        let error = #expect(throws: RejectReason.self) {
            try AppInspection.inspect(directory: dir.path, path: "/usr/bin:/bin", registry: Registry.tasks)
        }
        #expect(error?.code == .appConfig)
        #expect(error?.message.hasPrefix("\(dir.path)/release.toml: ") == true, "\(String(describing: error))")
        #expect(error?.message.contains(problem) == true, "\(String(describing: error))")
    }

    @Test("presets are detected from the app's files", arguments: [
        (["bin/rails": "#!/bin/sh\n"], "rails"),
        (["Gemfile": "gem \"rails\"\n"], "rails"),
        (["Gemfile": "gem 'sinatra'\n"], nil),
        (["manage.py": ""], "django"),
        (["artisan": ""], "laravel"),
        (["mix.exs": "{:ecto_sql, \"~> 3.0\"}"], "phoenix"),
        (["mix.exs": "{:plug, \"~> 1.0\"}"], nil),
        (["prisma/schema.prisma": ""], "prisma"),
        ([:], nil),
    ] as [([String: String], String?)])
    func presetDetection(_ files: [String: String], _ preset: String?) throws {
        let dir = try TempFolder()
        defer { dir.remove() }
        for (name, content) in files { try dir.write(name, content) }
        #expect(try Preset.detect(in: AppDirectory.open(dir.path), path: "/usr/bin:/bin")?.name == preset)
    }

    @Test("the Django preset runs python from the task's PATH if there is one, else python3")
    func djangoPython() throws {
        let dir = try TempFolder()
        defer { dir.remove() }
        try dir.write("manage.py", "")
        try dir.write("bin/python", "#!/bin/sh\n", executable: true)
        let withPython = try Preset.detect(in: AppDirectory.open(dir.path), path: dir.path + "/bin")
        #expect(MigrateTask.defaultCommand(in: AppInspection(directory: dir.path, preset: withPython)) == .argv(["python", "manage.py", "migrate", "--noinput"]))
        let without = try Preset.detect(in: AppDirectory.open(dir.path), path: dir.path + "/nowhere")
        #expect(MigrateTask.defaultCommand(in: AppInspection(directory: dir.path, preset: without)) == .argv(["python3", "manage.py", "migrate", "--noinput"]))
    }
}

/// A temporary folder for tests that read an app directory.
struct TempFolder {
    let path: String

    init() throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("releasekit-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ content: String, executable: Bool = false) throws {
        let file = path + "/" + name
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try content.write(toFile: file, atomically: true, encoding: .utf8)
        if executable { try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: file) }
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}
