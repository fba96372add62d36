import Foundation
import Glibc
import ReleaseKit
import Subprocess
import SystemPackage
import Testing

/// Least privilege and secrets: who may submit, where apps may live, which user tasks run as,
/// file modes, and masking of secret values everywhere they could show.
@Suite("security", .serialized)
struct SecurityTests {
    @Test("secret values are masked in the release log, logs, status, --json, records and the notify payload")
    func masking() async throws {
        let server = try await WebhookServer()
        let daemon = try await DaemonProcess()
        let app = try AppFixture(commands: [
            "migrate": "echo \"url=$DATABASE_URL\"; echo \"token=$GITHUB_TOKEN pw=$REDIS_PASSWORD\"; echo \"plain=$PLAIN\"; echo \"raw password: s3cr3t-pw\"",
        ], argv: ["seed": ["echo", "arg-with-secret-ghp_abc123TOKEN"]])
        defer { app.remove() }
        let env = [
            "RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true",
            "DATABASE_URL": "postgres://shop:s3cr3t-pw@db.internal:5432/shop",
            "GITHUB_TOKEN": "ghp_abc123TOKEN", "REDIS_PASSWORD": "redis-pass-42", "PLAIN": "visible-value",
            "NOTIFY_DURING_RELEASE": "true", "RELEASE_NOTIFY_URL": server.url,
            "SIDEKIQ_URL": "redis://:queue-pass-77@redis:6379/0",
        ]
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: env)
        #expect(r.status == 0, "\(r)")
        let id = r.lines[0]
        let secrets = ["s3cr3t-pw", "ghp_abc123TOKEN", "redis-pass-42", "queue-pass-77"]
        var outputs: [(String, String)] = [("submit --wait", r.stdout + r.stderr)]
        outputs.append(("release log", (try? String(contentsOfFile: "\(daemon.spoolPath)/logs/\(id).log", encoding: .utf8)) ?? ""))
        outputs.append(("logs", try await daemon.ctl(["logs", id]).stdout))
        outputs.append(("status", try await daemon.ctl(["status", id]).stdout))
        outputs.append(("status --json", try await daemon.ctl(["status", id, "--json"]).stdout))
        outputs.append(("list --json", try await daemon.ctl(["list", "--json"]).stdout))
        outputs.append(("record", (try? String(contentsOfFile: "\(daemon.spoolPath)/done/\(id).record.json", encoding: .utf8)) ?? ""))
        outputs.append(("daemon log", daemon.log))
        outputs.append(("notify payload", String(decoding: server.received.first?.body ?? Data(), as: UTF8.self)))
        for (name, text) in outputs {
            #expect(!text.isEmpty, "\(name) is empty")
            for secret in secrets {
                #expect(!text.contains(secret), "\(name) shows the secret \(secret)")
            }
        }
        #expect(r.stdout.contains("url=***"))
        #expect(r.stdout.contains("token=*** pw=***"))
        #expect(r.stdout.contains("plain=visible-value"), "values of ordinary variables are not masked")
        #expect(r.stdout.contains("raw password: ***"), "the password of a URL is masked on its own too")
        #expect(r.stdout.contains("arg-with-secret-***"))
        // The request file keeps the secrets (the task needs them) but is never world-readable.
        let request = "\(daemon.spoolPath)/done/\(id).json"
        #expect(try String(contentsOfFile: request, encoding: .utf8).contains("s3cr3t-pw"))
        #expect(mode(request) & 0o007 == 0, "request files are not world-readable")
        await daemon.cleanUp()
        await server.shutdown()
    }

    @Test("spool folders: drop folders 3770 (setgid, sticky), the daemon's own 2750; request, record and log files 0640")
    func modes() async throws {
        let daemon = try await DaemonProcess()
        let app = try AppFixture(commands: ["migrate": "echo hi"])
        defer { app.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        let id = r.lines[0]
        for folder in ["", "/tmp", "/incoming", "/cancel"] {
            #expect(mode(daemon.spoolPath + folder) & 0o7777 == 0o3770, "folder \(folder)")
        }
        for folder in ["/running", "/done", "/rejected", "/logs"] {
            #expect(mode(daemon.spoolPath + folder) & 0o7777 == 0o2750, "folder \(folder)")
        }
        for file in ["done/\(id).json", "done/\(id).record.json", "logs/\(id).log"] {
            #expect(mode("\(daemon.spoolPath)/\(file)") & 0o777 == 0o640, "\(file)")
        }
        await daemon.cleanUp()
    }

    @Test("the daemon refuses to start on a world-writable spool")
    func worldWritableSpool() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        let spool = dir.path + "/spool"
        try FileManager.default.createDirectory(atPath: spool + "/incoming", withIntermediateDirectories: true)
        chmod(spool + "/incoming", 0o777)
        let r = try await runProgram(Binaries.released, ["--spool", spool, "--log-target", "console"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("refusing to start: \(spool)/incoming is world-writable"), "\(r)")
    }

    @Test("the daemon refuses to start without releasectl-init beside it (or in ../libexec/releasectl), and with one others may write, naming each place it looked")
    func noTaskInit() async throws {
        let dir = TempDir()
        defer { dir.remove() }
        try FileManager.default.createDirectory(atPath: dir.file("bin"), withIntermediateDirectories: true)
        // A copy: the daemon looks beside what /proc/self/exe names, which a link would not change.
        try FileManager.default.copyItem(atPath: Binaries.released, toPath: dir.file("bin/released"))
        let spool = dir.file("spool")
        let missing = try await runProgram(dir.file("bin/released"), ["--spool", spool, "--log-target", "console"])
        #expect(missing.status == 1, "\(missing)")
        #expect(missing.stderr.contains("refusing to start: releasectl-init, which starts release tasks, is not usable (\(dir.file("bin/releasectl-init")): No such file or directory"),
                "\(missing)")
        try FileManager.default.copyItem(atPath: Binaries.taskInit, toPath: dir.file("bin/releasectl-init"))
        chmod(dir.file("bin/releasectl-init"), 0o777)
        let writable = try await runProgram(dir.file("bin/released"), ["--spool", spool, "--log-target", "console"])
        #expect(writable.status == 1 && writable.stderr.contains("releasectl-init: writable by its group or others"), "\(writable)")
        #expect(!FileManager.default.fileExists(atPath: spool + "/.lock"), "it went on to take the spool")
    }

    @Test("a second daemon on the same spool exits with a clear error")
    func secondDaemon() async throws {
        let daemon = try await DaemonProcess()
        let r = try await runProgram(Binaries.released, ["--spool", daemon.spoolPath, "--log-target", "console"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("another released is already running on \(daemon.spoolPath)"), "\(r)")
        await daemon.cleanUp()
    }

    @Test("request files owned by a user that is not allowed are rejected; allow-users admits them")
    func ownership() async throws {
        let work = TempDir()
        let app = try AppFixture()
        defer { app.remove(); work.remove() }
        guard let nobody = UserDatabase.user(named: "nobody") else { Issue.record("no user nobody"); return }
        let uid = nobody.uid
        let gid = nobody.gid
        func drop(_ daemon: DaemonProcess) throws -> String {
            let request = ReleaseRequest(id: ReleaseID.generate(), app: "shop", release: "v1", directory: app.path)
            let tmp = "\(daemon.spoolPath)/tmp/\(request.id).json"
            FileManager.default.createFile(atPath: tmp, contents: Data(request.encoded()))
            chown(tmp, uid, gid)
            rename(tmp, "\(daemon.spoolPath)/incoming/\(request.id).json")
            return request.id.rawValue
        }
        // The spool folder is setgid, so a new file takes the spool's group: use a spool whose
        // group is not the daemon's for this test.
        let daemon = try await DaemonProcess()
        chown("\(daemon.spoolPath)/tmp", 0, gid)
        let refused = try drop(daemon)
        let record = try await daemon.waitForRecord(refused)
        #expect(record.state == .rejected)
        #expect(record.reasonCode == "owner-not-allowed")
        #expect(record.reason?.contains("uid \(uid)") == true, "\(record.reason ?? "")")
        try await daemon.stop()

        let config = work.file("released.toml")
        try "allow-users = [\"nobody\"]\n".write(toFile: config, atomically: true, encoding: .utf8)
        let allowing = try await DaemonProcess(arguments: ["--config", config], spool: daemon.spool)
        let accepted = try drop(allowing)
        #expect(try await allowing.waitForRecord(accepted).state == .succeeded)
        await allowing.cleanUp()
        daemon.notify.close()
    }

    @Test("app-roots: a directory outside them, or a symlink leading out, is rejected")
    func appRoots() async throws {
        let work = TempDir()
        defer { work.remove() }
        let root = work.file("apps")
        try FileManager.default.createDirectory(atPath: root + "/shop/v1", withIntermediateDirectories: true)
        let outside = try AppFixture()
        defer { outside.remove() }
        try FileManager.default.createSymbolicLink(atPath: root + "/sneaky", withDestinationPath: outside.path)
        let config = work.file("released.toml")
        try "app-roots = [\"\(root)\"]\n".write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try await DaemonProcess(arguments: ["--config", config])
        let inside = try await daemon.submitWait(app: "shop", dir: root + "/shop/v1")
        #expect(inside.status == 0, "\(inside)")
        let out = try await daemon.submitWait(app: "shop", dir: outside.path)
        #expect(out.status == 2)
        #expect(out.stdout.contains("is outside the allowed app roots"), "\(out)")
        let link = try await daemon.submitWait(app: "shop", dir: root + "/sneaky")
        #expect(link.status == 2, "a symlink inside the root that leads out is outside: \(link)")
        let control = try await daemon.submitWait(app: "shop", dir: root + "/shop/v1\u{1b}[2J")
        #expect(control.status == 2)
        #expect(control.stdout.contains("contains control characters"), "\(control)")
        await daemon.cleanUp()
    }

    @Test("[apps.<name>] user: the daemon (as root) runs that app's tasks as that user and its groups, never as root")
    func perAppUser() async throws {
        guard geteuid() == 0 else { Issue.record("this test needs root (the daemon must be root to switch users)"); return }
        guard let nobody = UserDatabase.user(named: "nobody") else { Issue.record("no user nobody"); return }
        let uid = nobody.uid
        let work = TempDir()
        defer { work.remove() }
        let app = try AppFixture(commands: ["migrate": "echo uid=$(id -u) gid=$(id -g) groups=$(id -G) home=$HOME value=$APP_VALUE stdin=$(wc -c); touch /root/.releasectl-test-must-fail 2>&1 || echo cannot-write-root"])
        defer { app.remove() }
        chmod(app.path, 0o755)
        chmod(app.path + "/release.toml", 0o644)
        let config = work.file("released.toml")
        try "[apps.shop]\nuser = \"nobody\"\n[apps.ghost]\nuser = \"no-such-user-xyz\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let daemon = try await DaemonProcess(arguments: ["--config", config])
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1", "APP_VALUE": "a b=c"])
        #expect(r.status == 0, "\(r)")
        // Its groups are exactly the user's (root's supplementary groups are dropped), its
        // environment is the request's, and its stdin is empty.
        let groups = try userGroups("nobody", gid: nobody.gid).map(String.init).joined(separator: " ")
        #expect(r.stdout.contains("uid=\(uid) gid=\(nobody.gid) groups=\(groups) home=\(nobody.home) value=a b=c stdin=0"), "\(r.stdout)")
        #expect(r.stdout.contains("cannot-write-root"))

        // Many at once, two apps interleaved: switching users never stalls a spawn (ids are
        // changed in a freshly exec'd helper, never in a child forked from the daemon's threads).
        let burst = try await withThrowingTaskGroup(of: String.self) { group in
            for i in 0..<24 {
                group.addTask {
                    try await daemon.submit(app: i % 2 == 0 ? "shop" : "blog", release: "b\(i)", dir: app.path,
                                            env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
                }
            }
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        for id in burst {
            let record = try await daemon.waitForRecord(id, timeout: .seconds(60))
            #expect(record.state == .succeeded, "\(id): \(record.state)")
        }
        let other = try await daemon.submitWait(app: "blog", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        #expect(other.stdout.contains("uid=0"), "with --allow-root-tasks, apps without a user keep the daemon's")
        let ghost = try await daemon.submitWait(app: "ghost", dir: app.path)
        #expect(ghost.status == 2)
        #expect(ghost.stdout.contains("no-such-user-xyz does not exist"), "\(ghost)")
        try await daemon.stop()

        // Without --allow-root-tasks a root daemon never runs a task as root: an app with no
        // user is rejected, or runs as default-user.
        let strict = try await DaemonProcess(arguments: ["--config", config], spool: daemon.spool, allowRootTasks: false)
        let refused = try await strict.submitWait(app: "blog", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        #expect(refused.status == 2, "\(refused)")
        #expect(refused.stdout.contains("released runs as root and app blog has no user to run its tasks as"), "\(refused)")
        #expect(!refused.stdout.contains("uid="))
        try await strict.stop()
        try "default-user = \"nobody\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let defaulted = try await DaemonProcess(arguments: ["--config", config], spool: daemon.spool, allowRootTasks: false)
        let asNobody = try await defaulted.submitWait(app: "blog", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        #expect(asNobody.status == 0, "\(asNobody)")
        #expect(asNobody.stdout.contains("uid=\(uid) "), "default-user runs apps without a user of their own")
        await defaulted.cleanUp()
        strict.notify.close()
        await daemon.cleanUp()
    }
}

/// `releasectl-init --run-as`, which starts every host task (as the app's user when it has
/// one), run by hand with what it reads on stdin.
@Suite("run-as helper")
struct RunAsHelperTests {
    func runAs(_ stdin: [UInt8], command: [String]) async throws -> CommandResult {
        let uid = LoneUser.id, gid = LoneUser.id
        let result = try await Subprocess.run(
            .path(FilePath(Binaries.taskInit)),
            arguments: Arguments(["--run-as", "\(uid)", "\(gid)", "-", command[0]] + command),
            environment: .custom([:]),
            input: .array(stdin), output: .string(limit: 1 << 20), error: .string(limit: 1 << 20))
        let status: Int32 = switch result.terminationStatus {
        case .exited(let c): c
        case .signaled(let s): 128 + s
        }
        return CommandResult(status: status, stdout: result.standardOutput ?? "", stderr: result.standardError ?? "")
    }

    @Test("the task gets exactly the environment read from stdin, as the user, with stdin empty")
    func exactEnvironment() async throws {
        guard geteuid() == 0 else { Issue.record("this test needs root"); return }
        let r = try await runAs(Array("A=1\0B=two words\0\0".utf8), command: ["/bin/sh", "-c", "env | sort; id -u; wc -c"])
        #expect(r.status == 0, "\(r)")
        let uid = LoneUser.id
        #expect(r.lines.filter { !$0.isEmpty } == ["A=1", "B=two words", "PWD=\(FileManager.default.currentDirectoryPath)", "\(uid)", "0"], "\(r)")
    }

    @Test("an environment cut short (the daemon died while writing it) runs nothing", arguments: [
        "A=1\0", "A=1\0B=2", "", "A=1",
    ])
    func truncated(_ stdin: String) async throws {
        guard geteuid() == 0 else { Issue.record("this test needs root"); return }
        let marker = TempDir()
        defer { marker.remove() }
        chmod(marker.path, 0o777)
        let r = try await runAs(Array(stdin.utf8), command: ["/bin/sh", "-c", "touch \(marker.file("ran"))"])
        #expect(r.status == 126, "\(r)")
        #expect(r.stderr.contains("the environment was cut short; not starting the task"), "\(r)")
        #expect(!FileManager.default.fileExists(atPath: marker.file("ran")))
    }

    @Test("the starter keeps the daemon's ids while its task runs as the app's user: the task can neither signal it nor change its limits, and its report comes")
    func starterOutOfReach() async throws {
        guard geteuid() == 0 else { Issue.record("this test needs root"); return }
        let work = TempDir()
        defer { work.remove() }
        chmod(work.path, 0o777)
        let report = work.file("report")
        // The task tries every way a same-user process has at its parent, then exits 7.
        let task = "for s in TERM KILL STOP INT HUP 34 64; do kill -s $s $PPID 2>/dev/null && echo \"sent $s\"; done; "
            + "prlimit --pid $PPID --nofile=8:8 2>/dev/null && echo 'changed limits'; renice -n 9 -p $PPID >/dev/null 2>&1 && echo reniced; "
            + "echo \"uid $(id -u)\"; exit 7"
        let uid = LoneUser.id
        let r = try await runProgram("/bin/sh", ["-c", "printf 'A=1\\000\\000' | \"$0\" --run-as \(uid) \(uid) - /bin/sh sh -c \"$1\" 3>\"$2\"",
                                                 Binaries.taskInit, task, report], inheritEnvironment: false)
        #expect(r.status == 7, "\(r)")
        #expect(r.lines.filter { !$0.isEmpty } == ["uid \(uid)"], "the task reached its starter: \(r)")
        let text = try String(contentsOfFile: report, encoding: .utf8)
        #expect(text.hasPrefix("ended exit 7 cpu_us "), "\(text)")
    }

    @Test("a command that cannot be run says why, with the shell's exit codes")
    func cannotRun() async throws {
        guard geteuid() == 0 else { Issue.record("this test needs root"); return }
        let r = try await runAs([0], command: ["/no/such/program"])
        #expect(r.status == 127, "\(r)")
        #expect(r.stderr.contains("cannot run /no/such/program: No such file or directory"), "\(r)")
    }
}

/// A user's group ids as the kernel will list them (`id -G` order: the primary group first).
func userGroups(_ user: String, gid: gid_t) throws -> [gid_t] {
    var count: Int32 = 64
    var groups = Array(repeating: gid_t(0), count: 64)
    guard getgrouplist(user, gid, &groups, &count) >= 0 else { throw HarnessError("getgrouplist \(user)") }
    let list = Array(groups.prefix(Int(count)))
    return [gid] + list.filter { $0 != gid }.sorted()
}

func mode(_ path: String) -> mode_t {
    var st = stat()
    return lstat(path, &st) == 0 ? st.st_mode : 0
}

@Suite("entries made in place", .serialized)
struct InPlaceEntryTests {
    @Test("a symlink, FIFO or hard link made directly in incoming/ (no rename) is still seen and rejected")
    func createdInPlace() async throws {
        let daemon = try await DaemonProcess()
        let outside = TempDir()
        defer { outside.remove() }
        let target = outside.file("target.json")
        FileManager.default.createFile(atPath: target, contents: Data("{}".utf8))
        let incoming = daemon.spoolPath + "/incoming"
        let ids = (0..<3).map { _ in ReleaseID.generate().rawValue }
        #expect(symlink(target, "\(incoming)/\(ids[0]).json") == 0)
        #expect(mkfifo("\(incoming)/\(ids[1]).json", 0o640) == 0)
        #expect(link(target, "\(incoming)/\(ids[2]).json") == 0)
        let codes = ["symlink", "not-regular-file", "hard-link"]
        for (id, code) in zip(ids, codes) {
            let record = try await daemon.waitForRecord(id, timeout: .seconds(10))
            #expect(record.state == .rejected)
            #expect(record.reasonCode == code)
        }
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "{}", "the link's target is left alone")
        await daemon.cleanUp()
    }
}
