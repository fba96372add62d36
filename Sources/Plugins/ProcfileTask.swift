import ReleaseKit

/// Runs the `release:` line of the app's Procfile under `/bin/sh -c`, as Heroku and Dokku do.
/// On by default when the Procfile has such a line; `RUN_PROCFILE_RELEASE=false` turns it off.
/// While it runs, gated tasks without a release.toml command are left to it.
public struct ProcfileTask: ReleaseTask {
    public static let name = "procfile"
    public static let gate = "RUN_PROCFILE_RELEASE"
    public static let summary = "run the Procfile's release: line, as Heroku does (on when the line exists)"
    public static let coverage: String? = "left to the Procfile release: line"
    public static func defaultCommand(in app: AppInspection) -> Command? { app.procfileRelease.map(Command.shell) }
    public static func defaultCommandSource(in app: AppInspection) -> String { "the Procfile release: line" }
    public static func missingCommand(in app: AppInspection) -> String {
        "\(gate) is on but \(app.directory)/Procfile has no release: line"
    }
    public static func isOnByDefault(in app: AppInspection) -> Bool { app.procfileRelease != nil }
    public static let onWhenUnset: String? = "when the Procfile has a release: line"
    public init() {}
}
