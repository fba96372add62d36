/// Builds a task's environment: the request's env, plus the release's own variables, plus
/// PATH, HOME and LANG defaults. Nothing of the daemon's own environment.
public enum TaskEnvironment {
    public static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    public static let defaultLang = "C.UTF-8"

    /// `directory`: where the task runs (the app directory, or the container's working
    /// directory for an image release).
    public static func make(request: ReleaseRequest, task: String, home: String, directory: String) -> [String: String] {
        var env = request.env
        env["RELEASE_ID"] = request.id.rawValue
        env["RELEASE_APP"] = request.app
        env["RELEASE_NAME"] = request.release
        env["RELEASE_DIR"] = directory
        env["RELEASE_TASK"] = task
        if env["PATH"] == nil { env["PATH"] = defaultPath }
        if env["HOME"] == nil { env["HOME"] = home }
        if env["LANG"] == nil { env["LANG"] = defaultLang }
        return env
    }

    /// The PATH a task of this request will see.
    public static func path(for env: [String: String]) -> String {
        env["PATH"] ?? defaultPath
    }
}
