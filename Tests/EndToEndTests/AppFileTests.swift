import Foundation
import Glibc
import ReleaseKit
import Testing

/// An app's files are read across a privilege boundary: a root daemon releasing an app with a
/// user of its own reads release.toml, the Procfile and the preset files beneath the app
/// directory, as that user — never through a link that leaves it, never what the user could
/// not read — and shows nothing of what a link pointed at.
@Suite("app files", .serialized)
struct AppFileTests {
    static let content = "ROOT-ONLY-CONTENT-7f3a\nroot:$6$hash:19000:0:99999:7:::\n"

    /// A root-only folder holding a root-only file, and a daemon releasing app `link` as
    /// rctl-app1, with the journal as its log.
    struct Setup {
        let secretDir: TempDir
        var secretFile: String { secretDir.file("shadow") }
        let daemon: DaemonProcess

        init() async throws {
            let user = try TestUser.app1()
            secretDir = TempDir("releasectl-rootonly")
            try AppFileTests.content.write(toFile: secretDir.file("shadow"), atomically: true, encoding: .utf8)
            chmod(secretDir.file("shadow"), 0o600)
            try "[tasks.migrate]\ncommand = \"echo \(AppFileTests.content.prefix(17))\"\n"
                .write(toFile: secretDir.file("release.toml"), atomically: true, encoding: .utf8)
            let config = secretDir.file("released.toml")
            try "[apps.link]\nuser = \"\(user.name)\"\n".write(toFile: config, atomically: true, encoding: .utf8)
            daemon = try await DaemonProcess(arguments: ["--config", config, "--log-target", "journal"])
        }

        func cleanUp() async {
            await daemon.cleanUp()
            secretDir.remove()
        }

        /// Submits app `link` in `app` and checks it is rejected naming `file`, with nothing of
        /// the root-only file anywhere.
        func expectRejected(_ app: AppFixture, file: String, because: String, sourceLocation: SourceLocation = #_sourceLocation) async throws {
            let r = try await daemon.submitWait(app: "link", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
            #expect(r.status == 2, "\(r)", sourceLocation: sourceLocation)
            #expect(r.stdout.contains("\(app.path)/\(file)"), "names the file: \(r)", sourceLocation: sourceLocation)
            #expect(r.stdout.contains(because), "\(r)", sourceLocation: sourceLocation)
            let id = r.lines[0]
            let record = try String(contentsOfFile: "\(daemon.spoolPath)/rejected/\(id).record.json", encoding: .utf8)
            let journal = try await Journal.wait(for: "the rejection of \(id)", ["RELEASE_ID=\(id)"]) { !$0.isEmpty }
            for (sink, text) in [("output", r.stdout + r.stderr), ("record", record), ("journal", journal.map(\.json).joined())] {
                for piece in ["ROOT-ONLY", "root:$6$", "19000:0"] {
                    #expect(!text.contains(piece), "\(sink) shows \(piece)", sourceLocation: sourceLocation)
                }
            }
        }
    }

    @Test("release.toml, Procfile and Gemfile as symlinks to a root-only file are rejected, quoting nothing of it")
    func linksToRootOnlyFile() async throws {
        try Journal.requireJournald()
        let setup = try await Setup()
        for file in ["release.toml", "Procfile", "Gemfile"] {
            let app = try readableApp()
            defer { app.remove() }
            #expect(symlink(setup.secretFile, app.file(file)) == 0)
            try await setup.expectRejected(app, file: file, because: "is a symbolic link that leads out of the app directory")
        }
        await setup.cleanUp()
    }

    @Test("a link to another app's file, or through a directory link that leaves the app directory, is rejected")
    func linksOut() async throws {
        try Journal.requireJournald()
        let setup = try await Setup()
        let other = try readableApp(commands: ["migrate": "echo other"])
        defer { other.remove() }
        let relative = try readableApp()
        defer { relative.remove() }
        // ../<other app>/release.toml: readable by the user, but not this app's.
        #expect(symlink("../" + (other.path as NSString).lastPathComponent + "/release.toml", relative.file("release.toml")) == 0)
        try await setup.expectRejected(relative, file: "release.toml", because: "leads out of the app directory")
        let throughDir = try readableApp()
        defer { throughDir.remove() }
        #expect(symlink(setup.secretDir.path, throughDir.file("config")) == 0)
        #expect(symlink("config/release.toml", throughDir.file("release.toml")) == 0)
        try await setup.expectRejected(throughDir, file: "release.toml", because: "leads out of the app directory")
        await setup.cleanUp()
    }

    @Test("a release.toml the app's user cannot read (root's, 0600) is rejected, though the daemon could read it")
    func unreadableForTheUser() async throws {
        try Journal.requireJournald()
        let setup = try await Setup()
        let app = try readableApp(commands: ["migrate": "echo ROOT-ONLY-CONTENT"])
        defer { app.remove() }
        chmod(app.file("release.toml"), 0o600)
        try await setup.expectRejected(app, file: "release.toml", because: "cannot be read by the app's user")
        await setup.cleanUp()
    }

    @Test("a symlink from release.toml to config/release.toml inside the app is followed")
    func linkInside() async throws {
        try Journal.requireJournald()
        let setup = try await Setup()
        let app = try readableApp(extraFiles: ["config/release.toml": "[tasks.migrate]\ncommand = \"echo from-config\"\n"])
        defer { app.remove() }
        #expect(symlink("config/release.toml", app.file("release.toml")) == 0)
        let r = try await setup.daemon.submitWait(app: "link", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(r.status == 0, "\(r)")
        #expect(r.stdout.contains("from-config"), "\(r)")
        await setup.cleanUp()
    }
}
