import ReleaseKit

/// Runs the app's database migrations.
public struct MigrateTask: ReleaseTask {
    public static let name = "migrate"
    public static let gate = "RUN_MIGRATIONS_DURING_RELEASE"
    public static let summary = "run database migrations (Rails: bundle exec rails db:migrate)"
    public init() {}
}
