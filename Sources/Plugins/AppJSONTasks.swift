import ReleaseKit

/// Runs app.json's `scripts.dokku.predeploy` under `/bin/sh -c` before traffic moves, as Dokku
/// does: first of the release's tasks (before the Procfile's `release:` line). On when the
/// script exists; `RUN_APP_JSON_PREDEPLOY=false` turns it off.
public struct AppJSONPredeployTask: ReleaseTask {
    public static let name = "app-json-predeploy"
    public static let gate = "RUN_APP_JSON_PREDEPLOY"
    public static let summary = "run app.json's scripts.dokku.predeploy, as Dokku does (on when it exists)"
    public static let isCoverable = false
    public static func defaultCommand(in app: AppInspection) -> Command? { app.appJSON.dokkuPredeploy.map(Command.shell) }
    public static func defaultCommandSource(in app: AppInspection) -> String { "app.json scripts.dokku.predeploy" }
    public static func missingCommand(in app: AppInspection) -> String {
        "\(gate) is on but \(app.directory)/\(AppJSON.fileName) has no scripts.dokku.predeploy"
    }
    public static func isOnByDefault(in app: AppInspection) -> Bool { app.appJSON.dokkuPredeploy != nil }
    public static let onWhenUnset: String? = "when app.json has scripts.dokku.predeploy"
    public init() {}
}

/// Runs app.json's `scripts.dokku.postdeploy` under `/bin/sh -c` after traffic moved, every
/// deploy, as Dokku does. On when the script exists; `RUN_APP_JSON_POSTDEPLOY=false` turns it
/// off.
public struct AppJSONPostdeployTask: ReleaseTask {
    public static let name = "app-json-postdeploy"
    public static let gate = "RUN_APP_JSON_POSTDEPLOY"
    public static let summary = "run app.json's scripts.dokku.postdeploy after traffic moved, as Dokku does (on when it exists)"
    public static let phase = ReleasePhase.postdeploy
    public static let isCoverable = false
    public static func defaultCommand(in app: AppInspection) -> Command? { app.appJSON.dokkuPostdeploy.map(Command.shell) }
    public static func defaultCommandSource(in app: AppInspection) -> String { "app.json scripts.dokku.postdeploy" }
    public static func missingCommand(in app: AppInspection) -> String {
        "\(gate) is on but \(app.directory)/\(AppJSON.fileName) has no scripts.dokku.postdeploy"
    }
    public static func isOnByDefault(in app: AppInspection) -> Bool { app.appJSON.dokkuPostdeploy != nil }
    public static let onWhenUnset: String? = "when app.json has scripts.dokku.postdeploy"
    public init() {}
}

/// Runs app.json's `scripts.postdeploy` under `/bin/sh -c` after traffic moved, on the app's
/// first successful deploy only, as Heroku does (bootstrap data, create an admin). On when the
/// script exists; `RUN_APP_JSON_FIRST_DEPLOY=false` turns it off.
public struct AppJSONFirstDeployTask: ReleaseTask {
    public static let name = "app-json-first-deploy"
    public static let gate = "RUN_APP_JSON_FIRST_DEPLOY"
    public static let summary = "run app.json's scripts.postdeploy on the app's first deploy only, as Heroku does (on when it exists)"
    public static let phase = ReleasePhase.postdeploy
    public static let isCoverable = false
    public static let isFirstDeployOnly = true
    public static func defaultCommand(in app: AppInspection) -> Command? { app.appJSON.firstDeploy.map(Command.shell) }
    public static func defaultCommandSource(in app: AppInspection) -> String { "app.json scripts.postdeploy" }
    public static func missingCommand(in app: AppInspection) -> String {
        "\(gate) is on but \(app.directory)/\(AppJSON.fileName) has no scripts.postdeploy"
    }
    public static func isOnByDefault(in app: AppInspection) -> Bool { app.appJSON.firstDeploy != nil }
    public static let onWhenUnset: String? = "when app.json has scripts.postdeploy"
    public init() {}
}
