import FoundationEssentials
import Glibc
import ReleaseKit
import ReleaseSupport

/// A container engine with podman's command line (`container-engine` in released.toml, default
/// `podman`), run with the daemon's own environment — where an operator (or a test) gives the
/// engine its own configuration (`CONTAINERS_CONF`, …) — and never with anything of a
/// request's: a task's values reach its container only through `TaskInit`'s messages on its stdin.
public struct ContainerEngine: Sendable {
    /// The engine's program (a name looked up in the daemon's PATH, or a path).
    public let executable: String
    /// The daemon's environment, as `KEY=value`.
    public let environment: [String]
    /// Where an image read at intake is unmounted: nil, before `withImage` returns (a
    /// short-lived program such as `releasectl plan`); else on this queue's thread, after it
    /// (the daemon: the release need not wait for it). See `pendingUnmounts`.
    public let unmounts: SerialQueue?
    /// Told of an unmount that failed (an image left mounted), when nobody waits for it.
    public let warn: (@Sendable (String) -> Void)?

    /// The label on every container a release starts: its release id.
    public static let releaseLabel = "io.releasectl.release"
    /// The label naming the task.
    public static let taskLabel = "io.releasectl.task"
    /// The label naming the spool (several daemons may share an engine).
    public static let spoolLabel = "io.releasectl.spool"

    /// `environment`: the daemon's, of which the engine gets only what configures an engine
    /// (`engineEnvironment`).
    public init(executable: String, environment: [String], unmounts: SerialQueue? = nil, warn: (@Sendable (String) -> Void)? = nil) {
        self.executable = executable
        self.environment = Self.engineEnvironment(environment)
        self.unmounts = unmounts
        self.warn = warn
    }

    /// The daemon's queue for `unmounts`: one for every engine value it makes, flushed before
    /// it exits.
    public static let pendingUnmounts = SerialQueue(idleLifetime: .seconds(2))

    /// What of the daemon's environment the engine runs with: the names that configure an
    /// engine and the programs it starts — its configuration files (`CONTAINERS_*`,
    /// `REGISTRY_AUTH_FILE`, `STORAGE_DRIVER`, `STORAGE_OPTS`), where it keeps state (`HOME`,
    /// `TMPDIR`, `XDG_RUNTIME_DIR`, `XDG_CONFIG_HOME`, `XDG_DATA_HOME`), how it reaches
    /// registries (proxies, `SSL_CERT_FILE`, `SSL_CERT_DIR`), `PATH`, `LANG`, `LC_ALL`, `TZ`.
    /// Nothing else: not the service manager's variables (the engine would hand the notify
    /// socket on to its containers), not the loader's, and never anything of a request's.
    public static func engineEnvironment(_ daemon: [String]) -> [String] {
        daemon.filter { entry in
            let name = entry.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? entry
            return engineNames.contains(name) || name.hasPrefix("CONTAINERS_")
        }
    }

    /// The names of `engineEnvironment` (besides `CONTAINERS_*`).
    static let engineNames: Set<String> = [
        "PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR", "XDG_RUNTIME_DIR", "XDG_CONFIG_HOME", "XDG_DATA_HOME",
        "REGISTRY_AUTH_FILE", "STORAGE_DRIVER", "STORAGE_OPTS", "SSL_CERT_FILE", "SSL_CERT_DIR",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    ]

    /// An image as the engine has it.
    public struct Image: Sendable, Equatable {
        /// The image id: exactly which build.
        public var id: String
        /// Its working directory (`WORKDIR`), `/` when it has none.
        public var workingDirectory: String
    }

    /// Whether the engine has an image.
    public enum Lookup: Sendable, Equatable {
        case present(Image)
        case absent
        /// The engine could not say (not installed, a broken store): its message.
        case failed(String)
    }

    /// Looks an image up in the engine's store, without pulling it.
    public func inspect(_ reference: String) -> Lookup {
        Self.lookup(run(Self.inspectArguments(reference)))
    }

    private static func inspectArguments(_ reference: String) -> [String] {
        ["image", "inspect", "--format", "{{.Id}}|{{.Config.WorkingDir}}", reference]
    }

    /// `image inspect`'s answer.
    private static func lookup(_ r: EngineCommand.Result) -> Lookup {
        guard r.status == 0 else {
            let message = r.message
            let lower = message.lowercased()
            if lower.contains("image not known") || lower.contains("no such image") || lower.contains("failed to find image") { return .absent }
            return .failed(message)
        }
        let line = r.output.split(separator: "\n").first.map(String.init) ?? ""
        let parts = line.split(separator: "|", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 2, !parts[0].isEmpty else { return .failed("cannot read the engine's answer: \(Masking.preview(line))") }
        let workdir = parts[1].isEmpty ? "/" : parts[1]
        return .present(Image(id: parts[0], workingDirectory: workdir))
    }

    /// `image mount --format json`'s answer: the id of the image it mounted and where.
    private static func mountAnswer(_ r: EngineCommand.Result) -> (id: String, root: String)? {
        struct Mounted: Decodable {
            var id: String
            var mountpoint: String
        }
        guard r.status == 0, let list = try? JSONDecoder().decode([Mounted].self, from: Data(r.output.utf8)),
              list.count == 1, !list[0].id.isEmpty, list[0].mountpoint.hasPrefix("/") else { return nil }
        return (list[0].id, list[0].mountpoint)
    }

    /// Looks an image up and mounts its root folder read-only on the host (`image inspect` and
    /// `image mount`, which needs root, started at once), runs `body` with the image and that
    /// folder's path, and unmounts it again (see `unmounts`). Nil when the engine does not
    /// have the image. Nothing of the image runs. Both must name the same build: when a tag
    /// moved between the two, they are asked again.
    public func withImage<T>(_ reference: String, _ body: (Image, String) throws(RejectReason) -> T) throws(RejectReason) -> T? {
        for _ in 0..<3 {
            let inspecting = EngineCommand.start(executable, Self.inspectArguments(reference), environment: environment)
            let mounting = EngineCommand.start(executable, ["image", "mount", "--format", "json", reference], environment: environment)
            let lookup = Self.lookup(inspecting.finish())
            let mounted = mounting.finish()
            let mount = Self.mountAnswer(mounted)
            let image: Image
            switch lookup {
            case .failed(let message):
                if let mount { unmount(mount.id) }
                throw RejectReason(.image, "cannot look the image \(reference) up: \(message)")
            case .absent:
                if let mount { unmount(mount.id) }
                return nil
            case .present(let found):
                image = found
            }
            guard let mount else {
                throw RejectReason(.image, "cannot read the image \(reference): \(mounted.message)"
                                   + (geteuid() == 0 ? "" : " (reading an image needs released to run as root)"))
            }
            guard mount.id == image.id else {
                unmount(mount.id)
                continue
            }
            defer { unmount(image.id) }
            return try body(image, mount.root)
        }
        throw RejectReason(.image, "cannot read the image \(reference): it named another build each time it was looked up (a tag moving)")
    }

    /// Undoes one `image mount` of an image (by its id: the build that was mounted).
    private func unmount(_ id: String) {
        guard let unmounts else {
            _ = run(["image", "unmount", id])
            return
        }
        unmounts.post {
            let r = self.run(["image", "unmount", id])
            if r.status != 0 { self.warn?("the image \(id) stays mounted: cannot unmount it after reading it: \(r.message)") }
        }
    }

    /// How the engine makes its containers' cgroups: `systemd` (scopes in the slice given as
    /// `--cgroup-parent`) or `cgroupfs` (folders under the path given); nil when it cannot say.
    public func cgroupManager() -> String? {
        let r = run(["info", "--format", "{{.Host.CgroupManager}}"])
        guard r.status == 0, let line = r.output.split(separator: "\n").first else { return nil }
        return String(line).trimmingBlanks()
    }

    /// Whether a container of that name exists.
    public func containerExists(_ name: String) -> Bool {
        run(["container", "exists", name]).status == 0
    }

    /// Sends a signal to a container's processes.
    public func kill(_ name: String, signal: String) {
        _ = run(["kill", "--signal", signal, name])
    }

    /// Removes containers, running or not, at once.
    public func remove(_ names: [String]) {
        guard !names.isEmpty else { return }
        _ = run(["rm", "--force", "--time", "0"] + names)
    }

    /// The names of every container the engine has, running or not.
    public func containerNames() -> [String] {
        let r = run(["ps", "--all", "--format", "{{.Names}}"])
        guard r.status == 0 else { return [] }
        return r.output.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    /// Runs the engine with `arguments`.
    public func run(_ arguments: [String]) -> EngineCommand.Result {
        EngineCommand.run(executable, arguments, environment: environment)
    }
}
