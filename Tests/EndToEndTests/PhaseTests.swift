import Foundation
import ReleaseKit
import Testing

/// The release lifecycle on one host: a postdeploy after its predeploy, what it is refused
/// for, first-deploy-only tasks, and app.json's scripts — real daemons, real task processes.
@Suite("phases", .serialized)
struct PhaseTests {
    static let trace = "echo \"$RELEASE_TASK $(date +%s%N)\" >> "

    @Test("a postdeploy runs the postdeploy tasks once its predeploy succeeded; the phase is in the record, list, status, metrics and notify")
    func postdeployAfterPredeploy() async throws {
        let server = try await WebhookServer()
        let out = TempDir()
        let metrics = out.file("metrics.prom")
        let daemon = try await DaemonProcess(arguments: ["--metrics-file", metrics])
        let log = out.file("trace")
        let app = try AppFixture(commands: ["migrate": Self.trace + log, "post-migrate": Self.trace + log, "warm-up": Self.trace + log])
        defer { app.remove(); out.remove() }
        let env = ["RUN_MIGRATIONS_DURING_RELEASE": "true", "RUN_MIGRATIONS_AFTER_DEPLOY": "true", "WARM_UP_AFTER_DEPLOY": "true",
                   "NOTIFY_AFTER_DEPLOY": "true", "RELEASE_NOTIFY_URL": server.url]
        let pre = try await daemon.submitWait(app: "shop", release: "v42", dir: app.path, env: env)
        #expect(pre.status == 0, "\(pre)")
        // The predeploy ran only its own tasks: nothing of the postdeploy before traffic moved.
        #expect(try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ")[0] } == ["migrate"])
        let preRecord = try #require(try daemon.record(pre.lines[0]))
        #expect(preRecord.phase == .predeploy)
        #expect(!preRecord.tasks.contains { $0.name == "post-migrate" })
        #expect(server.received.isEmpty, "notify-deployed is a postdeploy task")

        let plan = try await daemon.ctl(["plan", "--app", "shop", "--dir", app.path, "--phase", "postdeploy"] + env.flatMap { ["--env", "\($0)=\($1)"] })
        #expect(plan.stdout.contains("  phase:             postdeploy (after traffic moved to the new version)"), "\(plan)")
        #expect(plan.stdout.contains("run   post-migrate") && plan.stdout.contains("run   notify-deployed") && !plan.stdout.contains(" migrate  "), "\(plan)")
        let post = try await daemon.submitWait(app: "shop", release: "v42", dir: app.path, env: env, extra: ["--phase", "postdeploy"])
        #expect(post.status == 0, "\(post)")
        #expect(post.stdout.contains("==> shop v42 postdeploy: succeeded"), "\(post)")
        let ran = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n").map { $0.split(separator: " ")[0] }
        #expect(ran == ["migrate", "post-migrate", "warm-up"])
        let record = try #require(try daemon.record(post.lines[0]))
        #expect(record.phase == .postdeploy)
        #expect(record.tasks.map(\.name) == ["post-migrate", "app-json-postdeploy", "app-json-first-deploy", "warm-up", "notify-deployed"])
        #expect(record.tasks.map(\.state) == [.succeeded, .skipped, .skipped, .succeeded, .succeeded])
        let file = try String(contentsOfFile: "\(daemon.spoolPath)/done/\(post.lines[0]).record.json", encoding: .utf8)
        #expect(file.contains("\"phase\" : \"postdeploy\""))

        // notify-deployed posted the postdeploy's outcome, phase included.
        let json = try #require(server.received.first?.json)
        #expect(json["phase"] as? String == "postdeploy")
        #expect((json["text"] as? String)?.hasPrefix("shop v42: postdeploy succeeded") == true, "\(json)")

        let list = try await daemon.ctl(["list"])
        #expect(list.stdout.contains("PHASE"))
        let rows = list.stdout.split(separator: "\n").filter { $0.contains("v42") }
        #expect(rows.contains { $0.contains("postdeploy") && $0.contains("succeeded") } && rows.contains { $0.contains("predeploy") }, "\(list)")
        let status = try await daemon.ctl(["status", post.lines[0]])
        #expect(status.stdout.contains("phase:     postdeploy"), "\(status)")
        try await eventually("metrics with the phase") {
            let text = (try? String(contentsOfFile: metrics, encoding: .utf8)) ?? ""
            return text.contains("releasectl_releases_total{app=\"shop\",phase=\"postdeploy\",state=\"succeeded\"} 1")
                && text.contains("releasectl_releases_total{app=\"shop\",phase=\"predeploy\",state=\"succeeded\"} 1")
        }
        await daemon.cleanUp()
        await server.shutdown()
    }

    @Test("a postdeploy is rejected (exit 2, saying why) when its predeploy failed, never ran, or still waits; nothing of it runs")
    func postdeployRefused() async throws {
        let daemon = try await DaemonProcess()
        let out = TempDir()
        let marker = out.file("post-ran")
        let app = try AppFixture(commands: ["migrate": "exit 3", "post-migrate": "touch \(marker)", "seed": "sleep 30"])
        defer { app.remove(); out.remove() }
        let env = ["RUN_MIGRATIONS_DURING_RELEASE": "true", "RUN_MIGRATIONS_AFTER_DEPLOY": "true"]
        let failed = try await daemon.submitWait(app: "shop", release: "v7", dir: app.path, env: env)
        #expect(failed.status == 1)

        let afterFailure = try await daemon.submitWait(app: "shop", release: "v7", dir: app.path, env: env, extra: ["--phase", "postdeploy"])
        #expect(afterFailure.status == 2, "\(afterFailure)")
        let record = try #require(try daemon.record(afterFailure.lines[0]))
        #expect(record.state == .rejected && record.reasonCode == "phase" && record.phase == .postdeploy)
        #expect(record.reason?.contains("the predeploy of shop v7 (deploy key shop/v7) failed (\(failed.lines[0]))") == true, "\(record)")

        let never = try await daemon.submitWait(app: "shop", release: "v8", dir: app.path, env: env, extra: ["--phase", "postdeploy"])
        #expect(never.status == 2)
        #expect(try daemon.record(never.lines[0])?.reason?.contains("no predeploy of shop v8") == true)

        // A predeploy still running: its postdeploy is refused (traffic cannot have moved yet).
        let running = try await daemon.submit(app: "shop", release: "v9", dir: app.path, env: ["SEED_DB_DURING_RELEASE": "true"])
        try await eventually("the predeploy to run") { daemon.files(in: "running").contains("\(running).json") }
        let early = try await daemon.submitWait(app: "shop", release: "v9", dir: app.path, env: env, extra: ["--phase", "postdeploy"])
        #expect(early.status == 2)
        #expect(try daemon.record(early.lines[0])?.reason?.contains("the predeploy of shop v9 (\(running)) still runs here") == true)
        #expect(!FileManager.default.fileExists(atPath: marker), "no postdeploy task ran")
        _ = try await daemon.ctl(["cancel", running])
        await daemon.cleanUp()
    }

    @Test("a task of the other phase, a bad --phase or \"phase\" are refused naming the problem")
    func phaseInputs() async throws {
        let daemon = try await DaemonProcess()
        let app = try AppFixture(commands: ["post-migrate": "true"])
        defer { app.remove() }
        let wrong = try await daemon.submitWait(app: "shop", dir: app.path, tasks: ["post-migrate"])
        #expect(wrong.status == 2)
        #expect(try daemon.record(wrong.lines[0])?.reason == "task post-migrate runs in the postdeploy phase, not in this predeploy (submit it with --phase postdeploy)")
        let bad = try await daemon.ctl(["submit", "--app", "shop", "--release", "v1", "--dir", app.path, "--phase", "after"])
        #expect(bad.status == 2 && bad.stderr.contains("--phase \"after\" is not a phase (predeploy, postdeploy)"), "\(bad)")
        // A request file written by hand: "phase" is checked like every field.
        for (value, message) in [("\"later\"", "\"phase\" \"later\" is not a phase (predeploy, postdeploy)"),
                                 ("3", "\"phase\" must be a string, not a number")] {
            let id = ReleaseID.generate().rawValue
            let json = "{\"version\": 1, \"id\": \"\(id)\", \"app\": \"shop\", \"release\": \"v1\", \"directory\": \"\(app.path)\", \"phase\": \(value)}"
            try daemon.drop(name: "\(id).json", contents: Data(json.utf8))
            let record = try await daemon.waitForRecord(id)
            #expect(record.state == .rejected && record.reason == message, "\(record)")
        }
        await daemon.cleanUp()
    }

    @Test("a first-deploy task runs on the app's first successful release only, also after a restart")
    func firstDeployOnly() async throws {
        let spool = TempDir("releasectl-spool")
        var daemon = try await DaemonProcess(spool: spool)
        let out = TempDir()
        let marker = out.file("seeded")
        let app = try AppFixture(commands: ["migrate": "true"], extraFiles: [:])
        try "[tasks.seed]\ncommand = \"echo seeded >> \(marker)\"\nfirst-deploy = true\n[tasks.migrate]\ncommand = \"test ! -e \(out.file("fail"))\"\n"
            .write(toFile: app.dir.file("release.toml"), atomically: true, encoding: .utf8)
        defer { app.remove(); out.remove() }
        let env = ["SEED_DB_DURING_RELEASE": "true", "RUN_MIGRATIONS_DURING_RELEASE": "true"]
        // A first release that fails does not count: the next one is still the first deploy.
        FileManager.default.createFile(atPath: out.file("fail"), contents: nil)
        let failed = try await daemon.submitWait(app: "shop", release: "v1", dir: app.path, env: env)
        #expect(failed.status == 1)
        try FileManager.default.removeItem(atPath: out.file("fail"))
        let plan = try await daemon.ctl(["plan", "--app", "shop", "--dir", app.path] + env.flatMap { ["--env", "\($0)=\($1)"] })
        #expect(plan.stdout.contains("first deploy of shop"), "\(plan)")
        let first = try await daemon.submitWait(app: "shop", release: "v2", dir: app.path, env: env)
        #expect(first.status == 0, "\(first)")
        let seededAfterFirst = try String(contentsOfFile: marker, encoding: .utf8)
        #expect(seededAfterFirst == "seeded\n", "the failed first release never reached seed; the first successful one seeded")
        let second = try await daemon.submitWait(app: "shop", release: "v3", dir: app.path, env: env)
        #expect(second.status == 0)
        let seed = try #require(try daemon.record(second.lines[0])?.tasks.first { $0.name == "seed" })
        #expect(seed.state == .skipped)
        #expect(seed.reason == "first deploy only, and it already succeeded for shop (in release v2 (\(first.lines[0])))", "\(seed)")
        // The daemon's history is rebuilt from done/ at start.
        try await daemon.stop()
        daemon = try await DaemonProcess(spool: spool)
        let third = try await daemon.submitWait(app: "shop", release: "v4", dir: app.path, env: env)
        #expect(try daemon.record(third.lines[0])?.tasks.first { $0.name == "seed" }?.state == .skipped)
        #expect(try String(contentsOfFile: marker, encoding: .utf8) == seededAfterFirst, "seed ran only with the first successful release")
        // Another app's first deploy is its own.
        let other = try await daemon.submitWait(app: "blog", release: "v1", dir: app.path, env: env)
        #expect(try daemon.record(other.lines[0])?.tasks.first { $0.name == "seed" }?.state == .succeeded)
        let planAfter = try await daemon.ctl(["plan", "--app", "shop", "--dir", app.path] + env.flatMap { ["--env", "\($0)=\($1)"] })
        #expect(planAfter.stdout.contains("skip  seed"), "\(planAfter)")
        await daemon.cleanUp()
    }

    @Test("app.json: Dokku's and Heroku's documented scripts run in their phases, as /bin/sh -c; other keys are ignored")
    func appJSONScripts() async throws {
        let daemon = try await DaemonProcess()
        let out = TempDir()
        let log = out.file("trace")
        // Dokku's documented example (deployment-tasks), its commands pointed at the trace,
        // with Heroku's scripts.postdeploy (first deploy only) and keys other tools use.
        let appJSON = """
            {
              "name": "barebones nodejs",
              "description": "A barebones Node.js app using Express 4.",
              "keywords": ["nodejs", "express"],
              "repository": "https://github.com/michaelshobbs/node-js-sample",
              "scripts": {
                "dokku": {
                  "predeploy": "echo predeploy:$RELEASE_TASK >> \(log)",
                  "postdeploy": "echo postdeploy:$RELEASE_TASK >> \(log)"
                },
                "postdeploy": {"command": "echo first:$RELEASE_TASK >> \(log)", "size": "standard-1x"},
                "pr-predestroy": "echo never"
              },
              "env": {"SECRET_TOKEN": {"description": "A secret key", "value": "secret"}, "WEB_CONCURRENCY": {"generator": "echo 5"}},
              "formation": {"web": {"quantity": 1}},
              "cron": [{"command": "echo cron", "schedule": "@daily"}],
              "image": "gliderlabs/herokuish",
              "addons": ["dokku-postgres", "dokku-redis"],
              "buildpacks": [{"url": "https://github.com/heroku/heroku-buildpack-nodejs"}]
            }
            """
        // With a byte order mark, as some editors save it.
        let app = try AppFixture(extraFiles: ["app.json": "\u{FEFF}" + appJSON, "Procfile": "release: echo procfile:$RELEASE_TASK >> \(log)\n"])
        defer { app.remove(); out.remove() }
        let plan = try await daemon.ctl(["plan", "--app", "shop", "--dir", app.path])
        #expect(plan.stdout.contains("run   app-json-predeploy"), "\(plan)")
        let pre = try await daemon.submitWait(app: "shop", release: "v1", dir: app.path)
        #expect(pre.status == 0, "\(pre)")
        // Dokku runs scripts.dokku.predeploy before the Procfile's release: line.
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "predeploy:app-json-predeploy\nprocfile:procfile\n")
        let post = try await daemon.submitWait(app: "shop", release: "v1", dir: app.path, extra: ["--phase", "postdeploy"])
        #expect(post.status == 0, "\(post)")
        #expect(try String(contentsOfFile: log, encoding: .utf8).hasSuffix("postdeploy:app-json-postdeploy\nfirst:app-json-first-deploy\n"))
        // The next deploy: Heroku's scripts.postdeploy is for the first deploy only.
        _ = try await daemon.submitWait(app: "shop", release: "v2", dir: app.path)
        _ = try await daemon.submitWait(app: "shop", release: "v2", dir: app.path, extra: ["--phase", "postdeploy"])
        let lines = try String(contentsOfFile: log, encoding: .utf8).split(separator: "\n")
        #expect(lines.filter { $0.hasPrefix("first:") }.count == 1, "\(lines)")
        #expect(lines.filter { $0.hasPrefix("postdeploy:") }.count == 2)
        // Each gate switches its script off.
        let off = try await daemon.submitWait(app: "shop", release: "v3", dir: app.path, env: ["RUN_APP_JSON_PREDEPLOY": "false"])
        #expect(try daemon.record(off.lines[0])?.tasks.first { $0.name == "app-json-predeploy" }?.reason == "RUN_APP_JSON_PREDEPLOY is off (false)")
        await daemon.cleanUp()
    }

    @Test("a malformed or hostile app.json rejects the release naming the file, the place and the problem")
    func hostileAppJSON() async throws {
        let daemon = try await DaemonProcess()
        let deep = String(repeating: "[", count: 20_000) + String(repeating: "]", count: 20_000)
        let cases: [(String, String)] = [
            ("{\"scripts\": {\"dokku\": {\"predeploy\": 42}}}", "app.json: scripts.dokku.predeploy must be a string (run by /bin/sh -c), not a number"),
            ("{\"scripts\": {\"dokku\": [\"predeploy\"]}}", "app.json: scripts.dokku must be an object, not an array"),
            ("{\"scripts\": \"rake db:migrate\"}", "app.json: \"scripts\" must be an object, not a string"),
            ("{\"scripts\": {\"postdeploy\": {\"size\": \"free\"}}}", "app.json: scripts.postdeploy has no \"command\""),
            ("{\"scripts\": {\"postdeploy\": [\"a\", 1]}}", "app.json: scripts.postdeploy must be a string (run by /bin/sh -c), not an array"),
            ("{\"scripts\": {\"dokku\": {\"postdeploy\": \"a\\u0000b\"}}}", "app.json: scripts.dokku.postdeploy contains a NUL character"),
            ("[1, 2]", "app.json: must be a JSON object, not an array"),
            ("{\"scripts\": {\"dokku\": {\"predeploy\": \"x\"}}\n", "app.json: not valid JSON at line 2, column 1: expected ',' or '}' (the object is never closed)"),
            ("{\n  \"scripts\": {\n    \"dokku\": {\"predeploy\": rake db:migrate}\n  }\n}\n", "app.json: not valid JSON at line 3, column 28: unexpected 'r'"),
            ("{\"scripts\": {\"postdeploy\": \"a\u{1}b\"}}", "app.json: not valid JSON at line 1, column 30: a control character inside a string (write it escaped)"),
            ("{\"scripts\": {}} trailing", "app.json: not valid JSON at line 1, column 17: unexpected 't' after the JSON value"),
            // What lenient parsers take differently is refused: a key twice, a trailing comma.
            ("{\"scripts\":{\"postdeploy\":\"echo FIRST\"},\"scripts\":{\"postdeploy\":\"echo SECOND\"}}",
             "app.json: not valid JSON at line 1, column 40: the key \"scripts\" appears twice in one object"),
            ("{\"scripts\": {\"postdeploy\": \"x\",}}", "app.json: not valid JSON at line 1, column 32: expected a key in double quotes"),
            ("{\"a\": \"\\ud800\"}", "app.json: not valid JSON at line 1, column 8: a lone surrogate (\\uD800 without its pair)"),
            ("{\"a\": 1e999999999}", "app.json: not valid JSON at line 1, column 7: a number too large to read"),
            ("{\"a\":\n" + deep + "}", "app.json: nested more than 32 levels deep (line 2)"),
            ("{\"a\": \"" + String(repeating: "x", count: 70_000) + "\"}", "app.json is 70009 bytes, over the limit of 64 KiB"),
        ]
        for (text, message) in cases {
            let app = try AppFixture(extraFiles: ["app.json": text])
            defer { app.remove() }
            let r = try await daemon.submitWait(app: "shop", dir: app.path)
            #expect(r.status == 2, "\(message): \(r)")
            let record = try #require(try daemon.record(r.lines[0]))
            #expect(record.reason?.hasPrefix(app.path + "/") == true && record.reason?.contains(message) == true,
                    "\(message) / \(record.reason ?? "")")
            #expect(record.reasonCode == "app-json")
        }
        // Bytes that are not UTF-8.
        let app = try AppFixture()
        defer { app.remove() }
        try Data([0x7b, 0xff, 0x7d]).write(to: URL(fileURLWithPath: app.dir.file("app.json")))
        let r = try await daemon.submitWait(app: "shop", dir: app.path)
        #expect(try daemon.record(r.lines[0])?.reason == "\(app.path)/app.json: not valid UTF-8")
        // A link leading out of the app directory is not followed.
        try FileManager.default.removeItem(atPath: app.dir.file("app.json"))
        try FileManager.default.createSymbolicLink(atPath: app.dir.file("app.json"), withDestinationPath: "/etc/passwd")
        let link = try await daemon.submitWait(app: "shop", dir: app.path)
        #expect(link.status == 2)
        #expect(try daemon.record(link.lines[0])?.reason?.contains("app.json is a symbolic link that leads out of the app directory") == true)
        await daemon.cleanUp()
    }

    @Test("an app deployed before it ever ran a postdeploy is no first deploy: Heroku's scripts.postdeploy does not run; nor does a first-deploy task that succeeded once, after a failed postdeploy")
    func firstDeployIsOnce() async throws {
        let daemon = try await DaemonProcess()
        let out = TempDir()
        let log = out.file("trace")
        let appJSON = "{\"scripts\": {\"postdeploy\": \"echo first >> \(log)\"}}"
        let legacy = try AppFixture(extraFiles: ["app.json": appJSON])
        defer { legacy.remove(); out.remove() }
        // Deployed for years without a postdeploy (the hook did not call one yet).
        for v in ["v1", "v2"] { #expect(try await daemon.submitWait(app: "legacy", release: v, dir: legacy.path).status == 0) }
        let post = try await daemon.submitWait(app: "legacy", release: "v2", dir: legacy.path, extra: ["--phase", "postdeploy"])
        #expect(post.status == 0, "\(post)")
        let task = try #require(try daemon.record(post.lines[0])?.tasks.first { $0.name == "app-json-first-deploy" })
        #expect(task.state == .skipped && task.reason?.hasPrefix("first deploy only, and legacy has been deployed before (release v1 (") == true, "\(task)")
        #expect(!FileManager.default.fileExists(atPath: log), "a one-time script never runs on a live app")

        // A new app whose first postdeploy fails after its first-deploy script succeeded.
        let fresh = try AppFixture(commands: ["warm-up": "test -e \(out.file("warm"))"], extraFiles: ["app.json": appJSON])
        defer { fresh.remove() }
        let env = ["WARM_UP_AFTER_DEPLOY": "true"]
        #expect(try await daemon.submitWait(app: "fresh", release: "v1", dir: fresh.path, env: env).status == 0)
        let failed = try await daemon.submitWait(app: "fresh", release: "v1", dir: fresh.path, env: env, extra: ["--phase", "postdeploy"])
        #expect(failed.status == 1, "\(failed)")
        FileManager.default.createFile(atPath: out.file("warm"), contents: nil)
        let again = try await daemon.submitWait(app: "fresh", release: "v1", dir: fresh.path, env: env, extra: ["--phase", "postdeploy"])
        #expect(again.status == 0, "\(again)")
        #expect(try String(contentsOfFile: log, encoding: .utf8) == "first\n", "the first-deploy script ran once")
        let skipped = try #require(try daemon.record(again.lines[0])?.tasks.first { $0.name == "app-json-first-deploy" })
        #expect(skipped.reason?.hasPrefix("first deploy only, and it already succeeded for fresh (in release v1 (\(failed.lines[0])))") == true, "\(skipped)")
        await daemon.cleanUp()
    }

    @Test("the newest predeploy of a release decides: one rejected after a success refuses its postdeploy")
    func rejectedPredeployCounts() async throws {
        let daemon = try await DaemonProcess()
        let app = try AppFixture(commands: ["migrate": "true", "post-migrate": "true"])
        defer { app.remove() }
        #expect(try await daemon.submitWait(app: "web", release: "v7", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"]).status == 0)
        let typo = try await daemon.submitWait(app: "web", release: "v7", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "ture"])
        #expect(typo.status == 2)
        let post = try await daemon.submitWait(app: "web", release: "v7", dir: app.path, env: ["RUN_MIGRATIONS_AFTER_DEPLOY": "true"],
                                               extra: ["--phase", "postdeploy"])
        #expect(post.status == 2, "\(post)")
        #expect(try daemon.record(post.lines[0])?.reason?.contains("the predeploy of web v7 (deploy key web/v7) rejected (\(typo.lines[0]))") == true)
        // Junk naming the app and a release (no request in it) decides nothing.
        #expect(try await daemon.submitWait(app: "web", release: "v8", dir: app.path).status == 0)
        try daemon.drop(name: "junk-v8.json", contents: Data("{\"app\": \"web\", \"release\": \"v8\"".utf8))
        #expect(try await daemon.waitForRecord("junk-v8").state == .rejected)
        let v8 = try await daemon.submitWait(app: "web", release: "v8", dir: app.path, extra: ["--phase", "postdeploy"])
        #expect(v8.status == 0, "\(v8)")
        await daemon.cleanUp()
    }
}
