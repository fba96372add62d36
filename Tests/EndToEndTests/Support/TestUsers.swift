import Foundation
import Glibc
import ReleaseKit

/// The users of the tests against hostile submitters (made by script/test-users, as root):
/// `rctl-paas` submits and is a member of the spool's group `rctl-spool`; `rctl-app1` and
/// `rctl-app2` are apps' task users.
struct TestUser: Sendable {
    let name: String
    let uid: uid_t
    let gid: gid_t

    static func named(_ name: String) throws -> TestUser {
        guard geteuid() == 0 else { throw HarnessError("this test needs root") }
        guard let pw = UserDatabase.user(named: name) else { throw HarnessError("no user \(name): run script/test-users (script/test does) as root") }
        return TestUser(name: name, uid: pw.uid, gid: pw.gid)
    }

    static func paas() throws -> TestUser { try named("rctl-paas") }
    static func app1() throws -> TestUser { try named("rctl-app1") }
    static func app2() throws -> TestUser { try named("rctl-app2") }
    /// The image security tests' own app user: a task's end ends its user's processes started
    /// since, so suites that run at once must not share one.
    static func app3() throws -> TestUser { try named("rctl-app3") }

    static func spoolGroup() throws -> gid_t {
        guard let gid = UserDatabase.groupID(named: "rctl-spool") else { throw HarnessError("no group rctl-spool: run script/test-users as root") }
        return gid
    }

    /// The command run as this user with its groups (setpriv execs it, so its pid is the command's).
    func wrap(_ command: [String]) -> [String] {
        ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(gid)", "--init-groups", "--"] + command
    }

    /// Runs a program as this user.
    func run(_ program: String, _ arguments: [String], environment: [String: String] = [:]) async throws -> CommandResult {
        let command = wrap([program] + arguments)
        return try await runProgram(command[0], Array(command.dropFirst()),
                                    environment: ["PATH": "/usr/local/bin:/usr/bin:/bin"].merging(environment) { $1 },
                                    inheritEnvironment: false, workingDirectory: "/")
    }

    /// `sh -c script` as this user.
    func shell(_ script: String) async throws -> CommandResult {
        try await run("/bin/sh", ["-c", script])
    }
}

/// A spool the PaaS user can reach: its parent folder is traversable, the spool folder belongs
/// to the group `rctl-spool` (setgid, so everything made in it does too). `make: false` leaves
/// the spool folder itself to be made by whoever comes first (the CLI, say).
struct SharedSpool {
    let dir: TempDir
    var path: String { dir.path + "/spool" }

    init(make: Bool = true) throws {
        dir = TempDir("releasectl-shared")
        chmod(dir.path, 0o711)
        if make {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: false)
            chown(path, 0, try TestUser.spoolGroup())
            chmod(path, 0o2770)
        }
    }

    /// A released.toml admitting the spool group's requests, plus `extra` lines.
    func config(_ extra: String = "") throws -> String {
        let file = dir.file("released.toml")
        try ("allow-groups = [\"rctl-spool\"]\n" + extra).write(toFile: file, atomically: true, encoding: .utf8)
        chmod(file, 0o644)
        return file
    }

    func remove() { dir.remove() }
}

/// An app directory the app users can read: world-readable files in a traversable folder.
func readableApp(commands: [String: String] = [:], extraFiles: [String: String] = [:]) throws -> AppFixture {
    let app = try AppFixture(commands: commands, extraFiles: extraFiles)
    chmod(app.path, 0o755)
    for entry in FileManager.default.enumerator(atPath: app.path)?.allObjects as? [String] ?? [] {
        var isDir: ObjCBool = false
        FileManager.default.fileExists(atPath: app.file(entry), isDirectory: &isDir)
        chmod(app.file(entry), isDir.boolValue ? 0o755 : 0o644)
    }
    return app
}

extension AppFixture {
    func file(_ name: String) -> String { dir.file(name) }
}
