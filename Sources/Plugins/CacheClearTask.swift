import ReleaseKit

/// Clears the app's cache.
public struct CacheClearTask: ReleaseTask {
    public static let name = "cache-clear"
    public static let gate = "CLEAR_CACHE_DURING_RELEASE"
    public static let summary = "clear the application cache (Rails: bundle exec rails r Rails.cache.clear)"

    /// Each framework's cache command (Rails and Laravel have one).
    public static func defaultCommand(in app: AppInspection) -> Command? {
        switch app.preset {
        case .rails?: .argv(["bundle", "exec", "rails", "r", "Rails.cache.clear"])
        case .laravel?: .argv(["php", "artisan", "cache:clear"])
        case .django?, .phoenix?, .prisma?, nil: nil
        }
    }

    public init() {}
}
