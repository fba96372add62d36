import ReleaseKit

/// Clears the app's cache.
public struct CacheClearTask: ReleaseTask {
    public static let name = "cache-clear"
    public static let gate = "CLEAR_CACHE_DURING_RELEASE"
    public static let summary = "clear the application cache (Rails: bundle exec rails r Rails.cache.clear)"
    public init() {}
}
