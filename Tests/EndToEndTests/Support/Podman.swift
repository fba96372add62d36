import Foundation
import Glibc

/// The real podman for the container tests, configured for this kind of machine by a test
/// containers.conf given to the daemon in its environment (`CONTAINERS_CONF`), as an
/// operator's would be: the runc runtime (crun cannot run on hybrid cgroups) and no default
/// ulimits (setting them needs CAP_SYS_RESOURCE). The daemon itself sets neither.
enum Podman {
    static let program = "/usr/bin/podman"

    /// The test containers.conf, written once per test process.
    static let configFile: String = {
        let dir = TempDir("releasectl-podman")
        let path = dir.file("containers.conf")
        try! "[engine]\nruntime = \"runc\"\n[containers]\ndefault_ulimits = []\n".write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }()

    /// What the daemon (and the tests' own podman calls) run the engine with: also a PATH
    /// with the sbin folders, as a service's has (the network plugins run iptables).
    static var environment: [String: String] {
        ["CONTAINERS_CONF": configFile, "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]
    }

    /// Throws, saying what is missing, unless the container tests can run here.
    static func check() throws {
        guard geteuid() == 0 else { throw HarnessError("the container tests need root (podman image mount)") }
        guard FileManager.default.isExecutableFile(atPath: program) else {
            throw HarnessError("podman is not installed: run script/bootstrap (apt-get install podman runc busybox-static)")
        }
        guard FileManager.default.isExecutableFile(atPath: "/bin/busybox") else {
            throw HarnessError("/bin/busybox is missing: apt-get install busybox-static (the test images are built from it)")
        }
    }

    static func run(_ arguments: [String]) async throws -> CommandResult {
        try await runProgram(program, arguments, environment: environment, inheritEnvironment: false)
    }

    /// The names of the containers, running or not, labelled with a release.
    static func containers(release: String) async throws -> [String] {
        let r = try await run(["ps", "--all", "--filter", "label=io.releasectl.release=\(release)", "--format", "{{.Names}}"])
        guard r.status == 0 else { throw HarnessError("podman ps: \(r)") }
        return r.lines.filter { !$0.isEmpty }
    }
}

/// An image built locally for one test (no registry here): busybox and its applets in /bin,
/// the given files and symlinks, imported with `WORKDIR /app`.
struct TestImage {
    let reference: String
    let id: String

    /// `files`: path in the image (no leading slash) → contents; `links`: path → target.
    static func build(files: [String: String], links: [String: String] = [:], workdir: String = "/app") async throws -> TestImage {
        try Podman.check()
        let work = TempDir("releasectl-image")
        defer { work.remove() }
        let root = work.file("root")
        let fm = FileManager.default
        for dir in ["bin", "tmp", "etc", String(workdir.dropFirst())] where !dir.isEmpty {
            try fm.createDirectory(atPath: root + "/" + dir, withIntermediateDirectories: true)
        }
        try fm.copyItem(atPath: "/bin/busybox", toPath: root + "/bin/busybox")
        let applets = try await runProgram("/bin/busybox", ["--list"])
        for applet in applets.lines where !applet.isEmpty && applet != "busybox" {
            try fm.createSymbolicLink(atPath: root + "/bin/" + applet, withDestinationPath: "busybox")
        }
        for (path, contents) in files {
            let full = root + "/" + path
            try fm.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try contents.write(toFile: full, atomically: false, encoding: .utf8)
        }
        for (path, target) in links {
            let full = root + "/" + path
            try fm.createDirectory(atPath: (full as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
            try fm.createSymbolicLink(atPath: full, withDestinationPath: target)
        }
        let tar = work.file("image.tar")
        let packed = try await runProgram("/bin/tar", ["-C", root, "-cf", tar, "."])
        guard packed.status == 0 else { throw HarnessError("tar: \(packed)") }
        let reference = "localhost/releasectl-test-\(UInt32.random(in: 0...UInt32.max)):v1"
        let imported = try await Podman.run(["import", "--change", "WORKDIR=\(workdir)", tar, reference])
        guard imported.status == 0 else { throw HarnessError("podman import: \(imported)") }
        let inspected = try await Podman.run(["image", "inspect", "--format", "{{.Id}}", reference])
        guard inspected.status == 0, let id = inspected.lines.first, !id.isEmpty else { throw HarnessError("podman image inspect: \(inspected)") }
        return TestImage(reference: reference, id: id)
    }

    func remove() async {
        _ = try? await Podman.run(["image", "rm", "--force", reference])
    }
}
