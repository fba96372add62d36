import FoundationEssentials
import Glibc
import SystemPackage

/// What an app directory says about its release: its release.toml, the `release:` line of its
/// Procfile, and the framework preset detected from its files.
public struct AppInspection: Sendable {
    public var directory: String
    public var config: AppConfig
    public var procfileRelease: String?
    public var preset: Preset?

    public init(directory: String, config: AppConfig = AppConfig(), procfileRelease: String? = nil, preset: Preset? = nil) {
        self.directory = directory
        self.config = config
        self.procfileRelease = procfileRelease
        self.preset = preset
    }

    /// Reads the app directory. A malformed release.toml is a rejection naming the file.
    public static func inspect(directory: String, path: String, registry: [any ReleaseTask.Type]) throws(RejectReason) -> AppInspection {
        var inspection = AppInspection(directory: directory)
        let tomlPath = directory + "/" + AppConfig.fileName
        if let bytes = readSmallFile(tomlPath) {
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw RejectReason(.appConfig, "\(tomlPath): not valid UTF-8")
            }
            inspection.config = try AppConfig.parse(text, path: tomlPath, taskNames: registry.map { $0.name },
                                                    commandless: Set(registry.filter { !$0.takesCommand }.map { $0.name }))
        }
        if let bytes = readSmallFile(directory + "/" + Procfile.fileName) {
            inspection.procfileRelease = Procfile.releaseCommand(in: String(decoding: bytes, as: UTF8.self))
        }
        inspection.preset = Preset.detect(in: directory, path: path)
        return inspection
    }

    /// The first MiB of a regular file, or nil. Opened non-blocking and checked with fstat, so
    /// a FIFO or device planted in an app directory (a `Procfile` that is a named pipe) cannot
    /// block the daemon's event loop.
    static func readSmallFile(_ path: String) -> [UInt8]? {
        guard let fd = try? Syscalls.open(FilePath(path), O_RDONLY | O_NONBLOCK) else { return nil }
        defer { Syscalls.close(fd) }
        guard let st = try? Syscalls.fstat(fd), st.st_mode & S_IFMT == S_IFREG else { return nil }
        return try? Syscalls.read(fd, limit: 1 << 20)
    }
}
