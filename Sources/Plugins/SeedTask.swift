import ReleaseKit

/// Seeds the app's database.
public struct SeedTask: ReleaseTask {
    public static let name = "seed"
    public static let gate = "SEED_DB_DURING_RELEASE"
    public static let summary = "seed the database (Rails: bundle exec rails db:seed)"
    public init() {}
}
