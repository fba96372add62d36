import Foundation
import Glibc
import ReleaseKit
import Testing

/// integrations/kamal/hooks, run as Kamal runs a hook: `.kamal/hooks/pre-deploy` on the
/// deployer, in the app's folder, with the KAMAL_* variables (and the app's secrets) that
/// Kamal's run_hook sets. The hosts are real: sshd in network namespaces, reached over real
/// ssh with a key the test made, each with its own `released`; the two daemons share one real
/// PostgreSQL (a releasectl cluster). Only `kamal config`, which the hook reads for the image's
/// repository and the ssh settings, is a stand-in printing what Kamal prints.
@Suite("Kamal hooks", .serialized, .enabled(if: SSHHost.isAvailable, "needs root, iproute2 and openssh-server (apt-get install openssh-server)"))
struct KamalHookTests {
    static let hooks: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent("integrations/kamal/hooks").path
    }()

    /// The secret Kamal puts in every hook's environment (from .kamal/secrets): it must reach
    /// no command line.
    static let registryPassword = "registry-password-5f0c"
    static let databasePassword = "db-password-hunter2"

    /// The deployer's machine: the app's folder with the hooks copied into .kamal/hooks, a
    /// `kamal` stand-in for `kamal config`, and `ssh` through a wrapper that logs its arguments.
    struct Deployer {
        let dir: TempDir
        var project: String { dir.file("app") }
        var bin: String { dir.file("bin") }
        var sshLog: String { dir.file("ssh-argv") }
        var kamalLog: String { dir.file("kamal-argv") }

        init(repository: String, key: SSHClientKey) throws {
            dir = TempDir("releasectl-kamal")
            let fm = FileManager.default
            try fm.createDirectory(atPath: dir.file("app/.kamal/hooks"), withIntermediateDirectories: true)
            try fm.createDirectory(atPath: dir.file("bin"), withIntermediateDirectories: true)
            for hook in ["pre-deploy", "post-deploy", "releasectl-kamal"] {
                try fm.copyItem(atPath: KamalHookTests.hooks + "/" + hook, toPath: dir.file("app/.kamal/hooks/" + hook))
            }
            // What `kamal config -d production` prints (Ruby's YAML of Kamal's configuration).
            let yaml = """
                ---
                :roles:
                - workers
                - web
                :hosts:
                - 192.0.2.1
                :primary_host: 192.0.2.1
                :version: v1
                :repository: \(repository)
                :absolute_image: \(repository):v1
                :service_with_version: shop-v1
                :volume_args: []
                :ssh_options:
                  :user: root
                  :port: 22
                  :keepalive: true
                  :keepalive_interval: 30
                  :keys:
                  - "\(key.privateKey)"
                  :keys_only: true
                  :config: "\(key.configFile)"
                  :log_level: :fatal
                :sshkit:
                  :log_level: :fatal
                :builder:
                  :arch: amd64
                :logging:
                - "--log-opt"
                - max-size=10m

                """
            try yaml.write(toFile: dir.file("kamal-config.yml"), atomically: true, encoding: .utf8)
            try Self.script(dir.file("bin/kamal"), """
                #!/bin/sh
                printf '%s\\n' "$*" >> \(dir.file("kamal-argv"))
                [ "$*" = "config -d production" ] || { echo "kamal stand-in: only config -d production" >&2; exit 1; }
                cat \(dir.file("kamal-config.yml"))
                """)
            try Self.script(dir.file("bin/ssh"), "#!/bin/sh\nprintf '%s\\n' \"$*\" >> \(dir.file("ssh-argv"))\nexec /usr/bin/ssh \"$@\"\n")
        }

        static func script(_ path: String, _ text: String) throws {
            try text.write(toFile: path, atomically: true, encoding: .utf8)
            chmod(path, 0o755)
        }

        /// The local env file the hook sends on stdin (the gates).
        func setLocalEnv(_ text: String) throws {
            try text.write(toFile: project + "/.kamal/releasectl.env", atomically: true, encoding: .utf8)
        }

        /// Runs a hook as Kamal does: `.kamal/hooks/HOOK` from the app's folder, with run_hook's
        /// variables (Kamal::Tags, the hosts, the lock, the command) and the app's secrets.
        func run(_ hook: String, version: String, hosts: [String], command: String = "deploy", extra: [String: String] = [:]) async throws -> CommandResult {
            var env = [
                "PATH": bin + ":/usr/local/bin:/usr/bin:/bin", "HOME": dir.path,
                "KAMAL_RECORDED_AT": "2026-11-25T13:00:00Z", "KAMAL_PERFORMER": "deployer@example.com",
                "KAMAL_DESTINATION": "production", "KAMAL_VERSION": version, "KAMAL_SERVICE_VERSION": "shop@\(version.prefix(7))",
                "KAMAL_SERVICE": "shop", "KAMAL_HOSTS": hosts.joined(separator: ","), "KAMAL_COMMAND": command,
                "KAMAL_LOCK": hook == "pre-deploy" ? "true" : "false",
                "KAMAL_REGISTRY_PASSWORD": KamalHookTests.registryPassword,
            ]
            if hook == "post-deploy" { env["KAMAL_RUNTIME"] = "42" }
            env.merge(extra) { $1 }
            return try await runProgram("/bin/sh", ["-c", ".kamal/hooks/\(hook)"], environment: env, inheritEnvironment: false,
                                        workingDirectory: project, timeout: .seconds(120))
        }

        var sshArgv: String { (try? String(contentsOfFile: sshLog, encoding: .utf8)) ?? "" }
        var kamalArgv: String { (try? String(contentsOfFile: kamalLog, encoding: .utf8)) ?? "" }
    }

    /// A value an app's secrets may hold, as Docker's env-file format takes it (literally):
    /// shell syntax, quotes, a backslash, a dollar.
    static let oddValue = #"$(touch /trace/pwned) "q" 'x' \back $HOME `id`"#

    /// Kamal's env file of the web role on a host, as Kamal uploads it (Docker's env-file format).
    static func writeRoleEnv(_ host: SSHHost, greeting: String) throws {
        try host.write(".kamal/apps/shop-production/env/roles/web.env",
                       "DATABASE_URL=postgres://shop:\(databasePassword)@db/shop\nGREETING=\(greeting)\nODD=\(oddValue)\n")
    }

    /// A cluster node for image releases: its released.toml mounts `trace` into the app's
    /// containers (so a test can count runs) and names the cluster.
    static func node(_ pg: TestPostgres, _ database: String, _ name: String, trace: String, in work: TempDir) async throws -> DaemonProcess {
        let path = work.file("released-\(name).toml")
        try ("kill-grace = \"1s\"\n" + (try pg.clusterTOML(database: database, node: name, in: work))
             + "barrier-timeout = \"3s\"\n[apps.shop]\nvolumes = [\"\(trace):/trace\"]\n").write(toFile: path, atomically: true, encoding: .utf8)
        return try await DaemonProcess(arguments: ["--config", path], environment: Podman.environment)
    }

    static func lines(_ path: String) -> [String] {
        ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    @Test("pre-deploy on two hosts over ssh, two released on one PostgreSQL: the migration runs once, both hosts report, the hook exits with the release's status (0, 1, 2); post-deploy runs the postdeploy once; a rollback runs nothing",
          .enabled(if: TestPostgres.isAvailable, "needs PostgreSQL (apt-get install postgresql)"))
    func preDeploy() async throws {
        try Podman.check()
        let pg = try await TestPostgres.start()
        let work = TempDir()
        let trace = work.file("trace")
        try FileManager.default.createDirectory(atPath: trace, withIntermediateDirectories: true)
        chmod(trace, 0o777)
        let good = try await TestImage.build(files: [
            "app/release.toml": "[tasks.migrate]\ncommand = \"echo $RELEASE_ID >> /trace/runs; echo \\\"migrating with $GREETING and $DATABASE_URL\\\"; printf 'odd=%s\\\\n' \\\"$ODD\\\"\"\n"
                + "[tasks.post-migrate]\ncommand = \"echo $RELEASE_ID >> /trace/post-runs; echo warmed up after the switch\"\n",
        ])
        let bad = try await TestImage.build(files: [
            "app/release.toml": "[tasks.migrate]\ncommand = \"echo $RELEASE_ID >> /trace/failed-runs; echo 'ERROR: relation \\\"books\\\" already exists' >&2; exit 1\"\n",
        ])
        // One repository, as Kamal's: v1 the good build, v2 the bad one, v3 and v4 the good one again.
        let repository = String(good.reference.dropLast(":v1".count))
        for (image, tag) in [(bad, "v2"), (good, "v3"), (good, "v4")] {
            let tagged = try await Podman.run(["tag", image.reference, "\(repository):\(tag)"])
            #expect(tagged.status == 0, "\(tagged)")
        }
        let key = try await SSHClientKey()
        let db = try await pg.createDatabase()
        let a = try await Self.node(pg, db, "a", trace: trace, in: work), b = try await Self.node(pg, db, "b", trace: trace, in: work)
        let hostA = try await SSHHost(key: key, spool: a.spoolPath), hostB = try await SSHHost(key: key, spool: b.spoolPath)
        let deployer = try Deployer(repository: repository, key: key)
        defer { work.remove(); key.remove(); deployer.dir.remove() }
        try Self.writeRoleEnv(hostA, greeting: "hello from a's env file")
        try Self.writeRoleEnv(hostB, greeting: "hello from b's env file")
        try deployer.setLocalEnv("RUN_MIGRATIONS_DURING_RELEASE=true\nRUN_MIGRATIONS_AFTER_DEPLOY=true\n")
        let hosts = [hostA.address, hostB.address]

        let v1 = try await deployer.run("pre-deploy", version: "v1", hosts: hosts)
        #expect(v1.status == 0, "\(v1)")
        #expect(Self.lines(trace + "/runs").count == 1, "the migration ran once: \(Self.lines(trace + "/runs"))")
        for host in hosts {
            #expect(v1.stdout.contains("[\(host)]        migrating with hello from "), "every host streams the output: \(v1)")
            #expect(v1.stdout.contains("[\(host)]        migrating with hello from ") && v1.stdout.contains("'s env file and ***\n"), "the role's env file on the host, the secret masked: \(v1)")
        }
        #expect(v1.stdout.contains("odd=\(Self.oddValue)\n"), "a value of the role's env file reaches the task as written: \(v1)")
        #expect(!FileManager.default.fileExists(atPath: trace + "/pwned"), "nothing of a value ran")
        #expect(v1.stdout.contains("-----> releasectl: predeploy of shop v1 on \(hosts[0]) \(hosts[1]) (\(repository):v1)"), "\(v1)")
        #expect(v1.stdout.contains("-----> releasectl: predeploy of shop v1: \(hosts[0]) succeeded, \(hosts[1]) succeeded"), "\(v1)")
        var ranOn: Set<String> = []
        for (node, host) in [(a, hostA), (b, hostB)] {
            let list = try await node.ctl(["list", "--app", "shop", "--json"])
            let records = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]], "\(list)")
            let record = try #require(records.first)
            #expect(record["state"] as? String == "succeeded" && record["release"] as? String == "v1" && record["image"] as? String == "\(repository):v1")
            let cluster = try #require(record["cluster"] as? [String: Any])
            #expect(cluster["deployKey"] as? String == "shop/production/v1")
            ranOn.insert(cluster["ranOn"] as? String ?? "?")
            #expect(host.argv.contains("--deploy-key shop/production/v1") && host.argv.contains("--env-file /dev/stdin"), "\(host.argv)")
        }
        #expect(ranOn.count == 1, "both report the one run: \(ranOn)")
        #expect(deployer.kamalArgv == "config -d production\n")
        let ssh = deployer.sshArgv
        #expect(ssh.contains("-l root -p 22 -F \(key.configFile) -i \(key.privateKey) -o IdentitiesOnly=yes -- \(hosts[0]) sh -c "), "Kamal's ssh settings: \(ssh)")
        for secret in [Self.databasePassword, Self.registryPassword] {
            #expect(!ssh.contains(secret) && !hostA.argv.contains(secret) && !hostB.argv.contains(secret), "a secret in a command line")
            #expect(!v1.stdout.contains(secret) && !v1.stderr.contains(secret))
        }

        // post-deploy once every role booted: the postdeploy runs once, after both hosts submitted
        // it (at once here: the predeploys' containers may still be being taken down).
        let post = try await deployer.run("post-deploy", version: "v1", hosts: hosts)
        #expect(post.status == 0, "\(post)")
        #expect(Self.lines(trace + "/post-runs").count == 1, "\(Self.lines(trace + "/post-runs"))")
        for host in hosts { #expect(post.stdout.contains("[\(host)]        warmed up after the switch"), "\(post)") }
        #expect(post.stdout.contains("-----> releasectl: postdeploy of shop v1: \(hosts[0]) succeeded, \(hosts[1]) succeeded"), "\(post)")
        #expect(hostA.argv.contains("submit --phase postdeploy --app shop --release v1 --deploy-key shop/production/v1"), "\(hostA.argv)")

        // A postdeploy only one host submits: the cluster's barrier fails it, naming the other.
        let v3 = try await deployer.run("pre-deploy", version: "v3", hosts: hosts)
        #expect(v3.status == 0, "\(v3)")
        let lonely = try await deployer.run("post-deploy", version: "v3", hosts: hosts, extra: ["RELEASECTL_HOSTS": hosts[0]])
        #expect(lonely.status == 1, "\(lonely)")
        #expect(lonely.stdout.contains("node(s) b took part in the predeploy but did not submit the postdeploy"), "\(lonely)")
        #expect(Self.lines(trace + "/post-runs").count == 1)

        // A failing migration: runs once, both hosts show it, the hook exits 1.
        let v2 = try await deployer.run("pre-deploy", version: "v2", hosts: hosts)
        #expect(v2.status == 1, "\(v2)")
        #expect(Self.lines(trace + "/failed-runs").count == 1)
        for host in hosts { #expect(v2.stdout.contains("[\(host)]        ERROR: relation \"books\" already exists"), "\(v2)") }
        #expect(v2.stdout.contains("-----> releasectl: predeploy of shop v2: \(hosts[0]) failed, \(hosts[1]) failed"), "\(v2)")
        #expect(v2.stderr.contains("releasectl: the release tasks did not succeed: Kamal stops the deploy; the running version stays live"), "\(v2)")

        // A gate typo in the local env: rejected on both hosts, the hook exits 2, nothing runs.
        try deployer.setLocalEnv("RUN_MIGRATIONS_DURING_RELEASE=ture\n")
        let v4 = try await deployer.run("pre-deploy", version: "v4", hosts: hosts)
        #expect(v4.status == 2, "\(v4)")
        #expect(v4.stdout.contains("RUN_MIGRATIONS_DURING_RELEASE") && v4.stdout.contains("ture"), "\(v4)")
        #expect(v4.stdout.contains("-----> releasectl: predeploy of shop v4: \(hosts[0]) rejected (2), \(hosts[1]) rejected (2)"), "\(v4)")
        #expect(Self.lines(trace + "/runs").count == 2, "v1 and v3 ran, once each")

        // A rollback: nothing is submitted anywhere.
        let before = deployer.sshArgv
        let rollback = try await deployer.run("pre-deploy", version: "v1", hosts: hosts, command: "rollback")
        #expect(rollback.status == 0, "\(rollback)")
        #expect(rollback.stdout.contains("-----> releasectl: rollback to v1: release tasks are not run on a rollback"), "\(rollback)")
        #expect(deployer.sshArgv == before)

        for n in [a, b] { await n.cleanUp() }
        await hostA.stop()
        await hostB.stop()
        await pg.remove()
        await good.remove()
        await bad.remove()
        _ = try? await Podman.run(["image", "rm", "--force", "\(repository):v2", "\(repository):v3", "\(repository):v4"])
    }

    @Test("hostile KAMAL_HOSTS, versions and destinations never reach ssh; an unreachable host, a host without releasectl, a missing env file: exit 2 saying what to do")
    func badInput() async throws {
        let key = try await SSHClientKey()
        let spool = TempDir("releasectl-nospool")
        let noEnv = try await SSHHost(key: key, spool: spool.path + "/spool")
        let noReleasectl = try await SSHHost(key: key, spool: spool.path + "/spool", releasectl: false)
        try Self.writeRoleEnv(noReleasectl, greeting: "hi")
        let unreachable = try await NetworkNamespace()   // an address with nothing listening
        let deployer = try Deployer(repository: "localhost/shop", key: key)
        defer { key.remove(); spool.remove(); deployer.dir.remove() }
        let marker = deployer.dir.file("pwned")

        for hosts in [["-oProxyCommand=touch \(marker)"], [noEnv.address, "-oProxyCommand=sh -c 'touch \(marker)'"], ["host;touch \(marker)"],
                      ["$(touch \(marker))"], ["root@\(noEnv.address)"], ["\(noEnv.address)\n-oProxyCommand=touch \(marker)"]] {
            let r = try await deployer.run("pre-deploy", version: "v1", hosts: hosts)
            #expect(r.status == 2, "\(hosts): \(r)")
            #expect(r.stderr.contains("releasectl: refusing "), "\(r)")
        }
        for version in ["v1 $(touch \(marker))", "v1;touch \(marker)", "-v1", "v1`touch \(marker)`", "", String(repeating: "v", count: 129)] {
            let r = try await deployer.run("pre-deploy", version: version, hosts: [noEnv.address])
            #expect(r.status == 2, "\(version): \(r)")
            #expect(r.stderr.contains("releasectl: refusing KAMAL_VERSION"), "\(r)")
        }
        let destination = try await deployer.run("pre-deploy", version: "v1", hosts: [noEnv.address], extra: ["KAMAL_DESTINATION": "../../etc"])
        #expect(destination.status == 2 && destination.stderr.contains("refusing KAMAL_DESTINATION"), "\(destination)")
        #expect(!FileManager.default.fileExists(atPath: marker))
        #expect(deployer.sshArgv.isEmpty, "ssh never ran: \(deployer.sshArgv)")

        // No env file on the host: what Kamal does when, and what to do.
        let missing = try await deployer.run("pre-deploy", version: "v1", hosts: [noEnv.address])
        #expect(missing.status == 2, "\(missing)")
        #expect(missing.stdout.contains("[\(noEnv.address)] no env file .kamal/apps/shop-production/env/roles/web.env in \(noEnv.home) on this host: Kamal writes it when it boots the role, after pre-deploy. On a first deploy run RELEASECTL_SKIP=true kamal deploy once"), "\(missing)")
        #expect(noEnv.argv.isEmpty, "releasectl did not run")

        // No releasectl on the host.
        let bare = try await deployer.run("pre-deploy", version: "v1", hosts: [noReleasectl.address])
        #expect(bare.status == 2, "\(bare)")
        #expect(bare.stdout.contains("[\(noReleasectl.address)] releasectl is not installed on this host: install the package (apt install ./releasectl_<version>_amd64.deb) and add root to the group releasectl"), "\(bare)")
        #expect(bare.stdout.contains("-----> releasectl: predeploy of shop v1: \(noReleasectl.address) has no releasectl"), "\(bare)")

        // A host nothing answers on.
        let gone = try await deployer.run("pre-deploy", version: "v1", hosts: [unreachable.innerAddress])
        #expect(gone.status == 2, "\(gone)")
        #expect(gone.stderr.contains("releasectl: cannot reach \(unreachable.innerAddress) over ssh as root on port 22: check the host, `ssh:` in config/deploy.yml"), "\(gone)")
        #expect(gone.stdout.contains("\(unreachable.innerAddress) unreachable"), "\(gone)")

        // A missing local env file named in RELEASECTL_ENV_FILE, and Kamal's config unreadable.
        let noLocal = try await deployer.run("pre-deploy", version: "v1", hosts: [noEnv.address], extra: ["RELEASECTL_ENV_FILE": deployer.dir.file("nope.env")])
        #expect(noLocal.status == 2 && noLocal.stderr.contains("cannot read RELEASECTL_ENV_FILE"), "\(noLocal)")
        let noKamal = try await deployer.run("pre-deploy", version: "v1", hosts: [noEnv.address], extra: ["KAMAL_DESTINATION": "staging"])
        #expect(noKamal.status == 2 && noKamal.stderr.contains("cannot read Kamal's configuration (kamal config -d staging failed)"), "\(noKamal)")

        await noEnv.stop()
        await noReleasectl.stop()
        await unreachable.remove()
    }
}
