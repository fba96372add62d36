import Foundation
import Glibc
import ReleaseKit
import Testing

/// integrations/dokku, its triggers run as plugn runs them: the executable called with Dokku's
/// arguments and Dokku's plugin environment, against a real `released` releasing a real image in
/// podman. Only the `dokku` command is a stand-in (a Dokku host needs a Docker engine, which
/// cannot run here), answering `config:export --format envfile APP` the way Dokku does.
@Suite("Dokku plugin", .serialized)
struct DokkuPluginTests {
    static let plugin: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent("integrations/dokku").path
    }()

    /// What the plugin sees of a Dokku host: plugn's variables, `dokku` (the stand-in) and
    /// `releasectl` on the PATH — a wrapper that writes its arguments to a log, then execs the
    /// real one — and podman as Dokku's `DOCKER_BIN`.
    struct DokkuHost {
        let dir: TempDir
        var bin: String { dir.file("bin") }
        var libRoot: String { dir.file("lib") }
        var argvLog: String { dir.file("releasectl-argv") }
        var dokkuLog: String { dir.file("dokku-calls") }
        let spool: String

        init(spool: String, releasectl: Bool = true) throws {
            dir = TempDir("releasectl-dokku")
            self.spool = spool
            for folder in ["bin", "lib", "config", "plugins/enabled"] {
                try FileManager.default.createDirectory(atPath: dir.file(folder), withIntermediateDirectories: true)
            }
            try FileManager.default.createSymbolicLink(atPath: dir.file("plugins/enabled/releasectl"), withDestinationPath: DokkuPluginTests.plugin)
            try Self.script(bin + "/dokku", """
                #!/bin/bash
                # The stand-in for `dokku`: config:export --format envfile APP, from config/APP.env.
                printf '%s\\n' "$*" >> \(dokkuLog)
                if [ "$#" -ne 4 ] || [ "$1" != config:export ] || [ "$2" != --format ] || [ "$3" != envfile ]; then
                    echo "dokku stand-in: only config:export --format envfile APP" >&2; exit 1
                fi
                [[ $4 =~ ^[a-z0-9][a-z0-9-]*$ ]] && [ -f "\(dir.file("config"))/$4.env" ] || { echo " !     App $4 does not exist" >&2; exit 1; }
                cat "\(dir.file("config"))/$4.env"
                """)
            if releasectl {
                try Self.script(bin + "/releasectl", "#!/bin/sh\nprintf '%s\\n' \"$*\" >> \(argvLog)\nexec \(Binaries.releasectl) \"$@\"\n")
            }
        }

        static func script(_ path: String, _ text: String) throws {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }

        /// The app's config as Dokku keeps it; `config:export --format envfile` prints it as
        /// godotenv's Marshal does (sorted `KEY="value"` lines with \\ \n \r " ! $ ` escaped, a
        /// value that parses as an integer bare, no final line break).
        func setConfig(_ app: String, _ vars: [String: String]) throws {
            let lines = vars.map { key, value -> String in
                if let n = Int(value) { return "\(key)=\(n)" }
                var escaped = ""
                for c in value {
                    switch c {
                    case "\\": escaped += "\\\\"
                    case "\n": escaped += "\\n"
                    case "\r": escaped += "\\r"
                    case "\"", "!", "$", "`": escaped += "\\" + String(c)
                    default: escaped.append(c)
                    }
                }
                return "\(key)=\"\(escaped)\""
            }.sorted()
            try lines.joined(separator: "\n").write(toFile: dir.file("config/\(app).env"), atomically: true, encoding: .utf8)
        }

        /// plugn's environment for a trigger (as Dokku sets it), and the test's spool and engine.
        var environment: [String: String] {
            var env = Podman.environment
            env["PATH"] = bin + ":" + env["PATH"]!
            env["CONTAINERS_CONF"] = Podman.configFile
            env["DOCKER_BIN"] = Podman.program
            env["DOKKU_ROOT"] = dir.file("home")
            env["DOKKU_LIB_ROOT"] = libRoot
            env["PLUGIN_PATH"] = dir.file("plugins")
            env["PLUGIN_AVAILABLE_PATH"] = dir.file("plugins/enabled")
            env["PLUGIN_ENABLED_PATH"] = dir.file("plugins/enabled")
            env["PLUGIN_CORE_AVAILABLE_PATH"] = dir.file("plugins/core")
            env["DOKKU_PID"] = "4242"
            env["RELEASECTL_SPOOL"] = spool
            return env
        }

        /// Runs a trigger as plugn does: the executable in the enabled plugin's folder, Dokku's
        /// arguments.
        func trigger(_ name: String, _ arguments: [String], environment extra: [String: String] = [:]) async throws -> CommandResult {
            try await runProgram(dir.file("plugins/enabled/releasectl/\(name)"), arguments,
                                 environment: environment.merging(extra) { $1 }, inheritEnvironment: false, workingDirectory: dir.path)
        }

        var argv: String { (try? String(contentsOfFile: argvLog, encoding: .utf8)) ?? "" }
        var dokkuCalls: String { (try? String(contentsOfFile: dokkuLog, encoding: .utf8)) ?? "" }
        var predeployState: String? { try? String(contentsOfFile: libRoot + "/config/releasectl/shop/predeploy", encoding: .utf8) }
    }

    @Test("post-release-builder runs the release in the built image with the app's config; post-deploy its postdeploy; a failing migration fails the trigger (exit 1) with its output")
    func postReleaseBuilder() async throws {
        try Podman.check()
        let good = try await TestImage.build(files: [
            "app/release.toml": "[tasks.migrate]\ncommand = \"echo \\\"migrating with $GREETING and $DATABASE_URL\\\"\"\n"
                + "[tasks.post-migrate]\ncommand = \"echo \\\"after traffic moved, with $GREETING\\\"\"\n",
            "app/Procfile": "web: httpd\nrelease: echo the Procfile release line ran\n",
            "app/app.json": "{\"scripts\": {\"dokku\": {\"predeploy\": \"echo app.json predeploy ran\", \"postdeploy\": \"echo app.json postdeploy ran\"}}}\n",
        ])
        let bad = try await TestImage.build(files: [
            "app/release.toml": "[tasks.migrate]\ncommand = \"echo migrating; echo 'ERROR: relation \\\"books\\\" already exists' >&2; exit 1\"\n",
        ])
        let daemon = try await DaemonProcess(environment: Podman.environment)
        let host = try DokkuHost(spool: daemon.spoolPath)
        defer { host.dir.remove() }
        // A value with every character godotenv escapes, and a secret.
        let greeting = "it's \"$HOME\" `id` ok!"
        try host.setConfig("shop", ["RUN_MIGRATIONS_DURING_RELEASE": "true", "DATABASE_URL": "postgres://shop:hunter2@db/shop",
                                    "GREETING": greeting, "WEB_CONCURRENCY": "2", "RUN_MIGRATIONS_AFTER_DEPLOY": "true"])

        let ok = try await host.trigger("post-release-builder", ["dockerfile", "shop", good.reference])
        #expect(ok.status == 0, "\(ok)")
        let label = String(good.id.prefix(12))
        #expect(ok.stdout.contains("-----> Running release tasks of shop with releasectl (\(good.reference), release \(label), builder dockerfile)"), "\(ok)")
        #expect(ok.stdout.contains("       migrating with \(greeting) and ***\n"), "the config reaches the task intact, the secret masked: \(ok)")
        #expect(!ok.stdout.contains("the Procfile release line ran") && !ok.stdout.contains("app.json predeploy ran"),
                "Dokku runs the release: line and app.json's scripts itself; releasectl does not run them again: \(ok)")
        #expect(host.dokkuCalls == "config:export --format envfile shop\n")
        #expect(!host.argv.contains("hunter2") && host.argv.contains("--env-file /dev/stdin"), "no config value in any argv: \(host.argv)")
        #expect(!ok.stdout.contains("hunter2") && !ok.stderr.contains("hunter2"))
        let list = try await daemon.ctl(["list", "--app", "shop", "--json"])
        let records = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        #expect(records.count == 1)
        #expect(records.first?["release"] as? String == label, "the release is named after the image id")
        #expect(records.first?["image"] as? String == good.reference)
        #expect(records.first?["imageID"] as? String == good.id)
        let tasks = try #require(records.first?["tasks"] as? [[String: Any]])
        #expect(tasks.first { $0["name"] as? String == "procfile" }?["state"] as? String == "skipped", "\(tasks)")
        #expect(host.predeployState == "image=\(good.reference)\nrelease=\(label)\nkey=shop/\(label)\n", "kept for post-deploy")

        // post-deploy, as scheduler-docker-local calls it once the new containers take traffic
        // (at once here: while the predeploy's container is still being taken down).
        let otherTag = try await host.trigger("post-deploy", ["shop", "5000", "172.17.0.2", "latest"])
        #expect(otherTag.status == 0 && otherTag.stderr.contains("the deployed tag latest is not the one released (\(good.reference)); postdeploy not run"), "\(otherTag)")
        let post = try await host.trigger("post-deploy", ["shop", "5000", "172.17.0.2", "v1"])
        #expect(post.status == 0, "\(post)")
        #expect(post.stdout.contains("-----> Running postdeploy tasks of shop with releasectl (release \(label))"), "\(post)")
        #expect(post.stdout.contains("       after traffic moved, with \(greeting)\n"), "\(post)")
        #expect(!post.stdout.contains("app.json postdeploy ran"), "Dokku runs app.json's postdeploy itself: \(post)")
        let postRecord = try #require(try daemon.record(post.lines[1]), "\(post)")
        #expect(postRecord.phase == .postdeploy && postRecord.state == .succeeded && postRecord.release == label)
        #expect(host.predeployState == nil, "done with")
        #expect(!host.argv.contains("hunter2"))

        let failed = try await host.trigger("post-release-builder", ["dockerfile", "shop", bad.reference])
        #expect(failed.status == 1, "\(failed)")
        #expect(failed.stdout.contains("       migrating\n") && failed.stdout.contains("ERROR: relation \"books\" already exists"), "the output is shown: \(failed)")
        #expect(failed.stderr.contains(" !     The release tasks of shop failed (releasectl exit 1): the output above says why"), "\(failed)")
        #expect(failed.stderr.contains(" !     the deploy is stopped; the version already running stays live"), "\(failed)")
        #expect(host.predeployState == nil, "a failed release is not what post-deploy runs after")
        let afterFailure = try await host.trigger("post-deploy", ["shop", "5000", "172.17.0.2", "v1"])
        #expect(afterFailure.status == 0 && afterFailure.stdout.contains("no predeploy release of shop recorded"), "\(afterFailure)")
        await daemon.cleanUp()
        await good.remove()
        await bad.remove()
    }

    @Test("hostile app names and image references from Dokku never reach a command; no releasectl, no config, no state: each fails saying what to do")
    func badInput() async throws {
        let spool = TempDir("releasectl-nospool")
        let host = try DokkuHost(spool: spool.path + "/spool")
        defer { host.dir.remove(); spool.remove() }
        let marker = host.dir.file("pwned")
        try host.setConfig("shop", ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        for (app, image) in [("shop;touch \(marker)", "dokku/shop:latest"), ("$(touch \(marker))", "dokku/shop:latest"), ("-shop", "dokku/shop:latest"),
                             ("shop", "dokku/shop:$(touch \(marker))"), ("shop", "--help"), ("shop", "dokku/shop:latest\n--privileged")] {
            let r = try await host.trigger("post-release-builder", ["dockerfile", app, image])
            #expect(r.status == 2, "\(app) \(image): \(r)")
            #expect(r.stderr.contains(" !     releasectl: refusing "), "\(r)")
        }
        let hostileDeploy = try await host.trigger("post-deploy", ["shop`touch \(marker)`", "5000", "172.17.0.2", "latest"])
        #expect(hostileDeploy.status == 2, "\(hostileDeploy)")
        #expect(!FileManager.default.fileExists(atPath: marker))
        #expect(host.argv.isEmpty && host.dokkuCalls.isEmpty, "nothing was called: \(host.argv) \(host.dokkuCalls)")

        // An app whose config cannot be read: nothing is released.
        let ghost = try await host.trigger("post-release-builder", ["dockerfile", "ghost", "dokku/ghost:latest"])
        #expect(ghost.status == 1, "\(ghost)")
        #expect(ghost.stderr.contains("cannot read the config of ghost (dokku config:export --format envfile ghost failed); nothing was released"), "\(ghost)")
        #expect(host.argv.isEmpty)

        // post-deploy with no predeploy release recorded: says so, does nothing.
        let none = try await host.trigger("post-deploy", ["shop", "5000", "172.17.0.2", "latest"])
        #expect(none.status == 0, "\(none)")
        #expect(none.stdout.contains("-----> releasectl: no predeploy release of shop recorded; postdeploy not run"), "\(none)")

        // A host without releasectl: the trigger and the install trigger say how to install it.
        let bare = try DokkuHost(spool: spool.path + "/spool", releasectl: false)
        defer { bare.dir.remove() }
        try bare.setConfig("shop", ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        let missing = try await bare.trigger("post-release-builder", ["dockerfile", "shop", "dokku/shop:latest"])
        #expect(missing.status == 1, "\(missing)")
        #expect(missing.stderr.contains(" !     releasectl is not installed on this host (no releasectl on the PATH): install the package as root — apt install ./releasectl_<version>_amd64.deb"), "\(missing)")
        let install = try await bare.trigger("install", [])
        #expect(install.status == 1 && install.stderr.contains("releasectl is not installed on this host"), "\(install)")
        #expect(!FileManager.default.fileExists(atPath: spool.path + "/spool/incoming"), "nothing was spooled")
    }

    @Test("install: releasectl found, Dokku's user already in the spool's group: says so and makes the plugin's state folder",
          .enabled(if: geteuid() == 0 && UserDatabase.user(named: "rctl-paas") != nil, "needs root and script/test-users"))
    func install() async throws {
        let host = try DokkuHost(spool: "/nonexistent")
        defer { host.dir.remove() }
        let r = try await host.trigger("install", [], environment: ["DOKKU_SYSTEM_USER": "rctl-paas", "RELEASECTL_SPOOL_GROUP": "rctl-spool"])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("-----> releasectl is installed (\(host.bin)/releasectl); rctl-paas can submit releases"), "\(r)")
        var st = stat()
        #expect(stat(host.libRoot + "/config/releasectl", &st) == 0 && st.st_uid == UserDatabase.user(named: "rctl-paas")!.uid)
        let noGroup = try await host.trigger("install", [], environment: ["DOKKU_SYSTEM_USER": "rctl-paas", "RELEASECTL_SPOOL_GROUP": "no-such-group-rc"])
        #expect(noGroup.status == 1 && noGroup.stderr.contains("there is no group no-such-group-rc"), "\(noGroup)")
    }
}
