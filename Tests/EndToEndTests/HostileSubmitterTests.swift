import CLinuxSyscalls
import Foundation
import Glibc
import ReleaseKit
import Synchronization
import Testing

/// A hostile PaaS user (a member of the spool's group, in control of its app directories)
/// against a root daemon: nothing it writes into the spool can stop, crash or mislead the
/// daemon, or make it touch anything outside the spool.
@Suite("hostile submitters", .serialized)
struct HostileSubmitterTests {
    @Test("a notify URL with a bad port or host is rejected at intake (exit 2); the daemon and another app's running release carry on")
    func notifyURL() async throws {
        let daemon = try await DaemonProcess()
        let slow = try AppFixture(commands: ["migrate": "sleep 2; echo migrated"])
        let app = try AppFixture()
        defer { slow.remove(); app.remove() }
        let other = try await daemon.submit(app: "other", dir: slow.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        try await eventually("the other app's migration to start") {
            ((try? String(contentsOfFile: "\(daemon.spoolPath)/logs/\(other).log", encoding: .utf8)) ?? "").contains("-----> migrate")
        }
        let bad = [
            ("http://127.0.0.1:70000/", "70000"), ("http://localhost:70000/hook", "70000"), ("http://[::1]:0/", "\"0\""),
            ("https://hooks.example.com:99999999999999999999/x", "not a number from 1 to 65535"),
            ("http://exa mple.com/", "space"), ("ftp://files.example.com/", "not an http:// or https:// URL"),
            ("http://:8080/", "no host"), ("http://host:/", "empty port"),
        ]
        for (url, why) in bad {
            let env = ["NOTIFY_DURING_RELEASE": "true", "RELEASE_NOTIFY_URL": "http://127.0.0.1:9/ok, \(url)"]
            let r = try await daemon.submitWait(app: "shop", dir: app.path, env: env)
            #expect(r.status == 2, "\(url): \(r)")
            #expect(r.stdout.contains("RELEASE_NOTIFY_URL"), "\(url): \(r)")
            #expect(r.stdout.contains(why), "\(url): \(r)")
            #expect(daemon.isRunning, "the daemon survived \(url)")
            let plan = try await daemon.ctl(["plan", "--app", "shop", "--dir", app.path] + env.flatMap { ["--env", "\($0.key)=\($0.value)"] })
            #expect(plan.status == 2, "plan refuses \(url) too: \(plan)")
        }
        let record = try await daemon.waitForRecord(other)
        #expect(record.state == .succeeded, "the other app's release was not disturbed: \(record)")
        #expect(daemon.isRunning)
        await daemon.cleanUp()
    }

    @Test("start-up cleanup of tmp/ never follows a folder swapped for a link (RENAME_EXCHANGE in a loop) into a root-only folder")
    func tmpSwap() async throws {
        let paas = try TestUser.paas()
        let shared = try SharedSpool()
        defer { shared.remove() }
        let config = try shared.config()
        let first = try await DaemonProcess(arguments: ["--config", config], spool: shared.dir)
        try await first.stop()
        // A root-only folder with many files, and the submitter's junk in tmp/: a folder `a`
        // full of files and a link `b` to the root-only folder, swapped over and over.
        let target = shared.dir.file("root-only")
        let count = 30_000
        try makeFiles(in: target, count: count)
        chmod(target, 0o700)
        let junk = "\(first.spoolPath)/tmp/.x.tmp"
        try makeFiles(in: junk + "/a", count: count)
        #expect(symlink(target, junk + "/b") == 0)
        _ = try await paas.shell("true")  // the user exists and can run
        chownTree(junk, paas.uid, paas.gid)
        let swapping = Atomic<Bool>(true)
        let swaps = Atomic<Int>(0)
        let swapper = Thread {
            while swapping.load(ordering: .relaxed) {
                if rc_renameat2(AT_FDCWD, junk + "/a", AT_FDCWD, junk + "/b", UInt32(RC_RENAME_EXCHANGE)) == 0 {
                    swaps.add(1, ordering: .relaxed)
                }
            }
        }
        swapper.start()
        let daemon = try await DaemonProcess(arguments: ["--config", config], spool: shared.dir)
        swapping.store(false, ordering: .relaxed)
        #expect(swaps.load(ordering: .relaxed) > 0)
        let left = (try? FileManager.default.contentsOfDirectory(atPath: target).count) ?? -1
        #expect(left == count, "every file of the root-only folder is still there (\(left) of \(count))")
        #expect(daemon.isRunning)
        await daemon.cleanUp()
    }

    @Test("a spool the CLI made before the daemon's first start: a forged record is not believed, a logs/ symlink is not followed, the daemon takes the folders over")
    func cliMadeSpool() async throws {
        let paas = try TestUser.paas()
        let shared = try SharedSpool()
        defer { shared.remove() }
        let app = try readableApp(commands: ["migrate": "echo migrating; exit 1"])
        defer { app.remove() }
        let target = shared.dir.file("root-only")
        try FileManager.default.createDirectory(atPath: target, withIntermediateDirectories: false)
        chmod(target, 0o700)
        let ctl = { (args: [String]) in try await paas.run(Binaries.releasectl, args + ["--spool", shared.path]) }
        let submitted = try await ctl(["submit", "--app", "shop", "--release", "v1", "--dir", app.path, "--env", "RUN_MIGRATIONS_DURING_RELEASE=true"])
        #expect(submitted.status == 0, "\(submitted)")
        let id = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        var st = stat()
        #expect(lstat(shared.path + "/done", &st) == 0 && st.st_uid == paas.uid, "the CLI made the folders, as the PaaS user")
        // The PaaS user forges a success and points logs/ at a root-only folder.
        let forged = "{\"version\":1,\"id\":\"\(id)\",\"app\":\"shop\",\"release\":\"v1\",\"state\":\"succeeded\",\"warnings\":[],\"tasks\":[]}"
        let plant = try await paas.shell("cd \(shared.path) && printf '%s' '\(forged)' > done/\(id).record.json && rm -r logs && ln -s \(target) logs")
        #expect(plant.status == 0, "\(plant)")
        let early = try await ctl(["wait", id, "--timeout", "1s"])
        #expect(early.status == 4, "the forged record is not believed: \(early)")

        let daemon = try await DaemonProcess(arguments: ["--config", try shared.config()], spool: shared.dir)
        let waited = try await ctl(["wait", id])
        #expect(waited.status == 1, "the real outcome: \(waited)")
        #expect(waited.stdout.contains("migrating"), "\(waited)")
        for folder in ["", "/tmp", "/incoming", "/running", "/done", "/rejected", "/cancel", "/logs"] {
            #expect(lstat(shared.path + folder, &st) == 0 && st.st_uid == 0 && st.st_mode & S_IFMT == S_IFDIR,
                    "\(folder) is a folder of the daemon's")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: target).isEmpty, "nothing was written through the link")
        let record = try #require(try daemon.record(id))
        #expect(record.state == .failed)
        #expect(daemon.log.contains("belonged to another user"), "\(daemon.log)")
        #expect(daemon.log.contains("replaced by an empty folder"), "\(daemon.log)")
        await daemon.cleanUp()
    }

    @Test("a submitter's finished requests, moved by the daemon into its own folders, survive a restart: retry still works")
    func requestsSurviveRestart() async throws {
        let paas = try TestUser.paas()
        let shared = try SharedSpool()
        defer { shared.remove() }
        let app = try readableApp(commands: ["migrate": "echo migrating"])
        defer { app.remove() }
        let ctl = { (args: [String]) in try await paas.run(Binaries.releasectl, args + ["--spool", shared.path]) }
        let daemon = try await DaemonProcess(arguments: ["--config", try shared.config()], spool: shared.dir)
        let first = try await ctl(["submit", "--app", "shop", "--release", "v1", "--dir", app.path, "--env", "RUN_MIGRATIONS_DURING_RELEASE=true", "--wait"])
        #expect(first.status == 0, "\(first)")
        let id = first.lines[0]
        var st = stat()
        #expect(lstat("\(shared.path)/done/\(id).json", &st) == 0 && st.st_uid == paas.uid, "the request is the submitter's file")
        try await daemon.stop()
        let restarted = try await DaemonProcess(arguments: ["--config", try shared.config()], spool: shared.dir)
        #expect(lstat("\(shared.path)/done/\(id).json", &st) == 0, "the request is still there after the restart")
        let retry = try await ctl(["retry", id, "--wait"])
        #expect(retry.status == 0, "\(retry)")
        #expect(try restarted.record(retry.lines[0])?.retryOf == id)
        await restarted.cleanUp()
        daemon.notify.close()
    }

    @Test("a FIFO named like a record is refused, filed under a name that is not a record's; list, status, retention, SIGTERM and --metrics-file never block on it")
    func fifo() async throws {
        let metrics = TempDir()
        defer { metrics.remove() }
        let daemon = try await DaemonProcess(arguments: ["--metrics-file", metrics.file("m.prom")])
        let name = "01M8SZZZZZZZZZZZZZZZZZZZZZ.record.json"
        try daemon.dropFIFO(name: name)
        let stem = "01M8SZZZZZZZZZZZZZZZZZZZZZ_record"
        try await eventually("the FIFO's rejection") { FileManager.default.fileExists(atPath: "\(daemon.spoolPath)/rejected/\(stem).record.json") }
        #expect(ProcessTable.isFIFO("\(daemon.spoolPath)/rejected/\(stem).json"), "the FIFO itself, kept beside its record")
        #expect(!FileManager.default.fileExists(atPath: "\(daemon.spoolPath)/rejected/\(name)"), "never under a record's name")
        let record = try #require(try daemon.rawRecord(stem))
        #expect(record["reasonCode"] as? String == "not-regular-file")
        for args in [["list"], ["status"], ["status", stem], ["list", "--json"]] {
            let r = try await runProgram(Binaries.releasectl, args + ["--spool", daemon.spoolPath], timeout: .seconds(20))
            #expect(r.status == 0, "\(args): \(r)")
        }
        // Retention and the metrics read every record at start; SIGTERM must still stop it.
        try await daemon.stop(timeout: .seconds(20))
        let again = try await DaemonProcess(arguments: ["--metrics-file", metrics.file("m.prom"), "--config", try retentionConfig(in: metrics)],
                                            spool: daemon.spool)
        try await again.stop(timeout: .seconds(20))
        await again.cleanUp()
        daemon.notify.close()
    }

    @Test("the lock cannot be held by a submitter: a group-readable or foreign .lock with a read lock on it is replaced, and the daemon starts")
    func lock() async throws {
        let paas = try TestUser.paas()
        for foreign in [false, true] {
            let shared = try SharedSpool()
            defer { shared.remove() }
            let config = try shared.config()
            let first = try await DaemonProcess(arguments: ["--config", config], spool: shared.dir)
            try await first.stop()
            let lock = shared.path + "/.lock"
            var st = stat()
            #expect(lstat(lock, &st) == 0 && st.st_mode & 0o777 == 0o600 && st.st_uid == 0, "the daemon's lock is its own, 0600")
            let open = try await paas.shell("cat \(lock)")
            #expect(open.status != 0 && open.stderr.contains("Permission denied"), "the PaaS user cannot open it: \(open)")
            // As older versions left it (0640), or planted by the PaaS user, with a read lock held.
            if foreign {
                unlink(lock)
                _ = try await paas.shell("umask 022; : > \(lock)")
            } else {
                chmod(lock, 0o640)
            }
            let holder = try LockHolder(path: lock, user: paas)
            defer { holder.stop() }
            let daemon = try await DaemonProcess(arguments: ["--config", config], spool: shared.dir)
            #expect(lstat(lock, &st) == 0 && st.st_mode & 0o777 == 0o600 && st.st_uid == 0)
            // The PaaS user's CLI still sees that a daemon runs (no "no released is running").
            let app = try readableApp()
            defer { app.remove() }
            let r = try await paas.run(Binaries.releasectl, ["submit", "--app", "shop", "--release", "v1", "--dir", app.path, "--wait", "--spool", shared.path])
            #expect(r.status == 0, "\(r)")
            #expect(!r.stderr.contains("no released is running"), "\(r)")
            let second = try await DaemonProcess(arguments: ["--config", config], spool: shared.dir, waitReady: false)
            try await eventually("the second daemon to give up") { !second.isRunning }
            #expect(second.log.contains("another released is already running"), "\(second.log)")
            await daemon.cleanUp()
        }
    }
}

extension HostileSubmitterTests {
    @Test("100,000 junk files from one submitter: another's release goes through within seconds, rejected/ stays bounded, list stays fast, retention keeps the real records")
    func flood() async throws {
        let paas = try TestUser.paas()
        let shared = try SharedSpool()
        defer { shared.remove() }
        let config = try shared.config("retention-days = 0\nretention-keep = 2\nrejected-limit = 500\n")
        let app = try readableApp(commands: ["migrate": "echo migrated"])
        defer { app.remove() }
        let daemon = try await DaemonProcess(arguments: ["--config", config], spool: shared.dir)
        // bank's real releases, before the flood.
        var real: [String] = []
        for i in 1...3 {
            let r = try await daemon.submitWait(app: "bank", release: "v\(i)", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
            #expect(r.status == 0, "\(r)")
            real.append(r.lines[0])
        }
        // The PaaS user writes the junk in tmp/, then renames it all into incoming/: most not
        // JSON at all, some well-formed requests of "bank" with ids dated in the year ~9000.
        let script = """
            import os, random, sys
            spool = sys.argv[1]
            alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
            names = []
            for i in range(100000):
                if i % 100 == 0:
                    rid = "7" + "".join(random.choice(alphabet) for _ in range(25))
                    name = rid + ".json"
                    body = '{"version":1,"id":"%s","app":"bank","release":"junk%d","directory":"/"}' % (rid, i)
                else:
                    name = "junk-%06d.json" % i
                    body = "not json %d" % i
                with open(os.path.join(spool, "tmp", name), "w") as f:
                    f.write(body)
                names.append(name)
            for name in names:
                os.rename(os.path.join(spool, "tmp", name), os.path.join(spool, "incoming", name))
            """
        let writer = Task { try await paas.run("/usr/bin/python3", ["-c", script, shared.path]) }
        // Once the flood is arriving, a real release of another submitter (root).
        try await eventually("the flood to arrive", timeout: .seconds(120), interval: .milliseconds(200)) {
            ((try? FileManager.default.contentsOfDirectory(atPath: shared.path + "/incoming").count) ?? 0) > 20_000
        }
        let clock = ContinuousClock()
        let started = clock.now
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        let took = clock.now - started
        #expect(r.status == 0, "\(r)")
        #expect(took < .seconds(10), "the real release took \(took) during the flood")
        let written = try await writer.value
        #expect(written.status == 0, "\(written)")
        try await eventually("the flood to be taken in", timeout: .seconds(600), interval: .milliseconds(500)) {
            (try FileManager.default.contentsOfDirectory(atPath: shared.path + "/incoming")).isEmpty
        }
        let rejected = try FileManager.default.contentsOfDirectory(atPath: shared.path + "/rejected")
        #expect(rejected.count <= 2 * 500, "rejected/ holds at most rejected-limit of the submitter's: \(rejected.count) files")
        let list = try await runProgram(Binaries.releasectl, ["list", "--spool", shared.path], timeout: .seconds(30))
        #expect(list.status == 0, "\(list)")
        #expect(daemon.log.contains("more file(s) of uid \(paas.uid)"), "the flood is summarized, not logged line by line")
        // Retention at the next start: bank keeps its two newest real releases; the junk,
        // whatever app and date it claims, goes by age alone.
        try await daemon.stop()
        let again = try await DaemonProcess(arguments: ["--config", config], spool: shared.dir)
        try await eventually("retention") { (try? again.record(real[0])) == nil }
        #expect(try again.record(real[1])?.state == .succeeded && again.record(real[2])?.state == .succeeded,
                "bank's newest real records are kept")
        await again.cleanUp()
        daemon.notify.close()
    }

    @Test("a task that escapes (setsid, env -i) and would read later releases' secrets is ended with its task")
    func escapee() async throws {
        _ = try TestUser.app1()
        let shared = try SharedSpool()
        defer { shared.remove() }
        let loot = shared.dir.file("loot")
        try FileManager.default.createDirectory(atPath: loot, withIntermediateDirectories: false)
        chmod(loot, 0o777)
        let thief = try readableApp(commands: ["migrate": """
            setsid env -i /bin/sh -c 'while true; do cat /proc/[0-9]*/environ 2>/dev/null | tr "\\000" "\\n" | grep -a TOKEN >> \(loot)/stolen; sleep 0.05; done' </dev/null >/dev/null 2>&1 &
            escapee=$!
            # Until it has left this group (field 5 of its stat: its process group).
            until [ "$(cut -d' ' -f5 /proc/$escapee/stat)" != "$(cut -d' ' -f5 /proc/$$/stat)" ]; do sleep 0.01; done
            echo escaped
            """])
        let victim = try readableApp(commands: ["migrate": "sleep 1; echo done"])
        defer { thief.remove(); victim.remove() }
        // Both apps run as the same user: one trust domain, which plan names.
        let config = try shared.config("default-user = \"rctl-app1\"\n")
        let daemon = try await DaemonProcess(arguments: ["--config", config], spool: shared.dir, allowRootTasks: false)
        let first = try await daemon.submitWait(app: "thief", dir: thief.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        #expect(first.status == 0, "\(first)")
        #expect(first.stdout.contains("left processes outside its process group"), "\(first)")
        #expect(ProcessTable.pids(withCommandLineContaining: "\(loot)/stolen").isEmpty, "nothing of the escapee is left")
        let second = try await daemon.submitWait(app: "victim", dir: victim.path,
                                                 env: ["RUN_MIGRATIONS_DURING_RELEASE": "1", "API_TOKEN": "victims-token-9c1e"])
        #expect(second.status == 0, "\(second)")
        let stolen = (try? String(contentsOfFile: loot + "/stolen", encoding: .utf8)) ?? ""
        #expect(!stolen.contains("victims-token-9c1e"), "the escapee read a later release's secret")
        let plan = try await daemon.ctl(["plan", "--app", "victim", "--dir", victim.path, "--config", config])
        #expect(plan.stdout.contains("rctl-app1") && plan.stdout.contains("one trust domain"), "\(plan)")
        await daemon.cleanUp()
    }
}

/// A process of `user` holding a POSIX read lock on `path` (python's lockf) until stopped.
final class LockHolder: @unchecked Sendable {
    // @unchecked: `process` is set once in init.
    let process: Process

    init(path: String, user: TestUser) throws {
        process = Process()
        let script = "import fcntl,sys,time\nf=open(sys.argv[1])\nfcntl.lockf(f, fcntl.LOCK_SH)\nprint('locked', flush=True)\ntime.sleep(300)\n"
        let command = user.wrap(["/usr/bin/python3", "-c", script, path])
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let line = pipe.fileHandleForReading.availableData
        guard String(decoding: line, as: UTF8.self).contains("locked") else { throw HarnessError("the lock holder did not lock \(path)") }
    }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// `count` empty files in a new folder `dir`.
func makeFiles(in dir: String, count: Int) throws {
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    for i in 0..<count {
        let fd = open("\(dir)/f\(i)", O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard fd >= 0 else { throw HarnessError("create \(dir)/f\(i): errno \(errno)") }
        close(fd)
    }
}

/// chown -R without following links.
func chownTree(_ path: String, _ uid: uid_t, _ gid: gid_t) {
    lchown(path, uid, gid)
    for entry in FileManager.default.enumerator(atPath: path)?.allObjects as? [String] ?? [] {
        lchown(path + "/" + entry, uid, gid)
    }
}

/// A released.toml that makes retention run over everything at start.
func retentionConfig(in dir: TempDir) throws -> String {
    let file = dir.file("retention.toml")
    try "retention-days = 0\nretention-keep = 0\n".write(toFile: file, atomically: true, encoding: .utf8)
    return file
}

extension ProcessTable {
    static func isFIFO(_ path: String) -> Bool {
        var st = stat()
        return lstat(path, &st) == 0 && st.st_mode & S_IFMT == S_IFIFO
    }
}
