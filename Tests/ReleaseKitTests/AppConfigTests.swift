import ReleaseKit
import Testing

/// An app's release.toml: commands and timeouts per task; anything malformed rejects the
/// release naming the file and the problem.
@Suite("release.toml")
struct AppConfigTests {
    static let path = "/srv/apps/shop/v42/release.toml"
    static let taskNames = ["procfile", "migrate", "seed", "cache-clear", "notify"]

    static func parse(_ text: String) throws(RejectReason) -> AppConfig {
        try AppConfig.parse(text, path: path, taskNames: taskNames, commandless: ["notify"])
    }

    @Test("an empty file, or one with only comments, configures nothing")
    func empty() throws {
        #expect(try Self.parse("") == AppConfig())
        #expect(try Self.parse("# nothing here\n\n") == AppConfig())
        #expect(try Self.parse("[tasks]\n") == AppConfig())
    }

    @Test("a string command runs under /bin/sh -c; an array is argv; the design's example parses")
    func commands() throws {
        let config = try Self.parse("""
            [tasks.migrate]
            command = ["bin/rails", "db:migrate"]   # argv array, no shell
            timeout = "15m"
            [tasks.cache-clear]
            command = "bundle exec rails r 'Rails.cache.clear'"   # a string runs under /bin/sh -c
            """)
        #expect(config.tasks.keys.sorted() == ["cache-clear", "migrate"])
        #expect(config.tasks["migrate"]?.command == .argv(["bin/rails", "db:migrate"]))
        #expect(config.tasks["migrate"]?.timeout == .seconds(900))
        #expect(config.tasks["cache-clear"]?.command == .shell("bundle exec rails r 'Rails.cache.clear'"))
        #expect(config.tasks["cache-clear"]?.timeout == nil)
        #expect(config.tasks["cache-clear"]?.command?.arguments == ["/bin/sh", "-c", "bundle exec rails r 'Rails.cache.clear'"])
        #expect(config.tasks["migrate"]?.command?.arguments == ["bin/rails", "db:migrate"])
    }

    @Test("first-deploy = true marks a task; false unmarks one that is so by itself")
    func firstDeploy() throws {
        let config = try Self.parse("[tasks.seed]\nfirst-deploy = true\n[tasks.migrate]\nfirst-deploy = false\n")
        #expect(config.tasks["seed"]?.firstDeploy == true)
        #expect(config.tasks["migrate"]?.firstDeploy == false)
        #expect(config.tasks["seed"]?.command == nil)
    }

    @Test("timeouts as duration strings or whole seconds; a table with only a timeout keeps no command")
    func timeouts() throws {
        let config = try Self.parse("""
            [tasks.seed]
            timeout = 90
            [tasks.migrate]
            timeout = "1h30m"
            [tasks.notify]
            timeout = "10s"
            """)
        #expect(config.tasks["seed"] == AppConfig.TaskSettings(command: nil, timeout: .seconds(90)))
        #expect(config.tasks["migrate"]?.timeout == .seconds(5400))
        #expect(config.tasks["notify"]?.timeout == .seconds(10), "notify takes a timeout, just no command")
    }

    @Test("inline tables and dotted keys are the same TOML")
    func tomlForms() throws {
        let inline = try Self.parse(#"tasks = { migrate = { command = "make migrate" } }"#)
        let dotted = try Self.parse(#"tasks.migrate.command = "make migrate""#)
        #expect(inline.tasks["migrate"]?.command == .shell("make migrate"))
        #expect(inline == dotted)
    }

    @Test("commands show as a person would type them")
    func commandDescription() {
        #expect(Command.shell("echo 'a b' | wc").description == "echo 'a b' | wc")
        #expect(Command.argv(["bin/rails", "db:migrate"]).description == "bin/rails db:migrate")
        #expect(Command.argv(["rails", "r", "Rails.cache.clear"]).description == "rails r Rails.cache.clear")
        #expect(Command.argv(["echo", "a b", "it's", ""]).description == #"echo 'a b' 'it'\''s' ''"#)
    }

    struct Case: Sendable, CustomTestStringConvertible {
        var toml: String
        var problem: String
        var testDescription: String { problem }
        init(_ toml: String, _ problem: String) {
            self.toml = toml
            self.problem = problem
        }
    }

    static let cases: [Case] = [
        Case("[other]\nx = 1", #"unknown key "other" (release.toml holds [tasks.<name>] tables, [limits] and workdir)"#),
        Case("tasks = 5", #""tasks" must be a table of [tasks.<name>] tables"#),
        Case("[tasks.deploy]\ncommand = \"x\"", #"unknown task "deploy" (known: procfile, migrate, seed, cache-clear, notify)"#),
        Case("[tasks.Migrate]\ncommand = \"x\"", #"unknown task "Migrate" (known: procfile, migrate, seed, cache-clear, notify)"#),
        Case("[tasks]\nmigrate = \"x\"", "[tasks.migrate] must be a table"),
        Case("[tasks.notify]\ncommand = \"curl x\"", "[tasks.notify] takes no command"),
        Case("[tasks.migrate]\ncommand = \"\"", "[tasks.migrate] command is empty"),
        Case("[tasks.migrate]\ncommand = \"  \\t \"", "[tasks.migrate] command is empty"),
        Case("[tasks.migrate]\ncommand = []", "[tasks.migrate] command is empty"),
        Case("[tasks.migrate]\ncommand = [\"\", \"x\"]", "[tasks.migrate] command is empty"),
        Case("[tasks.migrate]\ncommand = [\"rake\", 1]", "[tasks.migrate] command array must hold only strings"),
        Case("[tasks.migrate]\ncommand = 5", "[tasks.migrate] command must be a string (run by /bin/sh -c) or an array of strings"),
        Case("[tasks.migrate]\ncommand = { run = \"x\" }", "[tasks.migrate] command must be a string (run by /bin/sh -c) or an array of strings"),
        Case("[tasks.migrate]\ncmd = \"x\"", #"unknown key "cmd" in [tasks.migrate] (known: command, timeout, first-deploy, memory, cpus, pids)"#),
        Case("[tasks.seed]\nfirst-deploy = \"yes\"", #"[tasks.seed] first-deploy must be true or false, not a string"#),
        Case("[tasks.seed]\nfirst-deploy = 1", #"[tasks.seed] first-deploy must be true or false, not an integer"#),
        Case("[tasks.migrate]\ntimeout = \"soon\"", #"[tasks.migrate] timeout: "soon" is not a duration (examples: 90, 30s, 15m, 1h30m, 500ms)"#),
        Case("[tasks.migrate]\ntimeout = \"0s\"", #"[tasks.migrate] timeout: "0s" is not a duration (examples: 90, 30s, 15m, 1h30m, 500ms)"#),
        Case("[tasks.migrate]\ntimeout = \"0\"", #"[tasks.migrate] timeout: "0" is not a duration (examples: 90, 30s, 15m, 1h30m, 500ms)"#),
        Case("[tasks.migrate]\ntimeout = 0", #"[tasks.migrate] timeout: "0" is not a duration (examples: 90, 30s, 15m, 1h30m, 500ms)"#),
        Case("[tasks.migrate]\ntimeout = -5", #"[tasks.migrate] timeout: "-5" is not a duration (examples: 90, 30s, 15m, 1h30m, 500ms)"#),
    ]

    @Test("each malformed file rejects with a release-toml reason naming the file and the problem", arguments: cases)
    func malformed(_ c: Case) {
        let error = #expect(throws: RejectReason.self) { try Self.parse(c.toml) }
        #expect(error?.code == .appConfig)
        #expect(error?.message == "\(Self.path): \(c.problem)", "\(c.toml)")
    }

    @Test("a NUL, escaped or raw, rejects naming the file: it must never silently cut a command short", arguments: [
        ("[tasks.migrate]\ncommand = [\"rake\", \"db:migrate\\u0000; rm -rf /\"]", "NUL"),
        ("[tasks.migrate]\n\ncommand = \"a\\U00000000b\"", "NUL"),
        ("[tasks.migrate]\ncommand = \"ok\"\n\u{0}[tasks.seed]\ncommand = \"x\"", "line 3: "),
    ])
    func nulRejects(_ toml: String, _ problem: String) {
        let error = #expect(throws: RejectReason.self) { try Self.parse(toml) }
        #expect(error?.code == .appConfig)
        #expect(error?.message.hasPrefix("\(Self.path): ") == true, "\(String(describing: error))")
        #expect(error?.message.contains(problem) == true, "\(String(describing: error))")
    }

    @Test("an escaped backslash before u0000 is just text")
    func escapedBackslashIsNotNUL() throws {
        let config = try Self.parse(#"tasks.migrate.command = "printf '\\u0000'""#)
        #expect(config.tasks["migrate"]?.command == .shell(#"printf '\u0000'"#))
    }

    @Test("bad TOML names the file and the line", arguments: [
        ("[tasks.migrate]\ncommand = \"unterminated\n", 2),
        ("\n\n\n[tasks.migrate\n", 4),
        ("[tasks.migrate]\ncommand = \"a\"\ncommand = \"b\"\n", 3),
        ("= 1", 1),
    ])
    func badTOML(_ toml: String, _ line: Int) {
        let error = #expect(throws: RejectReason.self) { try Self.parse(toml) }
        #expect(error?.code == .appConfig)
        #expect(error?.message.hasPrefix("\(Self.path): line \(line): ") == true, "\(String(describing: error))")
    }
}
