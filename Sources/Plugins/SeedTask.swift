import ReleaseKit

/// Seeds the app's database.
public struct SeedTask: ReleaseTask {
    public static let name = "seed"
    public static let gate = "SEED_DB_DURING_RELEASE"
    public static let summary = "seed the database (Rails: bundle exec rails db:seed)"

    /// Each framework's seed command (Django has none of its own).
    public static func defaultCommand(in app: AppInspection) -> Command? {
        switch app.preset {
        case .rails?: .argv(["bundle", "exec", "rails", "db:seed"])
        case .laravel?: .argv(["php", "artisan", "db:seed", "--force"])
        case .phoenix?: .argv(["mix", "run", "priv/repo/seeds.exs"])
        case .prisma?: .argv(["npx", "prisma", "db", "seed"])
        case .django?, nil: nil
        }
    }

    public init() {}
}
