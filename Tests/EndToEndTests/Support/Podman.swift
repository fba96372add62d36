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

    /// Waits (bounded) until a release has no container left: an image release's last
    /// container is taken down once its outcome is recorded, so the caller is told first
    /// (a container a task had to be stopped in is gone before that).
    static func awaitNoContainers(release: String, _ why: String, timeout: Duration = .seconds(30)) async throws {
        let until = ContinuousClock.now + timeout
        var left = try await containers(release: release)
        while !left.isEmpty && ContinuousClock.now < until {
            try await Task.sleep(for: .milliseconds(100))
            left = try await containers(release: release)
        }
        if !left.isEmpty { throw HarnessError("\(why): \(left) still there after \(timeout)") }
    }
}

/// An image built locally for one test (no registry here): busybox and its applets in /bin,
/// the given files and symlinks, imported with `WORKDIR /app`.
struct TestImage {
    let reference: String
    let id: String

    /// `files`: path in the image (no leading slash) → contents; `links`: path → target;
    /// `copies`: path → a host file copied in; `modes`: path → mode (set-uid bits included,
    /// the owner root); `nodes`: path → a device or FIFO (`mknod`'s mode, device number);
    /// `labels`: the image's labels.
    static func build(files: [String: String], links: [String: String] = [:], copies: [String: String] = [:],
                      modes: [String: mode_t] = [:], nodes: [String: (mode: mode_t, device: dev_t)] = [:],
                      labels: [String: String] = [:], workdir: String = "/app") async throws -> TestImage {
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
        func parent(_ path: String) throws {
            try fm.createDirectory(atPath: ((root + "/" + path) as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        }
        for (path, contents) in files {
            try parent(path)
            try contents.write(toFile: root + "/" + path, atomically: false, encoding: .utf8)
        }
        for (path, target) in links {
            try parent(path)
            try fm.createSymbolicLink(atPath: root + "/" + path, withDestinationPath: target)
        }
        for (path, source) in copies {
            try parent(path)
            try fm.copyItem(atPath: source, toPath: root + "/" + path)
        }
        for (path, node) in nodes {
            try parent(path)
            guard mknod(root + "/" + path, node.mode, node.device) == 0 else { throw HarnessError("mknod \(path): \(errno)") }
        }
        for (path, mode) in modes {
            guard chown(root + "/" + path, 0, 0) == 0, chmod(root + "/" + path, mode) == 0 else { throw HarnessError("chmod \(path): \(errno)") }
        }
        let tar = work.file("image.tar")
        let packed = try await runProgram("/bin/tar", ["-C", root, "-cf", tar, "."])
        guard packed.status == 0 else { throw HarnessError("tar: \(packed)") }
        let reference = "localhost/releasectl-test-\(UInt32.random(in: 0...UInt32.max)):v1"
        var changes = ["--change", "WORKDIR=\(workdir)"]
        for (label, value) in labels.sorted(by: { $0.key < $1.key }) { changes += ["--change", "LABEL \(label)=\(value)"] }
        let imported = try await Podman.run(["import"] + changes + [tar, reference])
        guard imported.status == 0 else { throw HarnessError("podman import: \(imported)") }
        let inspected = try await Podman.run(["image", "inspect", "--format", "{{.Id}}", reference])
        guard inspected.status == 0, let id = inspected.lines.first, !id.isEmpty else { throw HarnessError("podman image inspect: \(inspected)") }
        return TestImage(reference: reference, id: id)
    }

    func remove() async {
        _ = try? await Podman.run(["image", "rm", "--force", reference])
    }
}
