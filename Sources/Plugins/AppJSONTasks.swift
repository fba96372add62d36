import ReleaseKit

/// A task that runs one of app.json's scripts under `/bin/sh -c`, as Dokku and Heroku run it:
/// on when the script exists, its gate switching it off; never covered by the Procfile's
/// `release:` line (the script is the app's own). Each task says which script and where.
protocol AppJSONScriptTask: ReleaseTask {
    /// Where the script is in app.json: `scripts.dokku.predeploy`.
    static var scriptPlace: String { get }
    /// The script, from app.json as read.
    static func script(in json: AppJSON) -> String?
}

extension AppJSONScriptTask {
    public static var isCoverable: Bool { false }
    public static func defaultCommand(in app: AppInspection) -> Command? { script(in: app.appJSON).map(Command.shell) }
    public static func defaultCommandSource(in app: AppInspection) -> String { "app.json \(scriptPlace)" }
    public static func missingCommand(in app: AppInspection) -> String {
        "\(gate) is on but \(app.directory)/\(AppJSON.fileName) has no \(scriptPlace)"
    }
    public static func isOnByDefault(in app: AppInspection) -> Bool { script(in: app.appJSON) != nil }
    public static var onWhenUnset: String? { "when app.json has \(scriptPlace)" }
}

/// app.json's `scripts.dokku.predeploy`, before traffic moves, as Dokku runs it: first of the
/// release's tasks (before the Procfile's `release:` line). `RUN_APP_JSON_PREDEPLOY=false`
/// turns it off.
public struct AppJSONPredeployTask: AppJSONScriptTask {
    public static let name = "app-json-predeploy"
    public static let gate = "RUN_APP_JSON_PREDEPLOY"
    public static let summary = "run app.json's scripts.dokku.predeploy, as Dokku does (on when it exists)"
    static let scriptPlace = "scripts.dokku.predeploy"
    static func script(in json: AppJSON) -> String? { json.dokkuPredeploy }
    public init() {}
}

/// app.json's `scripts.dokku.postdeploy`, after traffic moved, every deploy, as Dokku runs it.
/// `RUN_APP_JSON_POSTDEPLOY=false` turns it off.
public struct AppJSONPostdeployTask: AppJSONScriptTask {
    public static let name = "app-json-postdeploy"
    public static let gate = "RUN_APP_JSON_POSTDEPLOY"
    public static let summary = "run app.json's scripts.dokku.postdeploy after traffic moved, as Dokku does (on when it exists)"
    public static let phase = ReleasePhase.postdeploy
    static let scriptPlace = "scripts.dokku.postdeploy"
    static func script(in json: AppJSON) -> String? { json.dokkuPostdeploy }
    public init() {}
}

/// app.json's `scripts.postdeploy`, after traffic moved, on the app's first deploy only, as
/// Heroku runs it (bootstrap data, create an admin). `RUN_APP_JSON_FIRST_DEPLOY=false` turns it
/// off.
public struct AppJSONFirstDeployTask: AppJSONScriptTask {
    public static let name = "app-json-first-deploy"
    public static let gate = "RUN_APP_JSON_FIRST_DEPLOY"
    public static let summary = "run app.json's scripts.postdeploy on the app's first deploy only, as Heroku does (on when it exists)"
    public static let phase = ReleasePhase.postdeploy
    public static let isFirstDeployOnly = true
    static let scriptPlace = "scripts.postdeploy"
    static func script(in json: AppJSON) -> String? { json.firstDeploy }
    public init() {}
}
