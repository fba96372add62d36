import ReleaseKit

/// Runs the app's database migrations.
public struct MigrateTask: ReleaseTask {
    public static let name = "migrate"
    public static let gate = "RUN_MIGRATIONS_DURING_RELEASE"
    public static let summary = "run database migrations (Rails: bundle exec rails db:migrate)"
    public static let isMigration = true

    /// Each framework's migration command.
    public static func defaultCommand(in app: AppInspection) -> Command? {
        switch app.preset {
        case .rails?: .argv(["bundle", "exec", "rails", "db:migrate"])
        case .django(let python)?: .argv([python, "manage.py", "migrate", "--noinput"])
        case .laravel?: .argv(["php", "artisan", "migrate", "--force"])
        case .phoenix?: .argv(["mix", "ecto.migrate"])
        case .prisma?: .argv(["npx", "prisma", "migrate", "deploy"])
        case nil: nil
        }
    }

    public init() {}
}
