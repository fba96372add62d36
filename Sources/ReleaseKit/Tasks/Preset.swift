import FoundationEssentials
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
    public static func detect(in directory: String, path: String) -> Preset? {
        func has(_ relative: String) -> Bool { FileManager.default.fileExists(atPath: directory + "/" + relative) }
        // Bounded, regular files only: the app directory is not trusted to be well-formed.
        func read(_ relative: String) -> String? {
            AppInspection.readSmallFile(directory + "/" + relative).map { String(decoding: $0, as: UTF8.self) }
        }
        if has("bin/rails") { return rails }
        if let gemfile = read("Gemfile"), gemfile.contains("gem \"rails\"") || gemfile.contains("gem 'rails'") { return rails }
        if has("manage.py") {
            return django(python: ExecutableLookup.find("python", path: path) != nil ? "python" : "python3")
        }
        if has("artisan") { return laravel }
        if let mix = read("mix.exs"), mix.contains("ecto") { return phoenix }
        if has("prisma/schema.prisma") { return prisma }
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

