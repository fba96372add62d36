import Glibc
import ReleaseSupport
import SystemPackage

/// A framework preset: the framework an app directory is detected to use. When release.toml
/// names no command for a task, the task offers its framework's conventional one (each task
/// knows its own: `ReleaseTask.defaultCommand(in:)`).
public enum Preset: Sendable, Equatable {
    case rails
    /// Django, whose commands run `python` from the task's PATH if it has one, else `python3`.
    case django(python: String)
    case laravel
    case phoenix
    case prisma

    /// The name shown in `plan` and `plugins`: `rails`.
    public var name: String {
        switch self {
        case .rails: "rails"
        case .django: "django"
        case .laravel: "laravel"
        case .phoenix: "phoenix"
        case .prisma: "prisma"
        }
    }

    /// Every preset, in the order detection tries them.
    public static let all: [Preset] = [.rails, .django(python: "python"), .laravel, .phoenix, .prisma]

    /// The preset for an app directory, or nil. `path` is the task's PATH (for Django's python).
    /// The files looked at are the app's, read beneath its directory like every app file.
    public static func detect(in app: AppDirectory, path: String) throws(RejectReason) -> Preset? {
        func has(_ relative: String) throws(RejectReason) -> Bool { try app.contains(relative, code: .appFile) }
        // A file read as a hint (bounded, regular files only): missing is nil.
        func hint(_ relative: String) throws(RejectReason) -> String? {
            try app.read(relative, limit: AppInspection.maximumHintSize, code: .appFile).map { String(decoding: $0, as: UTF8.self) }
        }
        if try has("bin/rails") { return .rails }
        if let gemfile = try hint("Gemfile"), gemfile.contains("gem \"rails\"") || gemfile.contains("gem 'rails'") { return .rails }
        if try has("manage.py") {
            return .django(python: ExecutableLookup.find("python", path: path) != nil ? "python" : "python3")
        }
        if try has("artisan") { return .laravel }
        if let mix = try hint("mix.exs"), mix.contains("ecto") { return .phoenix }
        if try has("prisma/schema.prisma") { return .prisma }
        return nil
    }
}

/// Finds a bare command name in a PATH, as a shell would.
public enum ExecutableLookup {
    public static func find(_ name: String, path: String) -> String? {
        for dir in path.split(separator: ":", omittingEmptySubsequences: true) {
            let candidate = "\(dir)/\(name)"
            if access(candidate, X_OK) == 0, let st = try? Syscalls.statPath(FilePath(candidate)), st.st_mode & S_IFMT != S_IFDIR {
                return candidate
            }
        }
        return nil
    }
}

