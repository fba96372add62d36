import Foundation
import ReleaseKit
import Testing

/// examples/paas-hook/deploy, end to end: real tarballs, a real daemon, the `current` symlink.
@Suite("PaaS deploy hook", .serialized)
struct PaasHookTests {
    static let hook: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent("examples/paas-hook/deploy").path
    }()

    /// A build tarball whose migration succeeds or fails.
    static func build(_ version: String, migrationFails: Bool = false, in dir: TempDir) async throws -> String {
        let tree = dir.file("build-\(version)")
        try FileManager.default.createDirectory(atPath: tree + "/db", withIntermediateDirectories: true)
        try "\(version)\n".write(toFile: tree + "/VERSION", atomically: true, encoding: .utf8)
        // The postdeploy notes where `current` pointed when it ran (after the switch).
        try "[tasks.migrate]\ncommand = [\"sh\", \"db/migrate.sh\"]\n[tasks.post-migrate]\ncommand = \"readlink ../../current >> ../../postdeploys\"\n"
            .write(toFile: tree + "/release.toml", atomically: true, encoding: .utf8)
        try (migrationFails ? "echo 'migrating \(version)'; echo 'ERROR: column already exists' >&2; exit 1\n"
                            : "echo \"migrating $(cat VERSION) with $DATABASE_URL\"\n")
            .write(toFile: tree + "/db/migrate.sh", atomically: true, encoding: .utf8)
        let tarball = dir.file("\(version).tar.gz")
        let tar = try await runProgram("/usr/bin/tar", ["-czf", tarball, "-C", tree, "."])
        guard tar.status == 0 else { throw HarnessError("tar: \(tar)") }
        return tarball
    }

    @Test("success switches current; a failed release keeps the old current; the next success switches again")
    func zeroDowntimeFlow() async throws {
        let daemon = try await DaemonProcess()
        let work = TempDir()
        defer { work.remove() }
        let apps = work.file("apps")
        let current = apps + "/shop/current"
        try FileManager.default.createDirectory(atPath: apps + "/shop", withIntermediateDirectories: true)
        try "RUN_MIGRATIONS_DURING_RELEASE=true\nRUN_MIGRATIONS_AFTER_DEPLOY=true\nDATABASE_URL=postgres://shop:hunter2@db/shop\n"
            .write(toFile: apps + "/shop/app.env", atomically: true, encoding: .utf8)
        let reloads = work.file("reloads")
        func deploy(_ tarball: String, _ release: String) async throws -> CommandResult {
            try await runProgram("/bin/bash", [Self.hook, "shop", tarball, release], environment: [
                "PATH": "/usr/local/bin:/usr/bin:/bin", "APPS_ROOT": apps, "RELEASECTL": Binaries.releasectl,
                "RELEASECTL_SPOOL": daemon.spoolPath, "RELOAD_COMMAND": "cat VERSION >> \(reloads)", "KEEP_RELEASES": "3",
            ], inheritEnvironment: false)
        }
        func live() -> String? { try? FileManager.default.destinationOfSymbolicLink(atPath: current) }
        func liveVersion() -> String? { try? String(contentsOfFile: current + "/VERSION", encoding: .utf8) }

        let v1 = try await deploy(try await Self.build("v1", in: work), "v1")
        #expect(v1.status == 0, "\(v1)")
        #expect(v1.stdout.contains("       migrating v1 with ***"), "the release's output streams through, masked: \(v1)")
        #expect(v1.stdout.contains("-----> Switched shop to v1 (current → releases/v1)"))
        #expect(live() == "releases/v1", "a relative link into releases/")
        #expect(liveVersion() == "v1\n")

        let v2 = try await deploy(try await Self.build("v2", migrationFails: true, in: work), "v2")
        #expect(v2.status == 1, "\(v2)")
        #expect(v2.stdout.contains("       ERROR: column already exists"))
        #expect(v2.stdout.contains("-----> Release v2 failed; current still points to releases/v1: shop is unchanged"))
        #expect(live() == "releases/v1", "the old version stays live")
        #expect(liveVersion() == "v1\n")
        #expect(FileManager.default.fileExists(atPath: apps + "/shop/releases/v2/VERSION"), "kept for logs and retry")

        let v3 = try await deploy(try await Self.build("v3", in: work), "v3")
        #expect(v3.status == 0, "\(v3)")
        #expect(v3.stdout.contains("-----> Switched shop to v3 (current → releases/v3, was releases/v1)"))
        #expect(live() == "releases/v3")
        #expect(liveVersion() == "v3\n")
        #expect(try String(contentsOfFile: reloads, encoding: .utf8) == "v1\nv3\n", "reloaded after each switch, never after a failure")
        #expect(try String(contentsOfFile: apps + "/shop/postdeploys", encoding: .utf8) == "releases/v1\nreleases/v3\n",
                "each postdeploy ran after its switch, never after a failure")

        // The daemon's records agree.
        let list = try await daemon.ctl(["list", "--app", "shop", "--json"])
        let records = try #require(try JSONSerialization.jsonObject(with: Data(list.stdout.utf8)) as? [[String: Any]])
        #expect(records.map { "\($0["release"]!) \($0["phase"]!) \($0["state"]!)" }
                == ["v3 postdeploy succeeded", "v3 predeploy succeeded", "v2 predeploy failed", "v1 postdeploy succeeded", "v1 predeploy succeeded"])
        #expect(records[0]["directory"] as? String == apps + "/shop/releases/v3")

        // Nothing half-made is left beside current; a release name is never reused.
        #expect(try FileManager.default.contentsOfDirectory(atPath: apps + "/shop").sorted() == [".deploy.lock", "app.env", "current", "postdeploys", "releases"])
        let again = try await deploy(try await Self.build("v1b", in: work), "v1")
        #expect(again.status == 2, "\(again)")
        #expect(again.stderr.contains("releases/v1 already exists"))
        #expect(live() == "releases/v3")

        // KEEP_RELEASES=3: a fourth success prunes the oldest.
        let v4 = try await deploy(try await Self.build("v4", in: work), "v4")
        #expect(v4.status == 0, "\(v4)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: apps + "/shop/releases").sorted() == ["v2", "v3", "v4"])
        await daemon.cleanUp()
    }

    @Test("a rejected release (gate typo) or a broken build leaves current alone (exit 2)")
    func rejectedAndBroken() async throws {
        let daemon = try await DaemonProcess()
        let work = TempDir()
        defer { work.remove() }
        let apps = work.file("apps")
        try FileManager.default.createDirectory(atPath: apps + "/shop", withIntermediateDirectories: true)
        let env = work.file("shop.env")
        func deploy(_ tarball: String, _ release: String) async throws -> CommandResult {
            try await runProgram("/bin/bash", [Self.hook, "shop", tarball, release], environment: [
                "PATH": "/usr/local/bin:/usr/bin:/bin", "APPS_ROOT": apps, "RELEASECTL": Binaries.releasectl,
                "RELEASECTL_SPOOL": daemon.spoolPath, "APP_ENV_FILE": env,
            ], inheritEnvironment: false)
        }
        try "RUN_MIGRATIONS_DURING_RELEASE=true\nDATABASE_URL=x\n".write(toFile: env, atomically: true, encoding: .utf8)
        let v1 = try await deploy(try await Self.build("v1", in: work), "v1")
        #expect(v1.status == 0, "\(v1)")

        try "RUN_MIGRATIONS_DURING_RELEASE=ture\n".write(toFile: env, atomically: true, encoding: .utf8)
        let typo = try await deploy(try await Self.build("v2", in: work), "v2")
        #expect(typo.status == 2, "\(typo)")
        #expect(typo.stdout.contains("-----> Release v2 was rejected; current still points to releases/v1"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: apps + "/shop/current") == "releases/v1")

        try "not a tarball".write(toFile: work.file("broken.tar.gz"), atomically: true, encoding: .utf8)
        let broken = try await deploy(work.file("broken.tar.gz"), "v3")
        #expect(broken.status == 2, "\(broken)")
        #expect(broken.stderr.contains("cannot unpack"))
        #expect(!FileManager.default.fileExists(atPath: apps + "/shop/releases/v3"))
        #expect(!FileManager.default.fileExists(atPath: apps + "/shop/releases/.v3.partial"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: apps + "/shop/current") == "releases/v1")
        let usage = try await runProgram("/bin/bash", [Self.hook, "shop"], inheritEnvironment: false)
        #expect(usage.status == 2 && usage.stderr.contains("usage: deploy APP BUILD.tar.gz [RELEASE]"), "\(usage)")
        await daemon.cleanUp()
    }

    static let imageHook: String = {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent("examples/paas-hook/deploy-image").path
    }()

    @Test("deploy-image: tasks in the new image with the new env; success runs the switch with the image id, a failure switches nothing")
    func imageFlow() async throws {
        let work = TempDir()
        let good = try await TestImage.build(files: ["app/release.toml": "[tasks.migrate]\ncommand = \"echo migrating with $DATABASE_URL\"\n"])
        let bad = try await TestImage.build(files: ["app/release.toml": "[tasks.migrate]\ncommand = \"echo 'ERROR: relation exists' >&2; exit 1\"\n"])
        defer { work.remove() }
        let daemon = try await DaemonProcess(environment: Podman.environment)
        let env = work.file("shop.env"), switches = work.file("switches")
        try "RUN_MIGRATIONS_DURING_RELEASE=true\nDATABASE_URL=postgres://shop:hunter2@db/shop\n".write(toFile: env, atomically: true, encoding: .utf8)
        func deploy(_ image: String, _ release: String) async throws -> CommandResult {
            try await runProgram("/bin/bash", [Self.imageHook, "shop", image, release], environment: [
                "PATH": "/usr/local/bin:/usr/bin:/bin", "RELEASECTL": Binaries.releasectl, "RELEASECTL_SPOOL": daemon.spoolPath,
                "APP_ENV_FILE": env, "SWITCH_COMMAND": "echo \"$RELEASE $IMAGE $IMAGE_ID\" >> \(switches)",
            ], inheritEnvironment: false)
        }
        let v1 = try await deploy(good.reference, "v1")
        #expect(v1.status == 0, "\(v1)")
        #expect(v1.stdout.contains("       migrating with ***"), "the output streams through, masked: \(v1)")
        #expect(v1.stdout.contains("-----> Release v1 succeeded in \(good.reference) (image \(good.id.prefix(12)))"), "\(v1)")
        #expect(!v1.stdout.contains("hunter2") && !v1.stderr.contains("hunter2"))

        let v2 = try await deploy(bad.reference, "v2")
        #expect(v2.status == 1, "\(v2)")
        #expect(v2.stdout.contains("ERROR: relation exists"))
        #expect(v2.stdout.contains("-----> Release v2 failed; nothing switched: shop is unchanged"))
        #expect(try String(contentsOfFile: switches, encoding: .utf8) == "v1 \(good.reference) \(good.id)\n", "switched once, after the success")
        await daemon.cleanUp()
        await good.remove()
        await bad.remove()
    }
}
