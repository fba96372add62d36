import ReleaseKit

/// How a task's environment reaches its container, without a value ever being in a process's
/// argv: by name (`--env NAME`, the value in the engine process's own environment), or — for
/// names the engine itself reads (its configuration, the paths it runs by) and names the
/// daemon's own environment sets — through a private env file (`--env-file`). So an app can
/// neither reconfigure the engine nor change what it runs, and the engine keeps the daemon's
/// settings while the container gets the app's.
public struct ContainerEnvironment: Sendable, Equatable {
    /// Variables passed by name: in the engine's environment, named with `--env NAME`.
    public var byName: [String: String] = [:]
    /// Variables written to the env file.
    public var inFile: [String: String] = [:]

    /// Names the engine (podman, its libraries, the Go runtime) reads from its environment.
    static let engineNames: Set<String> = [
        "PATH", "HOME", "LANG", "LANGUAGE", "TMPDIR", "TZ", "USER", "LOGNAME", "SHELL", "TERM",
        "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "FTP_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy",
        "ftp_proxy", "JOURNAL_STREAM", "INVOCATION_ID", "CREDENTIALS_DIRECTORY", "RUNTIME_DIRECTORY", "STATE_DIRECTORY",
    ]
    static let enginePrefixes = [
        "CONTAINERS_", "CONTAINER_", "_CONTAINERS_", "PODMAN_", "BUILDAH_", "STORAGE_", "REGISTRIES_", "REGISTRY_", "DOCKER_",
        "XDG_", "LD_", "GO", "SSL_", "DBUS_", "SYSTEMD_", "LC_", "NOTIFY_", "LISTEN_", "WATCHDOG_", "SWIFT_", "OTEL_",
    ]
    /// The longest value the env file takes (the engine reads it a line at a time, up to 64 KiB).
    public static let fileValueLimit = 60 * 1024

    /// Splits a task's environment given the daemon's (`KEY=value`).
    public init(_ env: [String: String], daemonEnvironment: [String]) {
        let daemonNames = Set(daemonEnvironment.compactMap { $0.split(separator: "=", maxSplits: 1).first.map(String.init) })
        for (name, value) in env {
            if Self.engineNames.contains(name) || Self.enginePrefixes.contains(where: name.hasPrefix) || daemonNames.contains(name) {
                inFile[name] = value
            } else {
                byName[name] = value
            }
        }
    }

    /// Why the environment cannot be passed this way, or nil: a value that must go in the env
    /// file cannot hold a line break, nor be longer than `fileValueLimit`.
    public var problem: String? {
        for (name, value) in inFile.sorted(by: { $0.key < $1.key }) {
            if value.utf8.contains(UInt8(ascii: "\n")) || value.utf8.contains(UInt8(ascii: "\r")) {
                return "\(name) holds a line break, which a container's env file (where the engine's own variables go) cannot carry"
            }
            if value.utf8.count > Self.fileValueLimit {
                return "\(name) is \(value.utf8.count) bytes, over the \(Self.fileValueLimit / 1024) KiB a container's env file takes"
            }
        }
        return nil
    }

    /// The engine process's environment: the daemon's, plus the variables passed by name.
    public func engineEnvironment(daemon: [String]) -> [String] {
        daemon + byName.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
    }

    /// The env file's text: `NAME=value` lines.
    public var fileContents: [UInt8] {
        Array(inFile.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)\n" }.joined().utf8)
    }

    /// The engine's arguments that pass it all: `--env NAME`… and `--env-file PATH`.
    public func arguments(envFile: String?) -> [String] {
        var args = byName.keys.sorted().flatMap { ["--env", $0] }
        if let envFile, !inFile.isEmpty { args += ["--env-file", envFile] }
        return args
    }
}
