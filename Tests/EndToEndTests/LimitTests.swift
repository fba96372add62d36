import Foundation
import Glibc
import ReleaseKit
import Testing

/// Resource limits and accounting, with the real daemon (not under systemd here: host tasks
/// are accounted by their rusage and may not have limits) and real podman for container tasks
/// (limits through the engine, figures from the task's cgroup).
@Suite("limits and accounting", .serialized)
struct LimitTests {
    static func daemon(_ work: TempDir, _ toml: String = "", arguments: [String] = []) async throws -> DaemonProcess {
        let path = work.file("released.toml")
        try ("kill-grace = \"1s\"\n" + toml).write(toFile: path, atomically: true, encoding: .utf8)
        return try await DaemonProcess(arguments: ["--config", path] + arguments, environment: Podman.environment)
    }

    static func submitImage(_ daemon: DaemonProcess, app: String = "shop", image: String, env: [String: String],
                            wait: Bool = true) async throws -> CommandResult {
        var args = ["submit", "--app", app, "--release", "v1", "--image", image]
        for (k, v) in env.sorted(by: { $0.key < $1.key }) { args += ["--env", "\(k)=\(v)"] }
        return try await daemon.ctl(args + (wait ? ["--wait"] : []))
    }

    @Test("a container task that allocates past its memory limit fails with the OOM reason")
    func containerOOM() async throws {
        let work = TempDir()
        let image = try await TestImage.build(files: ["app/release.toml": """
            [limits]
            memory = "32M"
            [tasks.migrate]
            command = 'x=$(head -c 200000000 /dev/zero | tr "\\0" a); echo "allocated ${#x}"'
            [tasks.seed]
            command = "echo seeding"
            """])
        defer { work.remove() }
        let daemon = try await Self.daemon(work)
        let r = try await Self.submitImage(daemon, image: image.reference,
                                           env: ["RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true"])
        #expect(r.status == 1, "\(r)")
        let record = try #require(try daemon.record(r.lines[0]))
        let migrate = try #require(record.tasks.first { $0.name == "migrate" })
        #expect(migrate.state == .failed)
        #expect(migrate.reason == "killed by the kernel's OOM killer (memory limit 32 MiB)", "\(r)")
        #expect(record.reason == "migrate killed by the kernel's OOM killer (memory limit 32 MiB)")
        #expect(record.tasks.first { $0.name == "seed" }?.state == .notRun)
        #expect(r.stdout.contains("-----> migrate failed: killed by the kernel's OOM killer (memory limit 32 MiB) after "), "\(r)")
        #expect(!r.stdout.contains("allocated 200000000"))
        await daemon.cleanUp()
        await image.remove()
    }

    @Test("a fork bomb under pids is contained and fails its release; the daemon and another app's release carry on")
    func forkBomb() async throws {
        // (The shell forks once, for the bomb, and then execs its sleep: a fork of its own
        // after the bomb started would race it for the last pids, and fail the task early.)
        let work = TempDir(), app = try AppFixture(commands: ["migrate": "echo other app migrated"])
        let image = try await TestImage.build(files: ["app/release.toml": """
            [tasks.migrate]
            command = 'echo bombing; b() { b | b & }; (b) & exec sleep 600'
            pids = 32
            timeout = "6s"
            """])
        defer { work.remove(); app.remove() }
        let daemon = try await Self.daemon(work)
        let before = try FileManager.default.contentsOfDirectory(atPath: "/proc").filter { Int($0) != nil }.count
        let bomb = try await Self.submitImage(daemon, app: "bomb", image: image.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"],
                                              wait: false)
        let bombID = bomb.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await eventually("the bomb to start", timeout: .seconds(60)) {
            ((try? String(contentsOfFile: "\(daemon.spoolPath)/logs/\(bombID).log", encoding: .utf8)) ?? "").contains("\n       bombing\n")
        }
        // While it runs: another app's release goes through, and the host's processes stay few.
        let other = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(other.status == 0, "\(other)")
        let during = try FileManager.default.contentsOfDirectory(atPath: "/proc").filter { Int($0) != nil }.count
        #expect(during < before + 100, "the bomb was not contained: \(before) processes before, \(during) during")
        let record = try await daemon.waitForRecord(bombID, timeout: .seconds(60))
        #expect(record.state == .failed)
        #expect(record.tasks.first { $0.name == "migrate" }?.state == .timedOut)
        #expect(daemon.isRunning)
        #expect(try await Podman.containers(release: bombID).isEmpty)
        await daemon.cleanUp()
        await image.remove()
    }

    @Test("a host task with limits on a daemon outside systemd is rejected, saying how to get limits")
    func hostLimitsOutsideSystemd() async throws {
        let work = TempDir()
        let app = try AppFixture(extraFiles: ["release.toml": "[tasks.migrate]\ncommand = \"echo hi\"\nmemory = \"1G\"\n"])
        defer { work.remove(); app.remove() }
        let daemon = try await Self.daemon(work)
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(r.status == 2, "\(r)")
        let record = try #require(try daemon.record(r.lines[0]))
        #expect(record.reasonCode == "limits")
        #expect(record.reason == "migrate has limits (memory 1 GiB from release.toml [tasks.migrate]), which a task on the host gets only from a systemd scope, and released is not running under systemd: run released as a systemd service; or release the app as an image (its containers take the limits)")
        // Without limits of its own, an operator default applies — and rejects the same way.
        let plain = try AppFixture(commands: ["migrate": "echo hi"])
        defer { plain.remove() }
        let work2 = TempDir()
        defer { work2.remove() }
        let strict = try await Self.daemon(work2, "[limits]\npids = 100\n")
        let d = try await strict.submitWait(app: "shop", dir: plain.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(d.status == 2, "\(d)")
        #expect(try strict.record(d.lines[0])?.reason?.hasPrefix("migrate has limits (pids 100 from default in released.toml [limits])") == true)
        await daemon.cleanUp()
        await strict.cleanUp()
    }

    @Test("a limit over the operator's ceiling rejects, naming the limit, the value and the ceiling", arguments: [
        ("[limits]\nmax-memory = \"512M\"\n", "[limits]\nmemory = \"1G\"\n[tasks.migrate]\ncommand = \"echo hi\"\n",
         "release.toml [limits] asks for memory 1 GiB, over the operator's ceiling of 512 MiB (max-memory in released.toml [limits])"),
        ("[apps.shop.limits]\nmax-pids = 10\n", "[tasks.migrate]\ncommand = \"echo hi\"\npids = 100\n",
         "release.toml [tasks.migrate] asks for pids 100, over the operator's ceiling of 10 (max-pids in released.toml [apps.shop.limits])"),
        ("[limits]\nmax-cpus = 2\n[apps.shop.limits]\nmax-cpus = 1\n", "[tasks.migrate]\ncommand = \"echo hi\"\n[tasks.seed]\ncpus = 1.5\n",
         "release.toml [tasks.seed] asks for cpus 1.5, over the operator's ceiling of 1 (max-cpus in released.toml [apps.shop.limits])"),
    ])
    func ceilings(_ operatorToml: String, _ appToml: String, _ reason: String) async throws {
        let work = TempDir()
        let image = try await TestImage.build(files: ["app/release.toml": appToml])
        defer { work.remove() }
        let daemon = try await Self.daemon(work, operatorToml)
        let r = try await Self.submitImage(daemon, image: image.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(r.status == 2, "\(r)")
        let record = try #require(try daemon.record(r.lines[0]))
        #expect(record.reason == reason)
        #expect(record.reasonCode == "limits")
        let config = work.file("released.toml")
        let plan = try await daemon.ctl(["plan", "--app", "shop", "--image", image.reference, "--config", config,
                                         "--env", "RUN_MIGRATIONS_DURING_RELEASE=true"])
        #expect(plan.status == 2 && plan.stderr.contains(reason), "\(plan)")
        await daemon.cleanUp()
        await image.remove()
    }

    @Test("plan shows each effective limit and where it comes from")
    func planShowsLimits() async throws {
        let work = TempDir()
        defer { work.remove() }
        let config = work.file("released.toml")
        try "[limits]\nmemory = \"256M\"\nmax-memory = \"2G\"\n[apps.shop.limits]\npids = 200\n".write(toFile: config, atomically: true, encoding: .utf8)
        let app = try AppFixture(extraFiles: ["release.toml": "[limits]\ncpus = 1.5\n[tasks.migrate]\ncommand = \"echo hi\"\nmemory = \"1G\"\n"])
        defer { app.remove() }
        let plan = try await runProgram(Binaries.releasectl, ["plan", "--app", "shop", "--dir", app.path, "--config", config,
                                                              "--env", "RUN_MIGRATIONS_DURING_RELEASE=true"])
        #expect(plan.stdout.contains("limits: memory 1 GiB (release.toml [tasks.migrate]), cpus 1.5 (release.toml [limits]), pids 200 (default in released.toml [apps.shop.limits])"), "\(plan)")
        #expect(plan.stdout.contains("note: limits of tasks on the host are enforced by a systemd scope of their own"), "\(plan)")
        let json = try await runProgram(Binaries.releasectl, ["plan", "--app", "shop", "--dir", app.path, "--config", config, "--json",
                                                              "--env", "RUN_MIGRATIONS_DURING_RELEASE=true"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let migrate = try #require((object["tasks"] as? [[String: Any]])?.first { $0["name"] as? String == "migrate" })
        let limits = try #require(migrate["limits"] as? [String: [String: Any]])
        #expect(limits["memory"]?["value"] as? Int == 1 << 30)
        #expect(limits["cpus"]?["value"] as? Double == 1.5)
        #expect(limits["pids"]?["from"] as? String == "default in released.toml [apps.shop.limits]")
    }

    @Test("every task's record has what it used: cpuMs within 20% of a second burnt, peakMemoryBytes ≥ the 100 MiB touched; in status, the result lines, notify and the metrics")
    func accounting() async throws {
        let work = TempDir()
        let hook = try await WebhookServer()
        let burn = "import time\nwhile time.process_time() < 1.0: pass\n"
        let touch = "b = bytearray(100 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
        let app = try AppFixture(argv: ["migrate": ["/usr/bin/python3", "-c", burn], "seed": ["/usr/bin/python3", "-c", touch]])
        defer { work.remove(); app.remove() }
        let metrics = work.file("releasectl.prom")
        let daemon = try await Self.daemon(work, arguments: ["--metrics-file", metrics])
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: [
            "RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true",
            "NOTIFY_DURING_RELEASE": "true", "RELEASE_NOTIFY_URL": "http://127.0.0.1:\(hook.port)/hook",
        ])
        #expect(r.status == 0, "\(r)")
        let record = try #require(try daemon.record(r.lines[0]))
        let migrate = try #require(record.tasks.first { $0.name == "migrate" })
        let seed = try #require(record.tasks.first { $0.name == "seed" })
        let cpu = try #require(migrate.cpuMs)
        #expect(cpu >= 800 && cpu <= 1200, "cpuMs \(cpu) for a second of CPU")
        #expect(try #require(seed.peakMemoryBytes) >= 100 << 20, "peakMemoryBytes \(seed.peakMemoryBytes!) for 100 MiB touched")
        #expect(r.stdout.contains("-----> migrate succeeded in "), "\(r)")
        let line = try #require(r.lines.first { $0.hasPrefix("-----> seed succeeded in ") })
        #expect(line.contains(" · peak ") && line.contains(" MiB · cpu "), "\(line)")
        let status = try await daemon.ctl(["status", record.id])
        #expect(status.stdout.contains("succeeded · peak "), "\(status)")
        // The notify payload's record carries them.
        let payload = try #require(hook.received.first?.json)
        let tasks = try #require(payload["tasks"] as? [[String: Any]])
        #expect(tasks.first { $0["name"] as? String == "migrate" }?["cpuMs"] as? Int == Int(cpu))
        #expect(tasks.first { $0["name"] as? String == "seed" }?["peakMemoryBytes"] as? Int == Int(seed.peakMemoryBytes!))
        try await eventually("the metrics with the task figures") {
            ((try? String(contentsOfFile: metrics, encoding: .utf8)) ?? "").contains("releasectl_task_cpu_seconds_total{app=\"shop\",task=\"migrate\"}")
        }
        let file = try MetricsFile(text: String(contentsOfFile: metrics, encoding: .utf8))
        #expect(file.value("releasectl_task_peak_memory_bytes", ["app": "shop", "task": "seed"]) == Double(seed.peakMemoryBytes!))
        #expect(file.value("releasectl_task_cpu_seconds_total", ["app": "shop", "task": "migrate"]) == Double(cpu) / 1000)
        await daemon.cleanUp()
        await hook.shutdown()
    }

    @Test("a container task's figures are its own processes': the memory it touched, the CPU it used")
    func containerAccounting() async throws {
        let work = TempDir()
        let image = try await TestImage.build(files: ["app/release.toml": """
            [tasks.migrate]
            command = 'x=$(head -c 110000000 /dev/zero | tr "\\0" a); echo "${#x}"; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; cat /proc/$$/stat; echo end'
            """])
        defer { work.remove() }
        let daemon = try await Self.daemon(work)
        let r = try await Self.submitImage(daemon, image: image.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(r.status == 0, "\(r)")
        let migrate = try #require(try daemon.record(r.lines[0])?.tasks.first { $0.name == "migrate" })
        #expect(try #require(migrate.peakMemoryBytes) >= 100 << 20, "peak \(migrate.peakMemoryBytes!)")
        // The shell's own user + system time (fields 14 and 15, in clock ticks of 10 ms): the
        // task's figure holds it, and little more (its pipeline's children).
        let stat = try #require(r.lines.first { $0.contains(" (sh) ") })
        let fields = stat.split(separator: ")").last!.split(separator: " ")
        let shellMs = (Int64(fields[11])! + Int64(fields[12])!) * 10
        let cpu = try #require(migrate.cpuMs)
        #expect(cpu >= shellMs && cpu <= shellMs + 1500, "cpuMs \(cpu), the shell's own \(shellMs) ms")
        // (The engine's cgroupfs manager, as here: the folder it made under the path given is removed.)
        // (Once the container is removed, after the outcome is told.)
        try await eventually("the task's cgroup folders removed") {
            ((try? FileManager.default.contentsOfDirectory(atPath: "/sys/fs/cgroup/memory/releasectl")) ?? []).filter { $0.hasPrefix(r.lines[0]) }.isEmpty
        }
        await daemon.cleanUp()
        await image.remove()
    }

    /// The peak `/usr/bin/time -v` reports for a command (its "Maximum resident set size").
    static func timePeak(_ argv: [String], in directory: String) async throws -> Int64 {
        let r = try await runProgram("/usr/bin/time", ["-v"] + argv, workingDirectory: directory)
        #expect(r.status == 0, "\(r)")
        let line = try #require(r.stderr.split(separator: "\n").first { $0.contains("Maximum resident set size (kbytes):") })
        return try #require(Int64(line.split(separator: ":").last!.trimmingCharacters(in: .whitespaces))) * 1024
    }

    /// Within 2 MiB or 10 % of the reference, whichever is larger.
    static func near(_ figure: Int64, _ reference: Int64) -> Bool {
        abs(figure - reference) <= max(2 << 20, reference / 10)
    }

    @Test("a host task's peak outside a cgroup is its own: within 2 MiB or 10 % of /usr/bin/time -v's for the same command, tiny or touching 100 MiB")
    func hostPeakIsTheTasks() async throws {
        let work = TempDir()
        let touch = "b = bytearray(100 << 20)\nfor i in range(0, len(b), 4096): b[i] = 1\n"
        let commands = ["migrate": ["/bin/true"], "seed": ["/usr/bin/python3", "-c", touch],
                        "cache-clear": ["/bin/sh", "-c", "rm -rf tmp/cache && mkdir -p tmp/cache && echo cleared"]]
        let app = try AppFixture(argv: commands)
        defer { work.remove(); app.remove() }
        let daemon = try await Self.daemon(work)
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: [
            "RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true", "CLEAR_CACHE_DURING_RELEASE": "true",
        ])
        #expect(r.status == 0, "\(r)")
        let record = try #require(try daemon.record(r.lines[0]))
        for (name, argv) in commands {
            let task = try #require(record.tasks.first { $0.name == name })
            let peak = try #require(task.peakMemoryBytes, "\(name) has no peak")
            let reference = try await Self.timePeak(argv, in: app.path)
            #expect(Self.near(peak, reference), "\(name): peak \(peak >> 10) KiB, /usr/bin/time -v \(reference >> 10) KiB")
        }
        #expect(try #require(record.tasks.first { $0.name == "seed" }?.peakMemoryBytes) >= 100 << 20)
        await daemon.cleanUp()
    }

    @Test("tasks sharing a container have their own peaks: within 2 MiB or 10 % of /usr/bin/time -v's for the same command with the image's busybox")
    func containerPeakIsTheTasks() async throws {
        let work = TempDir()
        let commands = ["migrate": "true",
                        "seed": #"x=$(head -c 110000000 /dev/zero | tr "\0" a); echo "${#x}""#,
                        "cache-clear": "echo cleared"]
        let image = try await TestImage.build(files: ["app/release.toml": commands.sorted { $0.key < $1.key }.map {
            "[tasks.\($0.key)]\ncommand = \(tomlString($0.value))\n"
        }.joined()])
        defer { work.remove() }
        let daemon = try await Self.daemon(work)
        let r = try await Self.submitImage(daemon, image: image.reference, env: [
            "RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true", "CLEAR_CACHE_DURING_RELEASE": "true",
        ])
        #expect(r.status == 0, "\(r)")
        let record = try #require(try daemon.record(r.lines[0]))
        for (name, command) in commands {
            let task = try #require(record.tasks.first { $0.name == name })
            let peak = try #require(task.peakMemoryBytes, "\(name) has no peak")
            let reference = try await Self.timePeak(["/bin/busybox", "sh", "-c", command], in: work.path)
            #expect(Self.near(peak, reference), "\(name): peak \(peak >> 10) KiB, /usr/bin/time -v \(reference >> 10) KiB")
        }
        #expect(try #require(record.tasks.first { $0.name == "seed" }?.peakMemoryBytes) >= 100 << 20)
        await daemon.cleanUp()
        await image.remove()
    }
}
