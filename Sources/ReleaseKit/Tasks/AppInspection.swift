/// What an app directory says about its release: its release.toml, the `release:` line of its
/// Procfile, the scripts of its app.json, and the framework preset detected from its files.
public struct AppInspection: Sendable {
    public var directory: String
    public var config: AppConfig
    public var procfileRelease: String?
    public var appJSON = AppJSON()
    public var preset: Preset?

    public init(directory: String, config: AppConfig = AppConfig(), procfileRelease: String? = nil, preset: Preset? = nil) {
        self.directory = directory
        self.config = config
        self.procfileRelease = procfileRelease
        self.preset = preset
    }

    /// The largest release.toml, Procfile or app.json read.
    public static let maximumFileSize = 64 * 1024
    /// The most read of a file that is only a hint (a Gemfile read for preset detection).
    public static let maximumHintSize = 1 << 20

    /// Reads the app directory at `directory` (see `inspect(_:path:registry:)`).
    public static func inspect(directory: String, path: String, registry: [any ReleaseTask.Type]) throws(RejectReason) -> AppInspection {
        try inspect(AppDirectory.open(directory), path: path, registry: registry)
    }

    /// Reads an app's release.toml, Procfile, app.json and preset files, each opened beneath the app
    /// directory (see `AppDirectory`). A missing release.toml, Procfile or app.json is fine; one that is
    /// malformed, unreadable, not a regular file, a link leading out, or over 64 KiB rejects
    /// the release, naming the file: a file the daemon cannot read must never make it skip a
    /// task silently.
    ///
    /// `configFrom`: where release.toml is read from instead when it has one (an image
    /// release's `--dir`, whose release.toml wins over the image's).
    public static func inspect(_ app: AppDirectory, configFrom: AppDirectory? = nil, path: String,
                               registry: [any ReleaseTask.Type]) throws(RejectReason) -> AppInspection {
        var inspection = AppInspection(directory: app.shownPath)
        var source = app
        var found = try configFrom?.read(AppConfig.fileName, limit: maximumFileSize, code: .appConfig)
        if found != nil { source = configFrom! } else { found = try app.read(AppConfig.fileName, limit: maximumFileSize, code: .appConfig) }
        if let bytes = found {
            let tomlPath = source.display(AppConfig.fileName)
            guard let text = String(validating: bytes, as: UTF8.self) else {
                throw RejectReason(.appConfig, "\(tomlPath): not valid UTF-8")
            }
            inspection.config = try AppConfig.parse(text, path: tomlPath, taskNames: registry.map { $0.name },
                                                    commandless: Set(registry.filter { !$0.takesCommand }.map { $0.name }),
                                                    migrations: Set(registry.filter { $0.isMigration }.map { $0.name }))
        }
        if let bytes = try app.read(Procfile.fileName, limit: maximumFileSize, code: .procfile) {
            inspection.procfileRelease = Procfile.releaseCommand(in: String(decoding: bytes, as: UTF8.self))
        }
        if let bytes = try app.read(AppJSON.fileName, limit: maximumFileSize, code: .appJSON) {
            inspection.appJSON = try AppJSON.parse(bytes, path: app.display(AppJSON.fileName))
        }
        inspection.preset = try Preset.detect(in: app, path: path)
        return inspection
    }
}
