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

    /// The largest release.toml or Procfile read.
    public static let maximumFileSize = 64 * 1024

    /// Reads the app directory. A missing release.toml or Procfile is fine; one that is
    /// malformed, unreadable, not a regular file or over 64 KiB rejects the release, naming
    /// the file: a file the daemon cannot read must never make it skip a task silently.
    public static func inspect(directory: String, path: String, registry: [any ReleaseTask.Type]) throws(RejectReason) -> AppInspection {
        var inspection = AppInspection(directory: directory)
        let tomlPath = directory + "/" + AppConfig.fileName
        if let bytes = try appFile(tomlPath, code: .appConfig) {
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw RejectReason(.appConfig, "\(tomlPath): not valid UTF-8")
            }
            inspection.config = try AppConfig.parse(text, path: tomlPath, taskNames: registry.map { $0.name },
                                                    commandless: Set(registry.filter { !$0.takesCommand }.map { $0.name }))
        }
        if let bytes = try appFile(directory + "/" + Procfile.fileName, code: .procfile) {
            inspection.procfileRelease = Procfile.releaseCommand(in: String(decoding: bytes, as: UTF8.self))
        }
        inspection.preset = Preset.detect(in: directory, path: path)
        return inspection
    }

    /// An app file's bytes, nil when it does not exist, or a rejection saying why it cannot be
    /// used. Opened non-blocking and checked with fstat, so a FIFO planted in an app directory
    /// cannot block the daemon.
    static func appFile(_ path: String, code: RejectReason.Code) throws(RejectReason) -> [UInt8]? {
        let fd: Int32
        do { fd = try Syscalls.open(FilePath(path), O_RDONLY | O_NONBLOCK | O_NOCTTY) } catch {
            if error == .noSuchFileOrDirectory { return nil }
            throw RejectReason(code, "cannot read \(path): \(error)")
        }
        defer { Syscalls.close(fd) }
        let st: stat
        do { st = try Syscalls.fstat(fd) } catch { throw RejectReason(code, "cannot read \(path): \(error)") }
        guard st.st_mode & S_IFMT == S_IFREG else { throw RejectReason(code, "\(path) is not a regular file") }
        guard st.st_size <= maximumFileSize else {
            throw RejectReason(code, "\(path) is \(st.st_size) bytes, over the limit of \(maximumFileSize / 1024) KiB")
        }
        do { return try Syscalls.read(fd, limit: maximumFileSize) } catch { throw RejectReason(code, "cannot read \(path): \(error)") }
    }

    /// The first MiB of a regular file, or nil (for files that are optional hints, such as a
    /// Gemfile read for preset detection). Opened non-blocking, regular files only.
    static func readSmallFile(_ path: String) -> [UInt8]? {
        guard let fd = try? Syscalls.open(FilePath(path), O_RDONLY | O_NONBLOCK) else { return nil }
        defer { Syscalls.close(fd) }
        guard let st = try? Syscalls.fstat(fd), st.st_mode & S_IFMT == S_IFREG else { return nil }
        return try? Syscalls.read(fd, limit: 1 << 20)
    }
}
