import Foundation
import ReleaseKit
import Testing

/// The whole path a PaaS release hook uses: real `released`, real `releasectl`, real task
/// processes, a real HTTP server for notify.
@Suite("release flow", .serialized)
struct ReleaseFlowTests {
    @Test("each gate value form turns a task on or off; unset is off")
    func gateValueForms() async throws {
        let daemon = try await DaemonProcess()
        let app = try AppFixture(commands: ["migrate": "echo migrated"])
        defer { app.remove() }
        let on = ["true", "TRUE", " yes ", "1", "on", "On", "\tYES\t"]
        let off = ["false", "0", "no", "off", "", " Off ", "FALSE"]
        for value in on + off {
            let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": value])
            #expect(r.status == 0, "\(value.debugDescription): \(r)")
            let id = r.lines[0]
            let record = try #require(try daemon.record(id))
            let migrate = try #require(record.tasks.first { $0.name == "migrate" })
            if on.contains(value) {
                #expect(migrate.state == .succeeded, "\(value.debugDescription) should turn migrate on")
                #expect(r.stdout.contains("       migrated"))
            } else {
                #expect(migrate.state == .skipped, "\(value.debugDescription) should turn migrate off")
                #expect(migrate.reason == "RUN_MIGRATIONS_DURING_RELEASE is off (\(value))")
            }
        }
        let unset = try await daemon.submitWait(app: "shop", dir: app.path)
        #expect(unset.status == 0)
        let record = try #require(try daemon.record(unset.lines[0]))
        #expect(record.tasks.first { $0.name == "migrate" }?.reason == "RUN_MIGRATIONS_DURING_RELEASE is off (unset)")
        await daemon.cleanUp()
    }

    @Test("tasks run in order migrate → seed → cache-clear → notify, and notify posts the outcome")
    func canonicalOrderAndNotify() async throws {
        let server = try await WebhookServer()
        let daemon = try await DaemonProcess()
        let trace = TempDir()
        let log = trace.file("trace")
        let app = try AppFixture(commands: [
            "migrate": "echo migrate >> \(log); echo running migrations",
            "seed": "echo seed >> \(log)",
            "cache-clear": "echo cache-clear >> \(log)",
        ])
        defer { app.remove(); trace.remove() }
        let r = try await daemon.submitWait(app: "shop", release: "v42", dir: app.path, env: [
            "RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true", "CLEAR_CACHE_DURING_RELEASE": "true",
            "NOTIFY_DURING_RELEASE": "true", "RELEASE_NOTIFY_URL": server.url,
        ])
        #expect(r.status == 0, "\(r)")
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "migrate\nseed\ncache-clear\n")
        let id = r.lines[0]
        let record = try #require(try daemon.record(id))
        #expect(record.tasks.map(\.name) == ["app-json-predeploy", "procfile", "migrate", "seed", "cache-clear", "notify"])
        #expect(record.tasks.map(\.state) == [.skipped, .skipped, .succeeded, .succeeded, .succeeded, .succeeded])
        // notify started after cache-clear ended
        let cacheClear = try #require(record.tasks.first { $0.name == "cache-clear" })
        let notify = try #require(record.tasks.first { $0.name == "notify" })
        #expect(notify.startedAt! >= cacheClear.startedAt!)

        let posts = server.received
        #expect(posts.count == 1)
        let post = try #require(posts.first)
        #expect(post.method == "POST")
        #expect(post.headers["content-type"] == "application/json")
        let json = try #require(post.json)
        #expect(json["id"] as? String == id)
        #expect(json["app"] as? String == "shop")
        #expect(json["release"] as? String == "v42")
        #expect(json["state"] as? String == "succeeded")
        #expect((json["text"] as? String)?.hasPrefix("shop v42: release succeeded") == true)
        let tasks = try #require(json["tasks"] as? [[String: Any]])
        let migrate = try #require(tasks.first { $0["name"] as? String == "migrate" })
        #expect(migrate["state"] as? String == "succeeded")
        #expect(migrate["durationMs"] is Int)
        await daemon.cleanUp()
        await server.shutdown()
    }

    @Test("a failing task fails the release (exit 1); later tasks are not-run; notify still reports")
    func failingTask() async throws {
        let server = try await WebhookServer()
        let daemon = try await DaemonProcess()
        let app = try AppFixture(commands: [
            "migrate": "echo migrating; echo 'ERROR: relation users already exists' >&2; exit 1",
            "seed": "echo seeding",
            "cache-clear": "echo clearing",
        ])
        defer { app.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: [
            "RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true", "CLEAR_CACHE_DURING_RELEASE": "true",
            "NOTIFY_DURING_RELEASE": "true", "RELEASE_NOTIFY_URL": server.url,
        ])
        #expect(r.status == 1, "\(r)")
        #expect(r.stdout.contains("       ERROR: relation users already exists"), "stderr of the task is streamed too")
        #expect(!r.stdout.contains("seeding"))
        let record = try #require(try daemon.record(r.lines[0]))
        #expect(record.state == .failed)
        #expect(record.reason == "migrate exited with status 1")
        let byName = Dictionary(uniqueKeysWithValues: record.tasks.map { ($0.name, $0) })
        #expect(byName["migrate"]?.state == .failed)
        #expect(byName["migrate"]?.exitStatus == 1)
        #expect(byName["seed"]?.state == .notRun)
        #expect(byName["cache-clear"]?.state == .notRun)
        #expect(byName["notify"]?.state == .succeeded)
        let json = try #require(server.received.first?.json)
        #expect(json["state"] as? String == "failed")
        #expect(json["reason"] as? String == "migrate exited with status 1")
        await daemon.cleanUp()
        await server.shutdown()
    }

    @Test("a gate typo rejects the release (exit 2) naming the variable and value")
    func gateTypo() async throws {
        let daemon = try await DaemonProcess()
        let app = try AppFixture(commands: ["migrate": "echo should-not-run"])
        defer { app.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "ture"])
        #expect(r.status == 2, "\(r)")
        #expect(r.stdout.contains("RUN_MIGRATIONS_DURING_RELEASE=\"ture\" is not a gate value"))
        #expect(!r.stdout.contains("should-not-run"))
        let record = try #require(try daemon.record(r.lines[0]))
        #expect(record.state == .rejected)
        #expect(daemon.files(in: "rejected").contains("\(r.lines[0]).json"))
        // A near-miss variable name switched on rejects (its migration would be skipped)…
        let misspelt = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATION_DURING_RELEASE": "true"])
        #expect(misspelt.status == 2, "\(misspelt)")
        #expect(misspelt.stdout.contains("looks like a misspelling of RUN_MIGRATIONS_DURING_RELEASE"), "\(misspelt)")
        #expect(try daemon.record(misspelt.lines[0])?.reasonCode == "gate")
        // … and switched off it is warned about, in the output and the record.
        let warned = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATION_DURING_RELEASE": "0"])
        #expect(warned.status == 0)
        #expect(warned.stdout.contains("warning: RUN_MIGRATION_DURING_RELEASE looks like RUN_MIGRATIONS_DURING_RELEASE"))
        #expect(try daemon.record(warned.lines[0])?.warnings == ["RUN_MIGRATION_DURING_RELEASE looks like RUN_MIGRATIONS_DURING_RELEASE"])
        await daemon.cleanUp()
    }

    @Test("the task's environment is the request's env plus RELEASE_*, not the daemon's")
    func taskEnvironment() async throws {
        let daemon = try await DaemonProcess()
        let app = try AppFixture(argv: ["migrate": ["env"]])
        defer { app.remove() }
        let r = try await daemon.submitWait(app: "shop", release: "v7", dir: app.path, env: [
            "RUN_MIGRATIONS_DURING_RELEASE": "true", "APP_SETTING": "hello world",
        ])
        #expect(r.status == 0, "\(r)")
        let id = r.lines[0]
        let vars = Set(r.lines.filter { $0.hasPrefix("       ") }.map { $0.trimmingCharacters(in: .whitespaces) })
        #expect(vars.contains("APP_SETTING=hello world"))
        #expect(vars.contains("RUN_MIGRATIONS_DURING_RELEASE=true"))
        #expect(vars.contains("RELEASE_ID=\(id)"))
        #expect(vars.contains("RELEASE_APP=shop"))
        #expect(vars.contains("RELEASE_NAME=v7"))
        #expect(vars.contains("RELEASE_TASK=migrate"))
        #expect(vars.contains("RELEASE_DIR=\(app.path)"))
        #expect(vars.contains("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"))
        #expect(vars.contains("LANG=C.UTF-8"))
        #expect(vars.contains { $0.hasPrefix("HOME=") })
        #expect(!r.stdout.contains("DAEMON_SECRET_MARKER"), "the daemon's own environment must not leak into tasks")
        #expect(!r.stdout.contains("NOTIFY_SOCKET"))
        #expect(vars.count == 10, "exactly the request's env and the task variables: \(vars.sorted())")
        await daemon.cleanUp()
    }

    @Test("submit --wait prints the id, each task's start, output, result with duration, and a summary")
    func waitOutputFormat() async throws {
        let daemon = try await DaemonProcess()
        let app = try AppFixture(commands: ["migrate": "echo one; echo two", "seed": "printf 'no newline at end'"])
        defer { app.remove() }
        let r = try await daemon.submitWait(app: "shop", release: "v3", dir: app.path, env: [
            "RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true",
        ])
        #expect(r.status == 0, "\(r)")
        let lines = r.lines.filter { !$0.isEmpty }
        #expect(ReleaseID(lines[0]) != nil, "first line is the id alone")
        #expect(lines[1] == "-----> shop v3: running migrate, seed")
        #expect(lines[2] == "-----> migrate: echo one; echo two")
        #expect(lines[3] == "       one")
        #expect(lines[4] == "       two")
        #expect(lines[5].hasPrefix("-----> migrate succeeded in "))
        #expect(lines[6] == "-----> seed: printf 'no newline at end'")
        #expect(lines[7] == "       no newline at end")
        #expect(lines[8].hasPrefix("-----> seed succeeded in "))
        #expect(lines[9].hasPrefix("-----> release succeeded in "))
        #expect(lines[10].hasPrefix("==> shop v3: succeeded ("))
        #expect(lines[10].contains("migrate ok"))
        #expect(lines.count == 11)
        // --json --wait: stdout holds only the record.
        let j = try await daemon.submitWait(app: "shop", release: "v4", dir: app.path, env: ["SEED_DB_DURING_RELEASE": "1"], extra: ["--json"])
        #expect(j.status == 0)
        let record = try ReleaseRecord.decode(Array(j.stdout.utf8))
        #expect(record.state == .succeeded)
        #expect(j.stderr.contains("       no newline at end"))
        // Without --wait: the id alone.
        let id = try await daemon.submit(app: "shop", dir: app.path)
        #expect(ReleaseID(id) != nil)
        await daemon.cleanUp()
    }
}
