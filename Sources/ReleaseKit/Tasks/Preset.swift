import Glibc
import SystemPackage

/// A framework preset: the commands a framework's release tasks conventionally use, chosen
/// from what the app directory holds when release.toml doesn't name a command.
public struct Preset: Sendable, Equatable {
    public var name: String
    /// Commands by task name; a task missing here has no preset command.
    public var commands: [String: Command]

    public init(name: String, commands: [String: Command]) {
        self.name = name
        self.commands = commands
    }

    /// Rails: the seed's commands.
    public static let rails = Preset(name: "rails", commands: [
        "migrate": .argv(["bundle", "exec", "rails", "db:migrate"]),
        "seed": .argv(["bundle", "exec", "rails", "db:seed"]),
        "cache-clear": .argv(["bundle", "exec", "rails", "r", "Rails.cache.clear"]),
    ])

    /// Django, run with `python` (or `python3` when the task's PATH has no `python`).
    public static func django(python: String = "python") -> Preset {
        Preset(name: "django", commands: [
            "migrate": .argv([python, "manage.py", "migrate", "--noinput"]),
        ])
    }

    public static let laravel = Preset(name: "laravel", commands: [
        "migrate": .argv(["php", "artisan", "migrate", "--force"]),
        "seed": .argv(["php", "artisan", "db:seed", "--force"]),
        "cache-clear": .argv(["php", "artisan", "cache:clear"]),
    ])

    public static let phoenix = Preset(name: "phoenix", commands: [
        "migrate": .argv(["mix", "ecto.migrate"]),
        "seed": .argv(["mix", "run", "priv/repo/seeds.exs"]),
    ])

    public static let prisma = Preset(name: "prisma", commands: [
        "migrate": .argv(["npx", "prisma", "migrate", "deploy"]),
        "seed": .argv(["npx", "prisma", "db", "seed"]),
    ])

    /// Every preset, in the order detection tries them.
    public static let all: [Preset] = [rails, django(), laravel, phoenix, prisma]

    /// The preset for an app directory, or nil. `path` is the task's PATH (for Django's python).
    /// The files looked at are the app's, read beneath its directory like every app file.
    public static func detect(in app: AppDirectory, path: String) throws(RejectReason) -> Preset? {
        func has(_ relative: String) throws(RejectReason) -> Bool { try app.contains(relative, code: .appFile) }
        // A file read as a hint (bounded, regular files only): missing is nil.
        func hint(_ relative: String) throws(RejectReason) -> String? {
            try app.read(relative, limit: AppInspection.maximumHintSize, code: .appFile).map { String(decoding: $0, as: UTF8.self) }
        }
        if try has("bin/rails") { return rails }
        if let gemfile = try hint("Gemfile"), gemfile.contains("gem \"rails\"") || gemfile.contains("gem 'rails'") { return rails }
        if try has("manage.py") {
            return django(python: ExecutableLookup.find("python", path: path) != nil ? "python" : "python3")
        }
        if try has("artisan") { return laravel }
        if let mix = try hint("mix.exs"), mix.contains("ecto") { return phoenix }
        if try has("prisma/schema.prisma") { return prisma }
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

