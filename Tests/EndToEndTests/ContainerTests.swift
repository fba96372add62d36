import Foundation
import Glibc
import ReleaseKit
import Testing

/// Image releases with the real daemon and the real podman: tasks in fresh containers of the
/// release's image, their files read from inside the image, the env through releasectl-init
/// only, and no container outliving its release.
@Suite("containers", .serialized)
struct ContainerTests {
    static let gates = ["RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true", "CLEAR_CACHE_DURING_RELEASE": "true"]

    /// A released.toml with short limits and `extra`.
    static func config(_ dir: TempDir, _ extra: String = "") throws -> String {
        let path = dir.file("released.toml")
        try ("kill-grace = \"1s\"\nshutdown-grace = \"2s\"\n" + extra).write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    static func daemon(_ work: TempDir, _ extra: String = "", spool: TempDir? = nil) async throws -> DaemonProcess {
        try await DaemonProcess(arguments: ["--config", try config(work, extra)], environment: Podman.environment, spool: spool)
    }

    /// `submit --image` (and `--dir` when given), waiting when asked.
    static func submit(_ daemon: DaemonProcess, app: String = "shop", image: String, dir: String? = nil, env: [String: String],
                       wait: Bool) async throws -> CommandResult {
        var args = ["submit", "--app", app, "--release", "v1", "--image", image]
        if let dir { args += ["--dir", dir] }
        for (k, v) in env.sorted(by: { $0.key < $1.key }) { args += ["--env", "\(k)=\(v)"] }
        return try await daemon.ctl(args + (wait ? ["--wait"] : []))
    }

    /// Submits without waiting and waits (bounded) until the release log shows `line` of task
    /// output (indented by seven spaces).
    static func submitAndAwait(_ daemon: DaemonProcess, image: String, env: [String: String], line: String) async throws -> String {
        let r = try await submit(daemon, image: image, env: env, wait: false)
        guard r.status == 0 else { throw HarnessError("submit: \(r)") }
        let id = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await eventually("\(line) in the log of \(id)", timeout: .seconds(60)) { log(daemon, id).contains("\n       \(line)\n") }
        return id
    }

    static func log(_ daemon: DaemonProcess, _ id: String) -> String {
        (try? String(contentsOfFile: "\(daemon.spoolPath)/logs/\(id).log", encoding: .utf8)) ?? ""
    }

    @Test("a postdeploy submitted the moment its image predeploy's --wait returned is accepted (the container is still being taken down)")
    func postdeployRightAfter() async throws {
        let work = TempDir()
        defer { work.remove() }
        let image = try await TestImage.build(files: ["app/release.toml": """
            [tasks.migrate]
            command = "echo expanded"
            [tasks.post-migrate]
            command = "echo contracted"
            """])
        let daemon = try await Self.daemon(work)
        let env = ["RUN_MIGRATIONS_DURING_RELEASE": "true", "RUN_MIGRATIONS_AFTER_DEPLOY": "true"]
        for _ in 0..<3 {
            let pre = try await Self.submit(daemon, image: image.reference, env: env, wait: true)
            #expect(pre.status == 0, "\(pre)")
            let post = try await daemon.ctl(["submit", "--app", "shop", "--release", "v1", "--image", image.reference, "--phase", "postdeploy",
                                             "--wait"] + env.flatMap { ["--env", "\($0)=\($1)"] })
            #expect(post.status == 0, "\(post)")
            #expect(post.stdout.contains("       contracted"), "\(post)")
        }
        await daemon.cleanUp()
    }

    @Test("three gated tasks run in the image, from its release.toml, output streamed, the env through the init alone, the image id recorded")
    func threeTasks() async throws {
        let work = TempDir(), shared = TempDir()
        let secret = "tok-\(UInt64.random(in: 1 << 40...1 << 50))"
        let image = try await TestImage.build(files: ["app/release.toml": """
            [tasks.migrate]
            command = '''echo "migrating in $PWD as $(id -u)"; echo "token $(echo "$API_TOKEN" | rev)"; \
            echo "proxy=$HTTP_PROXY marker=${DAEMON_SECRET_MARKER:-unset} conf=${CONTAINERS_CONF:-unset} notify=${NOTIFY_SOCKET:-unset}"; \
            echo started; while [ ! -e /shared/go ]; do sleep 0.05; done; echo finished'''
            [tasks.seed]
            command = "echo seeding"
            [tasks.cache-clear]
            command = ["echo", "clearing"]
            """])
        defer { work.remove(); shared.remove() }
        let daemon = try await Self.daemon(work, "[apps.shop]\nvolumes = [\"\(shared.path):/shared:ro\"]\n")
        let env = Self.gates.merging(["API_TOKEN": secret, "HTTP_PROXY": "http://proxy.internal:3128"]) { $1 }
        let id = try await Self.submitAndAwait(daemon, image: image.reference, env: env, line: "started")

        // Running: output is in the log before the task ends, in its container, labelled.
        #expect(!Self.log(daemon, id).contains("\n       finished"))
        let name = "releasectl-\(id)-migrate"
        #expect(try await Podman.containers(release: id) == [name])
        let labels = try await Podman.run(["inspect", "--format", "{{index .Config.Labels \"io.releasectl.task\"}}", name])
        #expect(labels.lines.first == "migrate", "\(labels)")
        // The secret reaches the container through the init's stdin: no process has it in its
        // command line (while the engine's own command line, which names the container, is there).
        #expect(!ProcessTable.pids(withCommandLineContaining: name).isEmpty, "the engine's process is not in /proc: the scan below proves nothing")
        #expect(ProcessTable.pids(withCommandLineContaining: secret).isEmpty, "the secret is in a process's argv")

        FileManager.default.createFile(atPath: shared.file("go"), contents: nil)
        let record = try await daemon.waitForRecord(id, timeout: .seconds(120))
        let log = Self.log(daemon, id)
        #expect(record.state == .succeeded, "\(log)")
        #expect(record.image == image.reference)
        #expect(record.imageID == image.id)
        #expect(record.directory == nil)
        let ran = record.tasks.filter { $0.state != .skipped }
        #expect(ran.map(\.name) == ["migrate", "seed", "cache-clear"])
        #expect(ran.allSatisfy { $0.state == .succeeded })
        #expect(log.contains("migrating in /app as 0"), "the image's working directory, its own user (allow-root-tasks): \(log)")
        #expect(log.contains("token \(String(secret.reversed()))"), "the value arrived exactly")
        #expect(log.contains("proxy=http://proxy.internal:3128 marker=unset conf=unset notify=unset"),
                "a name the engine reads arrives as any other; the daemon's own variables never reach the container: \(log)")
        #expect(log.contains("finished") && log.contains("seeding") && log.contains("clearing"))
        #expect(!log.contains(secret))
        try await Podman.awaitNoContainers(release: id, "a container outlived its release")
        await daemon.cleanUp()
        await image.remove()
    }

    /// Intake looks the image up and mounts it at once; a tag moved in between (a CI pushing
    /// the next build) must not give a plan read from one build and a run of another.
    @Test("a tag moved while intake reads the image: the release plans, runs and records one build, the one it read")
    func tagMovedDuringIntake() async throws {
        let work = TempDir()
        let first = try await TestImage.build(files: ["app/release.toml": "[tasks.migrate]\ncommand = \"echo build-a\"\n"])
        let next = try await TestImage.build(files: ["app/release.toml": "[tasks.migrate]\ncommand = \"echo build-b\"\n"])
        defer { work.remove() }
        // The engine as the daemon sees it: podman, which retags the reference to the next
        // build just before it first mounts an image.
        let engine = work.file("engine")
        try """
            #!/bin/sh
            if [ "$1 $2" = "image mount" ] && mkdir \(work.file("moved")) 2>/dev/null; then podman tag \(next.id) \(first.reference); fi
            exec podman "$@"
            """.write(toFile: engine, atomically: true, encoding: .utf8)
        #expect(chmod(engine, 0o755) == 0)
        let daemon = try await Self.daemon(work, "container-engine = \"\(engine)\"\n")
        let r = try await Self.submit(daemon, image: first.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"], wait: true)
        #expect(r.status == 0, "\(r)")
        #expect(FileManager.default.fileExists(atPath: work.file("moved")), "the tag never moved: the test proves nothing")
        let record = try #require(try daemon.record(r.lines[0]))
        #expect(r.lines.contains("       build-b"), "\(r)")
        #expect(record.imageID == next.id, "planned from one build, recorded as \(record.imageID ?? "none"): \(r)")
        await daemon.cleanUp()
        _ = try? await Podman.run(["image", "rm", "--force", first.id])
        await next.remove()
    }

    @Test("an image the engine cannot unmount after intake read it is said in the daemon's log, and the release is not held up by it")
    func unmountFailureSaid() async throws {
        let work = TempDir()
        let image = try await TestImage.build(files: ["app/release.toml": "[tasks.migrate]\ncommand = \"echo migrated\"\n"])
        defer { work.remove() }
        let engine = work.file("engine")
        try """
            #!/bin/sh
            if [ "$1 $2" = "image unmount" ]; then echo "Error: unmount refused by the test" >&2; exit 125; fi
            exec podman "$@"
            """.write(toFile: engine, atomically: true, encoding: .utf8)
        #expect(chmod(engine, 0o755) == 0)
        let daemon = try await Self.daemon(work, "container-engine = \"\(engine)\"\n")
        let r = try await Self.submit(daemon, image: image.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"], wait: true)
        #expect(r.status == 0, "\(r)")
        try await eventually("the warning in the daemon's log") {
            daemon.log.contains("the image \(image.id) stays mounted: cannot unmount it after reading it: unmount refused by the test")
        }
        await daemon.cleanUp()
        _ = try? await Podman.run(["image", "unmount", "--force", image.reference])
        await image.remove()
    }

    @Test("a failing task fails the release (exit 1) and the rest do not run; retry keeps the image; an app user is the container's user")
    func failingTask() async throws {
        let work = TempDir()
        let user = try TestUser.app1()
        let image = try await TestImage.build(files: ["app/release.toml": """
            [tasks.migrate]
            command = "echo \\"uid $(id -u) gid $(id -g)\\"; echo broken >&2; exit 3"
            [tasks.seed]
            command = "echo seeding"
            """])
        defer { work.remove() }
        let daemon = try await Self.daemon(work, "[apps.shop]\nuser = \"\(user.name)\"\n")
        let r = try await Self.submit(daemon, image: image.reference, env: Self.gates, wait: true)
        #expect(r.status == 1, "\(r)")
        #expect(r.stdout.contains("uid \(user.uid) gid \(user.gid)"), "the app's user runs the container: \(r)")
        #expect(r.stdout.contains("broken"))
        let record = try #require(try daemon.record(r.lines[0]))
        #expect(record.state == .failed)
        #expect(record.tasks.first { $0.name == "migrate" }?.exitStatus == 3)
        #expect(record.tasks.first { $0.name == "seed" }?.state == .notRun)

        let retried = try await daemon.ctl(["retry", r.lines[0], "--wait"])
        #expect(retried.status == 1, "\(retried)")
        let again = try #require(try daemon.record(retried.lines[0]))
        #expect(again.image == image.reference && again.imageID == image.id && again.retryOf == record.id)
        try await Podman.awaitNoContainers(release: record.id, "a container outlived its failed release")
        await daemon.cleanUp()
        await image.remove()
    }

    @Test("cancel and a time-out stop the container (SIGTERM, then SIGKILL after the grace) and leave none behind")
    func cancelAndTimeout() async throws {
        let work = TempDir()
        let cancelMarker = ProcessTable.uniqueSleep(), timeoutMarker = ProcessTable.uniqueSleep()
        // The cancelled one ends on SIGTERM; the timed-out one ignores it, so its time-out
        // needs SIGKILL.
        let image = try await TestImage.build(files: ["app/release.toml": """
            [tasks.migrate]
            command = "trap 'echo got TERM; exit 143' TERM; echo started; sleep \(cancelMarker) & wait"
            [tasks.seed]
            command = "trap '' TERM; echo started-seed; sleep \(timeoutMarker)"
            timeout = "2s"
            """])
        defer { work.remove() }
        let daemon = try await Self.daemon(work)

        let cancelled = try await Self.submitAndAwait(daemon, image: image.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"],
                                                      line: "started")
        let c = try await daemon.ctl(["cancel", cancelled])
        #expect(c.status == 0, "\(c)")
        let record = try await daemon.waitForRecord(cancelled, timeout: .seconds(60))
        #expect(record.state == .cancelled, "\(Self.log(daemon, cancelled))")
        #expect(Self.log(daemon, cancelled).contains("got TERM"), "SIGTERM first")
        #expect(try await Podman.containers(release: cancelled).isEmpty, "cancel left a container")
        #expect(ProcessTable.pids(withCommandLineContaining: "sleep \(cancelMarker)").isEmpty)

        let r = try await Self.submit(daemon, image: image.reference, env: ["SEED_DB_DURING_RELEASE": "true"], wait: true)
        #expect(r.status == 1, "\(r)")
        let timedOut = try #require(try daemon.record(r.lines[0]))
        #expect(timedOut.tasks.first { $0.name == "seed" }?.state == .timedOut)
        #expect(timedOut.tasks.first { $0.name == "seed" }?.reason == "timed out after its timeout of 2s")
        #expect(r.stdout.contains("seed: time limit reached; sending SIGTERM to its processes"), "\(r)")
        #expect(r.stdout.contains("seed: still running after 1s; sending SIGKILL"), "\(r)")
        #expect(try await Podman.containers(release: timedOut.id).isEmpty, "a time-out left a container")
        #expect(ProcessTable.pids(withCommandLineContaining: "sleep \(timeoutMarker)").isEmpty)
        await daemon.cleanUp()
        await image.remove()
    }

    /// The guard removes the container when the daemon dies (and its init ends the container
    /// when its stdin closes with the daemon); with the guard killed too and the container
    /// paused (its init cannot act), the restarted daemon's start-up does.
    @Test("a SIGKILLed daemon leaves no container once it restarts; the release is interrupted", arguments: [false, true])
    func killedDaemon(guardKilledToo: Bool) async throws {
        let work = TempDir()
        let marker = ProcessTable.uniqueSleep()
        let image = try await TestImage.build(files: ["app/release.toml": "[tasks.migrate]\ncommand = \"echo started; sleep \(marker)\"\n"])
        defer { work.remove() }
        let daemon = try await Self.daemon(work)
        let id = try await Self.submitAndAwait(daemon, image: image.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"], line: "started")
        #expect(try await Podman.containers(release: id) == ["releasectl-\(id)-migrate"])
        if guardKilledToo {
            // Paused, its init cannot end it when its stdin closes with the daemon: it is left
            // for the restarted daemon's start-up.
            let paused = try await Podman.run(["pause", "releasectl-\(id)-migrate"])
            #expect(paused.status == 0, "\(paused)")
            let guards = ProcessTable.pids(withCommandLineContaining: "released --process-guard").filter { ProcessTable.parent(of: $0) == daemon.pid }
            #expect(guards.count == 1, "the daemon's process guard: \(guards)")
            for pid in guards { kill(pid, SIGKILL) }
        }
        try await daemon.kill9()

        let restarted = try await Self.daemon(work, spool: daemon.spool)
        let record = try await restarted.waitForRecord(id)
        #expect(record.state == .interrupted)
        if guardKilledToo {
            // With no guard, the restarted daemon cleaned up: it ended the release's processes
            // (the engine's client and monitor carry its RELEASE_ID) and removed its container.
            #expect(restarted.log.contains("removing 1 container(s) of releases that were running when the daemon stopped: releasectl-\(id)-migrate")
                    || restarted.log.contains("process(es) left by the interrupted release(s)"), "\(restarted.log)")
        }
        #expect(try await Podman.containers(release: id).isEmpty, "a container outlived the daemon")
        #expect(ProcessTable.pids(withCommandLineContaining: "sleep \(marker)").isEmpty)
        await restarted.cleanUp()
        await image.remove()
    }

    @Test("an image that cannot be found fails the release with the engine's message; pull = never says so")
    func missingImage() async throws {
        let work = TempDir()
        defer { work.remove() }
        let daemon = try await Self.daemon(work, "[apps.offline]\npull = \"never\"\n")
        let missing = "localhost/releasectl-missing-\(UInt32.random(in: 0...UInt32.max)):v1"
        let r = try await Self.submit(daemon, image: missing, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"], wait: true)
        #expect(r.status == 1, "\(r)")
        let record = try #require(try daemon.record(r.lines[0]))
        #expect(record.state == .failed)
        let reason = try #require(record.reason)
        #expect(reason.hasPrefix("cannot pull the image \(missing): "), "\(reason)")
        #expect(reason.contains("localhost"), "the engine's own message: \(reason)")
        #expect(r.stdout.contains("pulling \(missing)"), "the pull is part of the release's output: \(r)")

        let never = try await Self.submit(daemon, app: "offline", image: missing, env: [:], wait: true)
        #expect(never.status == 1, "\(never)")
        #expect(try daemon.record(never.lines[0])?.reason == "no image \(missing): the engine does not have it and pull = never")
        await daemon.cleanUp()
    }

    @Test("a command the image does not have did not start (its container's init says so), not the task's exit status 127")
    func commandNotInImage() async throws {
        let work = TempDir()
        let image = try await TestImage.build(files: ["app/release.toml": "[tasks.migrate]\ncommand = [\"no-such-program\", \"x\"]\n"])
        defer { work.remove() }
        let daemon = try await Self.daemon(work)
        let r = try await Self.submit(daemon, image: image.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"], wait: true)
        #expect(r.status == 1, "\(r)")
        let migrate = try #require(try daemon.record(r.lines[0])?.tasks.first { $0.name == "migrate" })
        #expect(migrate.state == .failed)
        #expect(migrate.exitStatus == nil, "127 is the init's, not the task's")
        let reason = try #require(migrate.reason)
        #expect(reason.hasPrefix("could not start: command not found: no-such-program (PATH="), "\(reason)")
        #expect(reason.hasSuffix(") (in the image)"), "\(reason)")
        await daemon.cleanUp()
        await image.remove()
    }

    @Test("an image's release.toml that is an absolute link to /etc/shadow is the image's own /etc/shadow, never the host's")
    func linkResolvedInImage() async throws {
        let work = TempDir()
        let host = try String(contentsOfFile: "/etc/shadow", encoding: .utf8)
        let hostFirst = try #require(host.split(separator: "\n").first.map(String.init))
        // A busybox image has no /etc/shadow: the link leads nowhere, so there is no release.toml.
        let bare = try await TestImage.build(files: [:], links: ["app/release.toml": "/etc/shadow"])
        // One that has its own: that is what is read.
        let own = try await TestImage.build(files: ["etc/shadow": "[tasks.migrate]\ncommand = \"echo the shadow file of the image\"\n"],
                                            links: ["app/release.toml": "/etc/shadow"])
        defer { work.remove() }
        let daemon = try await Self.daemon(work)

        let plan = try await daemon.ctl(["plan", "--app", "shop", "--image", bare.reference, "--env", "RUN_MIGRATIONS_DURING_RELEASE=true"])
        #expect(plan.stdout.contains("no command"), "no release.toml in the image, so migrate has no command: \(plan)")
        let r = try await Self.submit(daemon, image: bare.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"], wait: true)
        #expect(r.status == 1, "\(r)")
        let ownRun = try await Self.submit(daemon, image: own.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"], wait: true)
        #expect(ownRun.status == 0, "\(ownRun)")
        #expect(ownRun.stdout.contains("the shadow file of the image"))

        for id in [r.lines[0], ownRun.lines[0]] {
            let record = try String(contentsOfFile: "\(daemon.spoolPath)/done/\(id).record.json", encoding: .utf8)
            for text in [record, Self.log(daemon, id), daemon.log, plan.stdout, plan.stderr, r.stdout, r.stderr] {
                #expect(!text.contains(hostFirst), "the host's /etc/shadow was read")
                #expect(!text.contains("root:"), "the host's /etc/shadow was read")
            }
        }
        await daemon.cleanUp()
        await bare.remove()
        await own.remove()
    }

    @Test("--dir's release.toml wins over the image's; plan --image reads the image; the command still runs in the image")
    func directoryWins() async throws {
        let work = TempDir()
        let image = try await TestImage.build(files: ["app/release.toml": "[tasks.migrate]\ncommand = \"echo from the image\"\n",
                                                      "app/marker": "inside the image\n"])
        let app = try AppFixture(commands: ["migrate": "echo from the directory; cat marker"])
        defer { work.remove(); app.remove() }
        let daemon = try await Self.daemon(work)

        let plan = try await daemon.ctl(["plan", "--app", "shop", "--image", image.reference, "--env", "RUN_MIGRATIONS_DURING_RELEASE=true"])
        #expect(plan.status == 0, "\(plan)")
        #expect(plan.stdout.contains("echo from the image") && plan.stdout.contains("shop in image \(image.reference)\n"), "\(plan)")
        let both = try await daemon.ctl(["plan", "--app", "shop", "--image", image.reference, "--dir", app.path,
                                         "--env", "RUN_MIGRATIONS_DURING_RELEASE=true"])
        #expect(both.stdout.contains("echo from the directory") && !both.stdout.contains("echo from the image"), "\(both)")

        let r = try await Self.submit(daemon, image: image.reference, dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"], wait: true)
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("from the directory") && r.stdout.contains("inside the image"), "\(r)")
        let record = try #require(try daemon.record(r.lines[0]))
        #expect(record.image == image.reference && record.directory == app.path)
        await daemon.cleanUp()
        await image.remove()
    }
}

/// released.toml's container keys, checked when the daemon starts and when it reloads.
@Suite("container settings")
struct ContainerSettingsTests {
    struct Case: Sendable, CustomStringConvertible {
        var toml: String
        var problem: String
        var description: String { problem }
    }

    static let cases: [Case] = [
        Case(toml: "container-engine = \"--help\"\n", problem: "container-engine must be a program's name or path"),
        Case(toml: "[apps.shop]\npull = \"sometimes\"\n", problem: "[apps.shop] pull must be missing, always or never, not \"sometimes\""),
        Case(toml: "[apps.shop]\nnetwork = \"--privileged\"\n", problem: "[apps.shop] network \"--privileged\" is not a network's name (or host)"),
        Case(toml: "[apps.shop]\ncontainer-user = \"0 --privileged\"\n",
             problem: "[apps.shop] container-user \"0 --privileged\" is not a user (name or uid[:gid])"),
        Case(toml: "[apps.shop]\nvolumes = [\"data:/data\"]\n", problem: "[apps.shop] volumes: \"data:/data\" must name absolute paths on both sides"),
        Case(toml: "[apps.shop]\nvolumes = [\"/srv:/data:rx\"]\n", problem: "[apps.shop] volumes: \"/srv:/data:rx\" may end only in :ro or :rw"),
        Case(toml: "[apps.shop]\nvolumes = [\"/srv:/data,rbind\"]\n", problem: "[apps.shop] volumes: \"/srv:/data,rbind\" holds a comma or a control character"),
        Case(toml: "[apps.shop]\nvolumes = [\"/nonexistent-releasectl:/data\"]\n",
             problem: "[apps.shop] volumes: /nonexistent-releasectl: No such file or directory"),
        Case(toml: "[apps.shop]\ncapabilities = [\"NET_BIND_SERVICE\", \"ALL\"]\n",
             problem: "[apps.shop] capabilities: \"ALL\" is not a Linux capability (such as NET_BIND_SERVICE)"),
        Case(toml: "[apps.shop]\ncapabilities = [\"CAP_SYS_ADMIN --privileged\"]\n",
             problem: "[apps.shop] capabilities: \"CAP_SYS_ADMIN --privileged\" is not a Linux capability (such as NET_BIND_SERVICE)"),
        Case(toml: "[apps.shop]\nno-new-privileges = \"no\"\n", problem: "[apps.shop] no-new-privileges must be true or false"),
        Case(toml: "[apps.shop]\nread-only-root = 0\n", problem: "[apps.shop] read-only-root must be true or false"),
        Case(toml: "[apps.shop]\nimage = \"x\"\n", problem: "unknown key \"image\" in [apps.shop] (known: user, serial-key, network, volumes, container-user, pull, no-new-privileges, capabilities, read-only-root, limits, lock-timeout, statement-timeout, lock-retries)"),
    ]

    @Test("a bad container setting stops the daemon at start, naming the file and the problem", arguments: cases)
    func atStart(_ c: Case) async throws {
        let work = TempDir()
        defer { work.remove() }
        let path = work.file("released.toml")
        try c.toml.write(toFile: path, atomically: true, encoding: .utf8)
        let daemon = try await DaemonProcess(arguments: ["--config", path], waitReady: false)
        try await eventually("released to exit on a bad configuration") { !daemon.isRunning }
        #expect(daemon.exitStatus == 1)
        #expect(daemon.log.contains("configuration error: \(path): \(c.problem)"), "\(daemon.log)")
        await daemon.cleanUp()
    }

    @Test("on SIGHUP a bad container setting keeps the old configuration, saying why")
    func onReload() async throws {
        let work = TempDir()
        defer { work.remove() }
        let path = work.file("released.toml")
        try "[apps.shop]\npull = \"always\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        let daemon = try await DaemonProcess(arguments: ["--config", path])
        try "[apps.shop]\npull = \"sometimes\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        kill(daemon.pid, SIGHUP)
        try await eventually("the reload to be refused") { daemon.log.contains("configuration not reloaded, keeping the old one") }
        #expect(daemon.log.contains("configuration not reloaded, keeping the old one: \(path): [apps.shop] pull must be missing, always or never"),
                "\(daemon.log)")
        #expect(daemon.isRunning)
        await daemon.cleanUp()
    }

    @Test("an app's no-new-privileges = false under a daemon that itself has no new privileges (the unit's NoNewPrivileges=yes) is said to have no effect, at start and on reload")
    func noNewPrivilegesHasNoEffect() async throws {
        let work = TempDir()
        defer { work.remove() }
        let path = work.file("released.toml")
        try "[apps.lab]\nno-new-privileges = false\n".write(toFile: path, atomically: true, encoding: .utf8)
        let warning = "[apps.lab] no-new-privileges = false has no effect: released itself runs with no new privileges"
        let daemon = try await DaemonProcess(arguments: ["--config", path], wrapper: ["/usr/bin/setpriv", "--no-new-privs", "--"])
        #expect(daemon.log.contains(warning), "\(daemon.log)")
        try "[apps.lab]\nno-new-privileges = false\n[apps.other]\nno-new-privileges = false\n".write(toFile: path, atomically: true, encoding: .utf8)
        kill(daemon.pid, SIGHUP)
        try await eventually("the reload") { daemon.log.contains("configuration reloaded") }
        #expect(daemon.log.contains("[apps.other] no-new-privileges = false has no effect"), "\(daemon.log)")
        await daemon.cleanUp()
        // Without no_new_privs of its own, the setting does what it says: no warning.
        let plain = try await DaemonProcess(arguments: ["--config", path])
        #expect(!plain.log.contains("has no effect"), "\(plain.log)")
        await plain.cleanUp()
    }
}
