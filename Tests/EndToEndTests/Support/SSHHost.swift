import Foundation
import Glibc

/// A key pair made by the test for its ssh client, with the client's own known_hosts and an
/// ssh config file naming it (so nothing is read from or written to the user's ~/.ssh).
struct SSHClientKey {
    let dir: TempDir
    var privateKey: String { dir.file("id_ed25519") }
    var knownHosts: String { dir.file("known_hosts") }
    var configFile: String { dir.file("ssh_config") }
    let publicKey: String

    static let keygen = "/usr/bin/ssh-keygen"

    init() async throws {
        dir = TempDir("releasectl-sshkey")
        let dir = dir
        let made = try await runProgram(Self.keygen, ["-q", "-t", "ed25519", "-N", "", "-C", "releasectl-test", "-f", dir.file("id_ed25519")])
        guard made.status == 0 else { throw HarnessError("ssh-keygen: \(made)") }
        publicKey = try String(contentsOfFile: dir.file("id_ed25519.pub"), encoding: .utf8)
        FileManager.default.createFile(atPath: dir.file("known_hosts"), contents: nil)
        try "UserKnownHostsFile \(dir.file("known_hosts"))\nGlobalKnownHostsFile /dev/null\nLogLevel ERROR\n"
            .write(toFile: dir.file("ssh_config"), atomically: true, encoding: .utf8)
    }

    func remove() { dir.remove() }
}

/// A machine reached over real ssh: Debian's sshd, started by the test in a network namespace
/// of its own (so it has an address of its own, port 22), with a host key made by the test
/// (added to the client's known_hosts) and the client's key as its only authorized key. root
/// logs in with the key alone. Each host has a home of its own — sshd changes into it
/// (ForceCommand) before it runs the client's command with /bin/sh, as the login of a separate
/// machine would — and its environment names this host's spool (`RELEASECTL_SPOOL`) and a
/// PATH whose `releasectl` writes its arguments to `argvLog` before it execs the real one (or no
/// releasectl at all).
final class SSHHost: @unchecked Sendable {
    // @unchecked: everything is set once in init.
    let netns: NetworkNamespace
    let dir: TempDir
    private let process: Process
    let logPath: String
    var address: String { netns.innerAddress }
    var home: String { dir.file("home") }
    var argvLog: String { dir.file("releasectl-argv") }
    var argv: String { (try? String(contentsOfFile: argvLog, encoding: .utf8)) ?? "" }
    var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    static let sshd = "/usr/sbin/sshd"
    static var isAvailable: Bool {
        NetworkNamespace.isAvailable && FileManager.default.isExecutableFile(atPath: sshd)
            && FileManager.default.isExecutableFile(atPath: "/usr/bin/ssh") && FileManager.default.isExecutableFile(atPath: SSHClientKey.keygen)
    }

    init(key: SSHClientKey, spool: String, releasectl: Bool = true) async throws {
        let netns = try await NetworkNamespace()
        let dir = TempDir("releasectl-sshhost")
        let logPath = dir.file("sshd.log")
        let process = Process()
        do {
            try await Self.prepare(netns: netns, dir: dir, key: key, spool: spool, releasectl: releasectl)
            FileManager.default.createFile(atPath: logPath, contents: nil)
            process.executableURL = URL(fileURLWithPath: netns.exec[0])
            process.arguments = Array(netns.exec.dropFirst()) + [Self.sshd, "-D", "-e", "-f", dir.file("sshd_config")]
            process.environment = ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin"]
            process.standardOutput = FileHandle(forWritingAtPath: logPath)
            process.standardError = FileHandle(forWritingAtPath: logPath)
            process.standardInput = FileHandle.nullDevice
            try process.run()
            let address = netns.innerAddress
            try await eventually("sshd to listen on \(address):22", timeout: .seconds(20)) {
                guard process.isRunning else {
                    throw HarnessError("sshd exited: \((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "")")
                }
                return ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").contains("Server listening on \(address) port 22")
            }
        } catch {
            if process.isRunning { process.terminate() }
            await netns.remove()
            dir.remove()
            throw error
        }
        self.netns = netns
        self.dir = dir
        self.logPath = logPath
        self.process = process
    }

    /// The host's files: releasectl's wrapper, the host key (into the client's known_hosts),
    /// the authorized key, sshd_config.
    private static func prepare(netns: NetworkNamespace, dir: TempDir, key: SSHClientKey, spool: String, releasectl: Bool) async throws {
        try FileManager.default.createDirectory(atPath: dir.file("home"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: dir.file("bin"), withIntermediateDirectories: true)
        if releasectl {
            let wrapper = dir.file("bin/releasectl")
            try "#!/bin/sh\nprintf '%s\\n' \"$*\" >> \(dir.file("releasectl-argv"))\nexec \(Binaries.releasectl) \"$@\"\n"
                .write(toFile: wrapper, atomically: true, encoding: .utf8)
            chmod(wrapper, 0o755)
        }
        let made = try await runProgram(SSHClientKey.keygen, ["-q", "-t", "ed25519", "-N", "", "-f", dir.file("host_key")])
        guard made.status == 0 else { throw HarnessError("ssh-keygen for the host key: \(made)") }
        let hostKey = try String(contentsOfFile: dir.file("host_key.pub"), encoding: .utf8).split(separator: " ").prefix(2).joined(separator: " ")
        let known = try FileHandle(forWritingTo: URL(fileURLWithPath: key.knownHosts))
        known.seekToEndOfFile()
        known.write(Data("\(netns.innerAddress) \(hostKey)\n".utf8))
        try known.close()
        try key.publicKey.write(toFile: dir.file("authorized_keys"), atomically: true, encoding: .utf8)
        // sshd's privilege separation folder (Debian's tmpfiles makes it at boot).
        if !FileManager.default.fileExists(atPath: "/run/sshd") { mkdir("/run/sshd", 0o755) }
        try """
            ListenAddress \(netns.innerAddress):22
            HostKey \(dir.file("host_key"))
            PidFile none
            UsePAM no
            StrictModes no
            PermitRootLogin prohibit-password
            PasswordAuthentication no
            KbdInteractiveAuthentication no
            AuthorizedKeysFile \(dir.file("authorized_keys"))
            SetEnv RELEASECTL_SPOOL=\(spool) HOME=\(dir.file("home")) PATH=\(dir.file("bin")):/usr/local/bin:/usr/bin:/bin
            ForceCommand cd \(dir.file("home")) && exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"
            LogLevel VERBOSE

            """.write(toFile: dir.file("sshd_config"), atomically: true, encoding: .utf8)
    }

    /// Writes a file under this host's home (folders made as needed), mode 0600 as Kamal uploads it.
    func write(_ relativePath: String, _ contents: String) throws {
        let path = home + "/" + relativePath
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try contents.write(toFile: path, atomically: true, encoding: .utf8)
        chmod(path, 0o600)
    }

    /// Stops sshd (bounded), removes the namespace and the folder.
    func stop() async {
        if process.isRunning {
            kill(process.processIdentifier, SIGTERM)
            let process = process
            try? await eventually("sshd to exit", timeout: .seconds(10)) { !process.isRunning }
        }
        await netns.remove()
        dir.remove()
    }

    deinit {
        if process.isRunning { kill(process.processIdentifier, SIGTERM) }
    }
}
