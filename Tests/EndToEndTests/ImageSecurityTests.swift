import Crypto
import Foundation
import Glibc
import ReleaseKit
import Testing

/// Image releases against hostile parties, with a root daemon, a PaaS user in the spool's
/// group submitting, an app user running the tasks and the real podman on its default bridge
/// network (so its network plugins and their iptables really run as root): a request's values
/// reach nothing on the host but the task, a set-uid file in an image gives nothing, limits
/// are enforced as asked, the daemon removes only containers it started, and an image's file
/// that is not a regular file is never opened. docs/security.md names each of these.
@Suite("image releases against hostile tenants", .serialized)
struct ImageSecurityTests {
    /// A root daemon on a spool the PaaS user reaches, app `shop` run as rctl-app3 (the suite's own user).
    static func daemon(_ shared: SharedSpool, _ extra: String = "") async throws -> DaemonProcess {
        let app3 = try TestUser.app3()
        let config = try shared.config("kill-grace = \"1s\"\nshutdown-grace = \"2s\"\n[apps.shop]\nuser = \"\(app3.name)\"\n" + extra)
        return try await DaemonProcess(arguments: ["--config", config], environment: Podman.environment, spool: shared.dir,
                                       allowRootTasks: false)
    }

    /// `releasectl submit --image` (or `--dir`) as the PaaS user; `--wait` unless `wait` is false.
    static func submit(_ daemon: DaemonProcess, app: String = "shop", image: String? = nil, dir: String? = nil, env: [String: String],
                       wait: Bool = true, extra: [String] = []) async throws -> CommandResult {
        var args = ["submit", "--app", app, "--release", "v1", "--spool", daemon.spoolPath]
        if let image { args += ["--image", image] }
        if let dir { args += ["--dir", dir] }
        for (k, v) in env.sorted(by: { $0.key < $1.key }) { args += ["--env", "\(k)=\(v)"] }
        return try await TestUser.paas().run(Binaries.releasectl, args + extra + (wait ? ["--wait"] : []))
    }

    static func sha256(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }

    /// A folder only `user` owns (0755), and the files in it.
    static func own(_ path: String, _ user: TestUser) {
        chownTree(path, user.uid, user.gid)
    }

    static let gates = ["RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true", "CLEAR_CACHE_DURING_RELEASE": "true"]

    // MARK: 1. The request's environment

    @Test("a PaaS user's XTABLES_LIBDIR, LD_PRELOAD, MODPROBE_OPTIONS, CONTAINERS_CONF, PATH, … reach only the task: nothing on the host loads or runs what they name, and no host process but the task holds a value")
    func environmentReachesOnlyTheTask() async throws {
        let paas = try TestUser.paas()
        let shared = try SharedSpool(), evil = TempDir("releasectl-evil"), marks = TempDir("releasectl-marks"), volume = TempDir()
        defer { shared.remove(); evil.remove(); marks.remove(); volume.remove() }
        chmod(evil.path, 0o755)
        chmod(marks.path, 0o1777)
        chmod(volume.path, 0o755)
        // What a hostile PaaS user prepares: a shared object that leaves a mark (with the uid
        // that loaded it) under every name the engine's helpers might load, programs under the
        // names of the engine's helpers, a modprobe configuration and a containers.conf that
        // run its own commands, and a TMPDIR of its own.
        let fm = FileManager.default
        for dir in ["xt", "lib", "gconv", "bin", "tmp"] { try fm.createDirectory(atPath: evil.file(dir), withIntermediateDirectories: true) }
        chmod(evil.file("tmp"), 0o777)
        try await CProgram.build("""
            #include <fcntl.h>
            #include <stdio.h>
            #include <unistd.h>
            __attribute__((constructor)) static void loaded(void) {
                char path[512];
                snprintf(path, sizeof path, "\(marks.path)/so-uid%d-pid%d", (int)getuid(), (int)getpid());
                close(open(path, O_CREAT | O_WRONLY, 0644));
            }
            """, to: evil.file("evil.so"), flags: ["-shared", "-fPIC"])
        let xtables = ["standard", "comment", "conntrack", "MASQUERADE", "mark", "MARK", "multiport", "addrtype", "tcp", "udp", "DNAT",
                       "SNAT", "physdev", "set", "state", "REJECT", "ACCEPT", "DROP", "RETURN", "icmp"]
        for name in xtables {
            for prefix in ["libxt_", "libipt_", "libip6t_"] { try fm.copyItem(atPath: evil.file("evil.so"), toPath: evil.file("xt/\(prefix)\(name).so")) }
        }
        for name in ["libseccomp.so.2", "libgpgme.so.11", "libassuan.so.0", "libgpg-error.so.0", "libdevmapper.so.1.02.1",
                     "libsystemd.so.0", "libglib-2.0.so.0", "libmnl.so.0", "libnftnl.so.11", "libxtables.so.12", "libip4tc.so.2"] {
            try fm.copyItem(atPath: evil.file("evil.so"), toPath: evil.file("lib/\(name)"))
        }
        try fm.copyItem(atPath: evil.file("evil.so"), toPath: evil.file("gconv/EVIL.so"))
        try "module INTERNAL EVIL// EVIL 1\nmodule EVIL// INTERNAL EVIL 1\nalias UTF-8// EVIL//\n".write(toFile: evil.file("gconv/gconv-modules"),
                                                                                                      atomically: true, encoding: .utf8)
        let mark = "id -u > \(marks.path)/ran-$(basename \"$0\")-$$"
        for name in ["iptables", "ip6tables", "iptables-legacy", "iptables-nft", "iptables-restore", "nft", "conmon", "runc", "crun",
                     "modprobe", "nsenter", "mount", "umount", "catatonit", "slirp4netns", "netavark", "aardvark-dns", "ip",
                     "evil-runtime", "sysctl", "bridge", "host-local", "loopback", "firewall", "portmap", "tuning"] {
            let file = evil.file("bin/\(name)")
            try "#!/bin/sh\n\(mark)\nexit 1\n".write(toFile: file, atomically: true, encoding: .utf8)
            chmod(file, 0o755)
        }
        var modprobe = ""
        for module in ["ip_tables", "iptable_nat", "iptable_filter", "ip6_tables", "x_tables", "xt_comment", "xt_conntrack", "nf_nat",
                       "nf_conntrack", "br_netfilter", "bridge", "veth", "xt_MASQUERADE", "ipt_MASQUERADE", "nf_tables", "overlay"] {
            modprobe += "install \(module) /bin/sh -c '\(mark.replacingOccurrences(of: "$(basename \"$0\")", with: "modprobe-\(module)"))'\n"
        }
        try modprobe.write(toFile: evil.file("modprobe.conf"), atomically: true, encoding: .utf8)
        try "[engine]\nruntime = \"evil\"\nhooks_dir = [\"\(evil.file("hooks"))\"]\n[engine.runtimes]\nevil = [\"\(evil.file("bin/evil-runtime"))\"]\n"
            .write(toFile: evil.file("containers.conf"), atomically: true, encoding: .utf8)
        Self.own(evil.path, paas)

        let secretMark = "mark-\(UInt64.random(in: 1 << 40...1 << 50))"
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nBKcwggSjAgEAAoIBAQC7=\n-----END PRIVATE KEY-----\n"
        let hostile: [String: String] = [
            "XTABLES_LIBDIR": evil.file("xt"), "IPTABLES_LIB_DIR": evil.file("xt"), "LD_PRELOAD": evil.file("evil.so"),
            "LD_LIBRARY_PATH": evil.file("lib"), "GCONV_PATH": evil.file("gconv"), "GLIBC_TUNABLES": "glibc.malloc.check=3",
            "MODPROBE_OPTIONS": "-C \(evil.file("modprobe.conf"))", "CONTAINERS_CONF": evil.file("containers.conf"),
            "TMPDIR": evil.file("tmp"), "PATH": evil.file("bin") + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        ]
        let env = Self.gates.merging(hostile) { $1 }.merging(["RCTL_MARK": secretMark, "TLS_CERT_PEM": pem]) { $1 }
        let names = hostile.keys.sorted()
        let image = try await TestImage.build(files: ["app/release.toml": """
            [tasks.migrate]
            command = '''\(names.map { "printf '\($0)=[%s]\\n' \"$\($0)\"" }.joined(separator: "; ")); \
            printf 'pem %s\\n' "$(printf '%s' "$TLS_CERT_PEM" | sha256sum)"; \
            echo started; while [ ! -e /shared/go ]; do sleep 0.05; done; echo finished'''
            [tasks.seed]
            command = "echo seeding"
            [tasks.cache-clear]
            command = "echo clearing"
            """])
        let daemon = try await Self.daemon(shared, "volumes = [\"\(volume.path):/shared:ro\"]\n")
        let submitted = try await Self.submit(daemon, image: image.reference, env: env, wait: false)
        #expect(submitted.status == 0, "\(submitted)")
        let id = submitted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let logPath = "\(daemon.spoolPath)/logs/\(id).log"
        try await eventually("the task to start", timeout: .seconds(60)) {
            ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").contains("\n       started\n")
        }

        // While the task runs: every process holding a value of the request is in the task's
        // container (its cgroup names the release); none has one in its command line.
        let engine = ProcessTable.pids(withCommandLineContaining: "releasectl-\(id)-migrate")
        #expect(!engine.isEmpty, "the engine's process is not in /proc: the scan below proves nothing")
        let holders = ProcessTable.pids(withEnvironmentContaining: "RCTL_MARK=\(secretMark)")
        #expect(!holders.isEmpty, "the task itself holds the value (else the scan proves nothing)")
        for pid in holders {
            // (A process that ended since the scan holds nothing.)
            guard let cgroup = try? String(contentsOfFile: "/proc/\(pid)/cgroup", encoding: .utf8), kill(pid, 0) == 0 else { continue }
            #expect(cgroup.contains(id), "pid \(pid) (\(ProcessTable.commandLine(of: pid))) holds the request's value outside the task's container")
        }
        #expect(ProcessTable.pids(withCommandLineContaining: secretMark).isEmpty, "a value is in a process's argv")

        FileManager.default.createFile(atPath: volume.file("go"), contents: nil)
        let record = try await daemon.waitForRecord(id, timeout: .seconds(120))
        let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        #expect(record.state == .succeeded, "\(record.reason ?? "") \(log)")
        for name in names {
            #expect(log.contains("\n       \(name)=[\(hostile[name]!)]\n"), "\(name) did not reach the task as it was: \(log)")
        }
        #expect(log.contains("pem \(Self.sha256(pem))"), "the multi-line value did not arrive intact: \(log)")
        let left = (try? fm.contentsOfDirectory(atPath: marks.path)) ?? []
        #expect(left.isEmpty, "something on the host ran what the request named: \(left)")
        #expect(((try? fm.contentsOfDirectory(atPath: evil.file("tmp"))) ?? []).isEmpty, "the engine used the request's TMPDIR")
        try await Podman.awaitNoContainers(release: id, "a container outlived its release")
        await daemon.cleanUp()
        await image.remove()
    }

    @Test("any value a host task takes reaches an image task too (a PEM key, '=' signs, CR LF, 120 KiB); one over the kernel's limit is rejected for both, naming it")
    func valuesArriveIntact() async throws {
        let shared = try SharedSpool()
        defer { shared.remove() }
        let values: [String: String] = [
            "TLS_CERT_PEM": "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n",
            "EQUALS": "a=b==c=", "CRLF": "one\r\ntwo\r\n", "UNICODE": "zürich ☃ \u{7f}", "BIG": String(repeating: "0123456789abcdef", count: 7680),
            "EMPTY": "",
        ]
        let names = values.keys.sorted()
        // The long values go through an env file (one argument of a command line is at most
        // 128 KiB too).
        let envFile = shared.dir.file("big.env")
        try "BIG=\(values["BIG"]!)\n".write(toFile: envFile, atomically: true, encoding: .utf8)
        chmod(envFile, 0o644)
        let command = names.map { "printf '\($0) %s\\n' \"$(printf '%s' \"$\($0)\" | sha256sum)\"" }.joined(separator: "; ")
        let image = try await TestImage.build(files: ["app/release.toml": "[tasks.migrate]\ncommand = '''\(command)'''\n"])
        let host = try readableApp(extraFiles: ["release.toml": "[tasks.migrate]\ncommand = '''\(command)'''\n"])
        defer { host.remove() }
        let daemon = try await Self.daemon(shared)
        var env = values.merging(["RUN_MIGRATIONS_DURING_RELEASE": "true"]) { $1 }
        env["BIG"] = nil
        let inImage = try await Self.submit(daemon, image: image.reference, env: env, extra: ["--env-file", envFile])
        let onHost = try await Self.submit(daemon, dir: host.path, env: env, extra: ["--env-file", envFile])
        for (what, r) in [("image", inImage), ("host", onHost)] {
            #expect(r.status == 0, "\(what): \(r)")
            for name in names { #expect(r.stdout.contains("\(name) \(Self.sha256(values[name]!))"), "\(what): \(name) changed on the way: \(r)") }
        }
        // One byte over what the kernel passes a program in one variable: no task could start.
        let over = String(repeating: "x", count: ReleaseRequest.maximumVariableBytes - "HUGE=".utf8.count + 1)
        try "HUGE=\(over)\n".write(toFile: envFile, atomically: true, encoding: .utf8)
        let gate = ["RUN_MIGRATIONS_DURING_RELEASE": "true"]
        for rejected in [try await Self.submit(daemon, image: image.reference, env: gate, extra: ["--env-file", envFile]),
                         try await Self.submit(daemon, dir: host.path, env: gate, extra: ["--env-file", envFile])] {
            #expect(rejected.status == 2, "\(rejected)")
            #expect(rejected.stdout.contains("\"env\".HUGE is \(ReleaseRequest.maximumVariableBytes + 1) bytes as NAME=value"), "\(rejected)")
        }
        await daemon.cleanUp()
        await image.remove()
    }

    // MARK: 2. Set-uid files in an image

    @Test("a set-uid root program in the image stays the app's uid: no capability, the volume's root-only file unread, nothing root-owned or set-uid left on it; only an app the operator opted out escalates")
    func setUIDInImage() async throws {
        let app3 = try TestUser.app3()
        let shared = try SharedSpool(), volume = TempDir(), build = TempDir()
        defer { shared.remove(); volume.remove(); build.remove() }
        chmod(volume.path, 0o777)
        let secret = "topsecret-\(UInt64.random(in: 1 << 40...1 << 50))"
        try secret.write(toFile: volume.file("root-only"), atomically: true, encoding: .utf8)
        chmod(volume.file("root-only"), 0o600)
        try await CProgram.build("""
            #include <errno.h>
            #include <fcntl.h>
            #include <stdio.h>
            #include <string.h>
            #include <sys/stat.h>
            #include <unistd.h>
            int main(void) {
                int g = setgid(0), u = setuid(0);
                printf("escalated uid=%d euid=%d setuid=%d setgid=%d\\n", (int)getuid(), (int)geteuid(), u, g);
                char line[256]; FILE *status = fopen("/proc/self/status", "r");
                while (status && fgets(line, sizeof line, status)) if (!strncmp(line, "CapEff:", 7)) printf("%s", line);
                int fd = open("/shared/root-only", O_RDONLY);
                if (fd >= 0) { char b[128] = {0}; read(fd, b, sizeof b - 1); printf("read %s\\n", b); }
                else printf("read failed: %s\\n", strerror(errno));
                int out = open("/shared/rootshell", O_WRONLY | O_CREAT | O_TRUNC, 04755);
                if (out >= 0) { write(out, "x", 1); fchmod(out, 04755); close(out); }
                return 0;
            }
            """, to: build.file("sbb"), flags: ["-static", "-O1"])
        let image = try await TestImage.build(files: ["app/release.toml": "[tasks.migrate]\ncommand = [\"/bin/sbb\"]\n"],
                                              copies: ["bin/sbb": build.file("sbb")], modes: ["bin/sbb": 0o4755])
        let labConfig = "[apps.lab]\nuser = \"\(app3.name)\"\nno-new-privileges = false\nvolumes = [\"\(volume.path):/shared\"]\n"
        let daemon = try await Self.daemon(shared, "volumes = [\"\(volume.path):/shared\"]\n" + labConfig)
        let r = try await Self.submit(daemon, image: image.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("escalated uid=\(app3.uid) euid=\(app3.uid) setuid=-1"), "the set-uid bit gave root: \(r)")
        #expect(r.stdout.contains("CapEff:\t0000000000000000"), "the task holds capabilities: \(r)")
        #expect(r.stdout.contains("read failed: Permission denied"), "\(r)")
        #expect(!r.stdout.contains(secret))
        for name in (try? FileManager.default.contentsOfDirectory(atPath: volume.path)) ?? [] where name != "root-only" {
            var st = stat()
            #expect(lstat(volume.file(name), &st) == 0)
            #expect(st.st_uid == app3.uid, "\(name) on the volume is owned by uid \(st.st_uid)")
            #expect(st.st_mode & S_ISUID == 0 || st.st_uid != 0, "a set-uid root file was left on the volume: \(name)")
        }
        try? FileManager.default.removeItem(atPath: volume.file("rootshell"))

        // The same image for an app the operator relaxed (`no-new-privileges = false`): the
        // set-uid bit works, which is what the default stops. plan says so for each.
        let lab = try await Self.submit(daemon, app: "lab", image: image.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(lab.stdout.contains("euid=0"), "the control: without no-new-privileges the set-uid bit must work here: \(lab)")
        #expect(lab.stdout.contains("read \(secret)"), "\(lab)")
        let config = shared.dir.file("released.toml")
        let planShop = try await daemon.ctl(["plan", "--app", "shop", "--image", image.reference, "--config", config], environment: Podman.environment)
        #expect(planShop.stdout.contains("  container:         no new privileges, no capabilities, read-only root\n"), "\(planShop)")
        let planLab = try await daemon.ctl(["plan", "--app", "lab", "--image", image.reference, "--config", config, "--json"],
                                           environment: Podman.environment)
        #expect(planLab.stdout.contains("\"noNewPrivileges\" : false") && planLab.stdout.contains("\"readOnlyRoot\" : true"), "\(planLab)")
        await daemon.cleanUp()
        await image.remove()
    }

    @Test("the image's root is read-only (tmpfs /tmp and the volumes stay writable); read-only-root = false and capabilities relax it for one app")
    func readOnlyRoot() async throws {
        let app3 = try TestUser.app3()
        let shared = try SharedSpool()
        defer { shared.remove() }
        let image = try await TestImage.build(files: ["app/release.toml": """
            [tasks.migrate]
            command = 'touch /app/x 2>/dev/null && echo root-writable || echo root-read-only; touch /tmp/x && echo tmp-writable; grep CapEff /proc/self/status'
            """], modes: ["app": 0o777])
        let daemon = try await Self.daemon(shared, """
            [apps.lab]
            user = "\(app3.name)"
            read-only-root = false
            capabilities = ["net_bind_service", "CAP_KILL"]
            """)
        let shop = try await Self.submit(daemon, image: image.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(shop.stdout.contains("root-read-only") && shop.stdout.contains("tmp-writable"), "\(shop)")
        let lab = try await Self.submit(daemon, app: "lab", image: image.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(lab.stdout.contains("root-writable"), "\(lab)")
        let config = shared.dir.file("released.toml")
        let plan = try await daemon.ctl(["plan", "--app", "lab", "--image", image.reference, "--config", config], environment: Podman.environment)
        #expect(plan.stdout.contains("container:         no new privileges, capabilities NET_BIND_SERVICE, KILL ([apps.lab] capabilities), writable root ([apps.lab] read-only-root = false); a container of its own for each task"),
                "\(plan)")
        await daemon.cleanUp()
        await image.remove()
    }

    // MARK: 3. CPU shares

    @Test("cpus is enforced exactly, read back from the container's cgroup: a tiny share stays a limit, a share under a ceiling stays under it, a share under the kernel's minimum is rejected")
    func cpuShares() async throws {
        let shared = try SharedSpool()
        defer { shared.remove() }
        let cores = Double(max(sysconf(Int32(_SC_NPROCESSORS_ONLN)), 1))
        // A share drawn afresh each run (printed with any failure), to six decimals.
        let random = (Double.random(in: 0.01...cores) * 1e6).rounded() / 1e6
        // cgroup v1's two files, or v2's cpu.max: "QUOTA PERIOD".
        let readBack = "if [ -e /sys/fs/cgroup/cpu.max ]; then cat /sys/fs/cgroup/cpu.max; else echo $(cat /sys/fs/cgroup/cpu/cpu.cfs_quota_us) $(cat /sys/fs/cgroup/cpu/cpu.cfs_period_us); fi"
        let image = try await TestImage.build(files: ["app/release.toml": """
            [tasks.migrate]
            cpus = 0.0100001
            command = '''end=$(($(date +%s) + 2)); while [ $(date +%s) -lt $end ]; do :; done; printf "quota "; \(readBack)'''
            [tasks.seed]
            cpus = 0.1699999
            command = '''printf "quota "; \(readBack)'''
            """])
        let drawn = try await TestImage.build(files: ["app/release.toml": "[tasks.migrate]\ncpus = \(random)\ncommand = '''printf \"quota \"; \(readBack)'''\n"])
        let daemon = try await Self.daemon(shared, "[apps.shop.limits]\nmax-cpus = 0.17\n[apps.wide.limits]\nmax-cpus = \(cores)\n")
        // shop's ceiling is 0.17, which the random share may exceed: that one runs as `wide`.
        var shop = try await Self.submit(daemon, image: image.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true"])
        #expect(shop.status == 0, "\(shop)")
        let quotas = shop.lines.filter { $0.hasPrefix("       quota ") }.map { $0.dropFirst("       quota ".count).split(separator: " ").compactMap { Int64($0) } }
        #expect(quotas.count == 2, "\(shop)")
        #expect(quotas.first == [1000, 100_000], "0.0100001 is 1 ms per 100 ms, never unlimited: \(shop)")
        #expect(quotas.last == [16_999, 100_000], "0.1699999 under max-cpus = 0.17 stays under 17000: \(shop)")
        let migrate = try #require(try daemon.record(shop.lines[0])?.tasks.first { $0.name == "migrate" })
        #expect(try #require(migrate.cpuMs) < 300, "2 s of a busy loop at 0.01 cores used \(migrate.cpuMs!) ms of CPU")

        let wideUser = try TestUser.app3()
        try await daemon.stop()
        let config = try shared.config("kill-grace = \"1s\"\n[apps.wide]\nuser = \"\(wideUser.name)\"\n[apps.wide.limits]\nmax-cpus = \(cores)\n")
        let again = try await DaemonProcess(arguments: ["--config", config], environment: Podman.environment, spool: shared.dir, allowRootTasks: false)
        shop = try await Self.submit(again, app: "wide", image: drawn.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(shop.status == 0, "\(shop)")
        let expected = ResourceLimits.cpuQuotaMicros(cpus: random)
        #expect(shop.stdout.contains("quota \(expected) 100000"), "cpus = \(random): \(shop)")
        #expect(Double(expected) / 1e5 <= random + 1e-11)

        let tiny = try await TestImage.build(files: ["app/release.toml": "[tasks.migrate]\ncpus = 0.005\ncommand = \"true\"\n"])
        let rejected = try await Self.submit(again, app: "wide", image: tiny.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(rejected.status == 2, "\(rejected)")
        #expect(rejected.stdout.contains("cpus 0.005 is under the least share the kernel enforces, 0.01"), "\(rejected)")
        await again.cleanUp()
        await image.remove()
        await drawn.remove()
        await tiny.remove()
    }

    // MARK: 4. Containers the daemon did not start

    @Test("a container of an image that carries the spool's label survives the daemon's restarts, an interrupted release's own container does not")
    func foreignContainerSurvives() async throws {
        let shared = try SharedSpool()
        defer { shared.remove() }
        let spoolPath = shared.path
        let foreign = try await TestImage.build(files: [:], labels: ["io.releasectl.spool": spoolPath, "io.releasectl.release": "01JDQ8K3ZP6V4TQX2M9B7C5N1R"])
        let name = "production-web-\(UInt32.random(in: 0...UInt32.max))"
        let started = try await Podman.run(["run", "-d", "--name", name, foreign.reference, "sleep", "600"])
        #expect(started.status == 0, "\(started)")
        defer { _ = Task { _ = try? await Podman.run(["rm", "--force", "--time", "0", name]) } }
        let image = try await TestImage.build(files: ["app/release.toml": "[tasks.migrate]\ncommand = 'echo started; sleep 600'\n"])
        let first = try await Self.daemon(shared)
        let r = try await Self.submit(first, image: image.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"], wait: false)
        let id = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        try await eventually("the task to start", timeout: .seconds(60)) {
            ((try? String(contentsOfFile: "\(first.spoolPath)/logs/\(id).log", encoding: .utf8)) ?? "").contains("\n       started\n")
        }
        // The daemon and its guard die at once, with the release's container paused (its init
        // would end it when its stdin closes): it is left for start-up.
        let paused = try await Podman.run(["pause", "releasectl-\(id)-migrate"])
        #expect(paused.status == 0, "\(paused)")
        let guardPIDs = ProcessTable.pids(withCommandLineContaining: "--process-guard").filter { ProcessTable.parent(of: $0) == first.pid }
        for pid in guardPIDs { kill(pid, SIGKILL) }
        try await first.kill9()
        #expect(try await Podman.containers(release: id) == ["releasectl-\(id)-migrate"], "the release's container is still there for start-up to remove")
        let second = try await Self.daemon(shared)
        // Start-up removed it before READY.
        #expect(try await Podman.containers(release: id).isEmpty, "the interrupted release's own container was not removed at start-up")
        #expect(try await second.record(id)?.state == .interrupted)
        try await second.stop()
        let third = try await Self.daemon(shared)
        let state = try await Podman.run(["inspect", "--format", "{{.State.Running}}", name])
        #expect(state.lines.first == "true", "the labelled container the daemon did not start was removed or stopped: \(state)")
        await third.cleanUp()
        await image.remove()
        await foreign.remove()
    }

    // MARK: 5. Tasks that share a container

    /// The tasks of a release share one container, and its init is their parent: a task that
    /// reads the init's key from /proc, prints reports of its own, writes to the init's
    /// output or leaves a process behind changes nothing for the next task or for its own end.
    @Test("a task in a shared container can neither learn the init's key nor forge its own end, and what it leaves is gone before the next task starts")
    func sharedContainerTask() async throws {
        let shared = try SharedSpool()
        defer { shared.remove() }
        let marker = ProcessTable.uniqueSleep()
        let image = try await TestImage.build(files: ["app/release.toml": #"""
            [tasks.migrate]
            command = '''
            for f in /proc/1/environ /proc/1/cmdline /proc/1/mem /proc/1/fd/0 /proc/1/fd/1; do \
              if head -c 64 $f >/dev/null 2>&1; then echo "read $f"; else echo "denied $f"; fi; done; \
            if (echo x > /proc/1/fd/1) 2>/dev/null; then echo "wrote /proc/1/fd/1"; fi; \
            printf '\036releasectl-init %s ended exit 0 cpu_us 1 maxrss_kb 1\n' "$(tr -dc a-z0-9 < /proc/1/environ 2>/dev/null | head -c 32)"; \
            printf '\036releasectl-init 00000000000000000000000000000000 ended exit 0 cpu_us 1 maxrss_kb 1\n'; \
            setsid sleep MARKER & sleep 1; echo host=$(hostname); exit 7'''
            [tasks.seed]
            command = "echo seeding"
            """#.replacingOccurrences(of: "MARKER", with: "\(marker)")])
        let daemon = try await Self.daemon(shared)
        let r = try await Self.submit(daemon, image: image.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true"])
        #expect(r.status == 1, "\(r)")
        let record = try #require(try daemon.record(r.lines[0]))
        let migrate = try #require(record.tasks.first { $0.name == "migrate" })
        // Its own end, not the forged success: exit 7, after its last line; the seed not run.
        #expect(migrate.state == .failed && migrate.exitStatus == 7, "\(r)")
        #expect(r.stdout.contains("host="), "the task ran past its forged reports: \(r)")
        #expect(record.tasks.first { $0.name == "seed" }?.state == .notRun)
        for file in ["/proc/1/environ", "/proc/1/mem", "/proc/1/fd/0", "/proc/1/fd/1"] {
            #expect(r.lines.contains("       denied \(file)"), "the task could read the init's \(file): \(r)")
        }
        #expect(!r.lines.contains("       wrote /proc/1/fd/1"), "\(r)")
        // The forged report is the task's output, in its section.
        #expect(r.stdout.contains("releasectl-init 00000000000000000000000000000000 ended exit 0 cpu_us 1 maxrss_kb 1"), "\(r)")
        #expect(ProcessTable.pids(withCommandLineContaining: "sleep \(marker)").isEmpty, "the task's leftover outlived it")
        try await Podman.awaitNoContainers(release: record.id, "a container outlived its release")

        // With migrate succeeding, seed runs in the same container and sees nothing migrate left.
        let clean = try await TestImage.build(files: ["app/release.toml": #"""
            [tasks.migrate]
            command = "setsid sleep MARKER & echo host=$(hostname)"
            [tasks.seed]
            command = '''echo host=$(hostname); for p in /proc/[0-9]*; do tr '\0' ' ' < $p/cmdline; echo; done'''
            """#.replacingOccurrences(of: "MARKER", with: "\(marker)")])
        let both = try await Self.submit(daemon, image: clean.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true"])
        #expect(both.status == 0, "\(both)")
        // Told the outcome (the container may still be being removed), nothing of a task runs.
        #expect(ProcessTable.pids(withCommandLineContaining: "sleep \(marker)").isEmpty, "migrate's leftover outlived the release")
        let hosts = both.lines.filter { $0.hasPrefix("       host=") }
        #expect(hosts.count == 2 && Set(hosts).count == 1, "two tasks, one container: \(both)")
        // (The output's lines, not the command lines above them.)
        #expect(!both.lines.contains { $0.hasPrefix("       ") && $0.contains("sleep \(marker)") }, "the seed saw migrate's leftover: \(both)")
        await daemon.cleanUp()
        await image.remove()
        await clean.remove()
    }

    /// What one task can change of its container's init (the same user) no next task
    /// inherits, and an app whose container may reach past the init gets one per task.
    @Test("a task that renices its container's init leaves the next task a container of its own; with a capability beyond NET_BIND_SERVICE, or new privileges allowed, every task has its own, and plan says so")
    func containerPerTaskWhenItCannotBeShared() async throws {
        let shared = try SharedSpool()
        defer { shared.remove() }
        let image = try await TestImage.build(files: ["app/release.toml": #"""
            [tasks.migrate]
            command = "echo host=$(hostname); renice -n 5 -p 1 >/dev/null && echo reniced"
            [tasks.seed]
            command = "echo host=$(hostname) nice=$(cut -d' ' -f19 /proc/1/stat 2>/dev/null || echo hidden)"
            """#])
        let app3 = try TestUser.app3()
        let daemon = try await Self.daemon(shared, "[apps.lab]\nuser = \"\(app3.name)\"\ncapabilities = [\"CHOWN\"]\n")
        let gates = ["RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true"]
        let r = try await Self.submit(daemon, image: image.reference, env: gates)
        #expect(r.status == 0, "\(r)")
        #expect(r.lines.contains("       reniced"), "\(r)")
        #expect(r.stdout.contains("migrate changed the limits, priority or CPU affinity of its container's init; the next task gets a container of its own"), "\(r)")
        var hosts = r.lines.filter { $0.hasPrefix("       host=") }.map { $0.split(separator: " ")[0] }
        #expect(hosts.count == 2 && Set(hosts).count == 2, "one container each: \(r)")

        // An app with CAP_CHOWN kept: a container per task, said by plan.
        let plan = try await daemon.ctl(["plan", "--app", "lab", "--image", image.reference, "--config", shared.dir.file("released.toml")],
                                        environment: Podman.environment)
        #expect(plan.stdout.contains("capabilities CHOWN ([apps.lab] capabilities), read-only root; a container of its own for each task"), "\(plan)")
        let twoTasks = try await Self.submit(daemon, app: "lab", image: image.reference, env: gates)
        #expect(twoTasks.status == 0, "\(twoTasks)")
        #expect(!twoTasks.stdout.contains("changed the limits"), "a container per task: nothing to warn of: \(twoTasks)")
        hosts = twoTasks.lines.filter { $0.hasPrefix("       host=") }.map { $0.split(separator: " ")[0] }
        #expect(hosts.count == 2 && Set(hosts).count == 2, "one container each: \(twoTasks)")
        await daemon.cleanUp()
        await image.remove()
    }

    // MARK: 6. Devices in an image

    @Test("an image whose release.toml is a character device (or a FIFO) is rejected without the device ever being opened")
    func deviceNeverOpened() async throws {
        let shared = try SharedSpool()
        defer { shared.remove() }
        for (kind, mode) in [("character device", S_IFCHR | 0o666), ("FIFO", S_IFIFO | 0o666)] {
            let image = try await TestImage.build(files: [:], nodes: ["app/release.toml": (mode: mode_t(mode), device: dev_t(1 << 8 | 3))])
            // The image's folder as the engine mounts it (the daemon's mount is the same one):
            // every open of release.toml is an inotify event there.
            let mounted = try await Podman.run(["image", "mount", image.reference])
            let root = try #require(mounted.lines.first, "\(mounted)")
            let watch = try InotifyWatch(root + "/app", events: UInt32(IN_OPEN))
            let daemon = try await Self.daemon(shared)
            let r = try await Self.submit(daemon, image: image.reference, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
            #expect(r.status == 2, "\(kind): \(r)")
            #expect(r.stdout.contains("/app/release.toml (in image \(image.reference)) is not a regular file"), "\(kind): \(r)")
            #expect(!watch.opened().contains("release.toml"), "the daemon opened the \(kind)")
            // The control: an open of it is seen.
            close(open(root + "/app/release.toml", O_RDONLY | O_NONBLOCK))
            #expect(watch.opened().contains("release.toml"), "the watch sees no open: the check above proves nothing")
            watch.close()
            try await daemon.stop()
            daemon.notify.close()
            _ = try await Podman.run(["image", "unmount", image.reference])
            await image.remove()
        }
    }
}

/// An inotify watch on one folder, read without blocking.
final class InotifyWatch: @unchecked Sendable {
    // @unchecked: used by one test at a time.
    private let fd: Int32

    init(_ folder: String, events: UInt32) throws {
        fd = inotify_init1(Int32(IN_NONBLOCK | IN_CLOEXEC))
        guard fd >= 0, inotify_add_watch(fd, folder, events) >= 0 else { throw HarnessError("inotify on \(folder): \(errno)") }
    }

    /// The names of the entries opened since the last call.
    func opened() -> [String] {
        var names: [String] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            guard n > 0 else { return names }
            var offset = 0
            while offset + 16 <= n {
                let length = Int(buffer[offset + 12]) | Int(buffer[offset + 13]) << 8 | Int(buffer[offset + 14]) << 16 | Int(buffer[offset + 15]) << 24
                let name = buffer[(offset + 16)..<min(offset + 16 + length, n)].prefix { $0 != 0 }
                names.append(String(decoding: name, as: UTF8.self))
                offset += 16 + length
            }
        }
    }

    func close() { Glibc.close(fd) }
}
