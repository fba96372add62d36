import Foundation
import Glibc
import ReleaseKit
import Testing

/// The daemon trusts nothing in `incoming/`: every kind of invalid request goes to `rejected/`
/// with a record saying why, `releasectl` reports it (exit 2), and the daemon keeps serving.
/// The CLI refuses bad syntax itself, spooling nothing.
@Suite("rejections", .serialized)
struct RejectionTests {
    /// What a hostile drop needs: a fresh id, an existing app directory, a scratch folder.
    struct Context {
        let id: String
        let dir: String
        let scratch: String
    }

    /// Where the rejection lands: the record's stem, and the name the entry had in incoming/.
    struct Dropped {
        var stem: String
        var incomingName: String
    }

    enum AppField: Sendable { case null, value(String), unchecked }

    struct Kind: Sendable, CustomTestStringConvertible {
        var testDescription: String
        var code: String
        var reason: String
        var app: AppField
        var drop: @Sendable (DaemonProcess, Context) throws -> Dropped

        init(_ description: String, code: String, reason: String, app: AppField = .value("shop"),
             drop: @escaping @Sendable (DaemonProcess, Context) throws -> Dropped) {
            testDescription = description
            self.code = code
            self.reason = reason
            self.app = app
            self.drop = drop
        }

        /// A kind whose file is a request JSON with some fields changed.
        static func json(_ description: String, code: String, reason: String, app: AppField = .value("shop"),
                         changes: @escaping @Sendable (Context) throws -> [String: Any?]) -> Kind {
            Kind(description, code: code, reason: reason, app: app) { daemon, c in
                try daemon.drop(name: "\(c.id).json", contents: rawRequest(id: c.id, directory: c.dir, changes: try changes(c)))
                return Dropped(stem: c.id, incomingName: "\(c.id).json")
            }
        }

        /// A kind whose file holds the given bytes.
        static func bytes(_ description: String, code: String, reason: String, app: AppField = .null,
                          contents: @escaping @Sendable (Context) -> Data) -> Kind {
            Kind(description, code: code, reason: reason, app: app) { daemon, c in
                try daemon.drop(name: "\(c.id).json", contents: contents(c))
                return Dropped(stem: c.id, incomingName: "\(c.id).json")
            }
        }
    }

    static let kinds: [Kind] = [
        .bytes("bad JSON", code: "invalid-json", reason: "the request is not valid JSON: ") { c in
            Data(#"{"version": 1, "id": "\#(c.id)", "app": "shop", "release": "#.utf8)
        },
        .bytes("invalid UTF-8", code: "invalid-utf8", reason: "the request is not valid UTF-8") { c in
            var bytes = Array(rawRequest(id: c.id, release: "v1-XX", directory: c.dir))
            let at = bytes.firstRange(of: Array("XX".utf8))!
            bytes.replaceSubrange(at, with: [0xC3, 0x28])
            return Data(bytes)
        },
        .json("a wrong type (version as a string)", code: "schema", reason: #""version" must be a number, not a string"#) { _ in
            ["version": "1"]
        },
        .json("a wrong type (an env value that is a number)", code: "env",
              reason: #""env".RUN_MIGRATIONS_DURING_RELEASE must be a string, not a number"#) { _ in
            ["env": ["RUN_MIGRATIONS_DURING_RELEASE": 1]]
        },
        .json("a wrong type (tasks as a string)", code: "schema", reason: #""tasks" must be an array of task names, not a string"#) { _ in
            ["tasks": "migrate"]
        },
        .json("a missing field (directory)", code: "schema", reason: #"the request has no "directory""#) { _ in
            ["directory": nil]
        },
        .json("a missing field (id)", code: "schema", reason: #"the request has no "id""#) { _ in
            ["id": nil]
        },
        .json("an unknown field", code: "schema", reason: #"unknown field "priority" in the request"#) { _ in
            ["priority": "high"]
        },
        .json("an unknown task name in tasks", code: "unknown-task",
              reason: #"unknown task "deploy" (known: app-json-predeploy, procfile, migrate, seed, cache-clear, notify, post-migrate, app-json-postdeploy, app-json-first-deploy, warm-up, notify-deployed)"#) { _ in
            ["tasks": ["migrate", "deploy"]]
        },
        .json("a bad app name", code: "schema", reason: #""app" "Shop!" is not a valid app name"#, app: .unchecked) { _ in
            ["app": "Shop!"]
        },
        .json("a relative directory", code: "directory", reason: #""directory" "srv/apps/shop/v1" is not an absolute path"#) { _ in
            ["directory": "srv/apps/shop/v1"]
        },
        .json("a missing directory", code: "directory", reason: "/nonexistent-releasectl/shop/v1 does not exist") { _ in
            ["directory": "/nonexistent-releasectl/shop/v1"]
        },
        .json("a directory with '..' (even one that exists)", code: "directory", reason: "contains '..'") { c in
            ["directory": c.dir + "/../" + (c.dir as NSString).lastPathComponent]
        },
        .json("a directory that is a file", code: "directory", reason: "is not a directory") { c in
            try createFileOrThrow(c.scratch + "/plain-file", Data("x".utf8))
            return ["directory": c.scratch + "/plain-file"]
        },
        .json("a file over 1 MiB", code: "too-large", reason: "over the limit of 1048576", app: .null) { _ in
            ["env": ["PADDING": String(repeating: "x", count: 1 << 20)]]
        },
        .json("an env key with '='", code: "env", reason: #""env" has a variable name with '=' in it ("A=B")"#) { _ in
            ["env": ["A=B": "1"]]
        },
        .json("an env key with NUL", code: "env", reason: #""env" has a variable name with a NUL byte"#) { _ in
            ["env": ["A\u{0}B": "1"]]
        },
        .json("an env value with NUL", code: "env", reason: #""env".A contains a NUL byte"#) { _ in
            ["env": ["A": "x\u{0}rm -rf /"]]
        },
        Kind("a symlink (to a valid request)", code: "symlink", reason: "is a symbolic link", app: .null) { daemon, c in
            let target = c.scratch + "/target.json"
            try createFileOrThrow(target, rawRequest(id: c.id, directory: c.dir))
            try daemon.dropSymlink(name: "\(c.id).json", to: target)
            return Dropped(stem: c.id, incomingName: "\(c.id).json")
        },
        Kind("a FIFO (the daemon must not block on it)", code: "not-regular-file", reason: "is a FIFO, not a regular file", app: .null) { daemon, c in
            try daemon.dropFIFO(name: "\(c.id).json")
            return Dropped(stem: c.id, incomingName: "\(c.id).json")
        },
        Kind("a directory", code: "not-regular-file", reason: "is a directory, not a regular file", app: .null) { daemon, c in
            try daemon.dropDirectory(name: "\(c.id).json", inside: rawRequest(id: c.id, directory: c.dir))
            return Dropped(stem: c.id, incomingName: "\(c.id).json")
        },
        Kind("a hard link to another file", code: "hard-link", reason: "has 2 hard links", app: .null) { daemon, c in
            try daemon.dropHardLink(name: "\(c.id).json", contents: rawRequest(id: c.id, directory: c.dir), otherLink: c.scratch + "/other-link")
            return Dropped(stem: c.id, incomingName: "\(c.id).json")
        },
        Kind("a file whose name differs from its id", code: "file-name", reason: "it must be named") { daemon, c in
            let other = ReleaseID.generate().rawValue
            try daemon.drop(name: "\(other).json", contents: rawRequest(id: c.id, directory: c.dir))
            return Dropped(stem: other, incomingName: "\(other).json")
        },
        Kind("a file name that is no id at all (the record's id is the name made safe)", code: "file-name",
             reason: #"the file is named "release v1!.json" but its id is"#) { daemon, c in
            try daemon.drop(name: "release v1!.json", contents: rawRequest(id: c.id, directory: c.dir))
            return Dropped(stem: "release_v1_", incomingName: "release v1!.json")
        },
        Kind("a file name that is not UTF-8", code: "file-name", reason: "but its id is") { daemon, c in
            try daemon.dropRawName([0xFF, 0xFE] + Array(".json".utf8), contents: rawRequest(id: c.id, directory: c.dir))
            return Dropped(stem: "__", incomingName: "\u{FFFD}\u{FFFD}.json")
        },
    ]

    @Test("each kind of invalid request goes to rejected/ with a record; wait reports it (exit 2); the daemon keeps serving",
          arguments: kinds)
    func rejected(_ kind: Kind) async throws {
        let scratch = TempDir()
        let app = try AppFixture()
        defer { scratch.remove(); app.remove() }
        try await withRunningDaemon { daemon in
            let context = Context(id: ReleaseID.generate().rawValue, dir: app.path, scratch: scratch.path)
            let dropped = try kind.drop(daemon, context)
            let record = try await daemon.expectRejected(dropped.stem, code: kind.code, reason: kind.reason, incomingName: dropped.incomingName)
            switch kind.app {
            case .null: #expect(record["app"] is NSNull, "the app could not be read: \(record)")
            case .value(let app): #expect(record["app"] as? String == app)
            case .unchecked: break
            }
            // `releasectl wait` on the record's id: the reason, exit 2.
            let wait = try await daemon.waitCommand(dropped.stem)
            #expect(wait.status == 2, "\(wait)")
            #expect(wait.stdout.contains(": rejected: "), "\(wait)")
            #expect(wait.stdout.contains(kind.reason), "\(wait)")
            // The daemon logged it and keeps serving.
            #expect(daemon.log.contains("rejected"), "\(daemon.log)")
            try await daemon.expectStillServing()
            #expect(daemon.files(in: "incoming").isEmpty)
        }
    }

    @Test("a symlink's target and a hard link's other name are left untouched; nothing of them is read into the record")
    func linksLeftAlone() async throws {
        let scratch = TempDir()
        let app = try AppFixture()
        defer { scratch.remove(); app.remove() }
        try await withRunningDaemon { daemon in
            // A symlink to a file holding a secret-looking value: the record must not echo it.
            let target = scratch.file("secret.json")
            let secretRequest = rawRequest(id: ReleaseID.generate().rawValue, directory: app.path, changes: ["env": ["MARKER": "do-not-echo-me"]])
            try createFileOrThrow(target, secretRequest)
            let linkID = ReleaseID.generate().rawValue
            try daemon.dropSymlink(name: "\(linkID).json", to: target)
            try await daemon.expectRejected(linkID, code: "symlink", reason: "is a symbolic link")
            #expect(FileManager.default.contents(atPath: target) == secretRequest, "the target is not moved or changed")
            let linkRecord = try String(contentsOfFile: "\(daemon.spoolPath)/rejected/\(linkID).record.json", encoding: .utf8)
            #expect(!linkRecord.contains("do-not-echo-me"))
            var st = stat()
            #expect(lstat("\(daemon.spoolPath)/rejected/\(linkID).json", &st) == 0 && st.st_mode & S_IFMT == S_IFLNK,
                    "the link itself is filed, not its target")

            let hardID = ReleaseID.generate().rawValue
            let other = scratch.file("other-name")
            try daemon.dropHardLink(name: "\(hardID).json", contents: rawRequest(id: hardID, directory: app.path), otherLink: other)
            try await daemon.expectRejected(hardID, code: "hard-link", reason: "has 2 hard links")
            #expect(FileManager.default.fileExists(atPath: other))
            try await daemon.expectStillServing()
        }
    }

    @Test("a request of exactly 1 MiB is accepted; one byte more is not")
    func sizeLimitBoundary() async throws {
        let app = try AppFixture()
        defer { app.remove() }
        try await withRunningDaemon { daemon in
            // Padded in variables of at most 120 KiB each (one variable of a program's
            // environment is at most 128 KiB: a longer one is rejected for its own reason).
            func padded(_ id: String, to size: Int) -> Data {
                let names = (0..<10).map { "PADDING\($0)" }
                let base = rawRequest(id: id, directory: app.path, changes: ["env": Dictionary(uniqueKeysWithValues: names.map { ($0, "") })])
                var bytes = Array(base)
                var missing = size - base.count
                for name in names where missing > 0 {
                    let at = bytes.firstRange(of: Array("\"\(name)\":\"\"".utf8))!.upperBound - 1
                    let count = min(missing, 120 << 10)
                    bytes.insert(contentsOf: [UInt8](repeating: UInt8(ascii: "x"), count: count), at: at)
                    missing -= count
                }
                #expect(bytes.count == size)
                return Data(bytes)
            }
            let exact = ReleaseID.generate().rawValue
            try daemon.drop(name: "\(exact).json", contents: padded(exact, to: 1 << 20))
            let accepted = try await daemon.waitForRecord(exact)
            #expect(accepted.state == .succeeded, "\(accepted)")
            let over = ReleaseID.generate().rawValue
            try daemon.drop(name: "\(over).json", contents: padded(over, to: (1 << 20) + 1))
            try await daemon.expectRejected(over, code: "too-large", reason: "1048577 bytes, over the limit of 1048576 (1 MiB)")
        }
    }

    @Test("the same id dropped again after it finished is a duplicate: rejected, the first release's record untouched")
    func duplicateID() async throws {
        let work = TempDir()
        let app = try AppFixture(commands: ["migrate": "echo run >> \(work.file("runs"))"])
        defer { app.remove(); work.remove() }
        try await withRunningDaemon { daemon in
            let first = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
            #expect(first.status == 0, "\(first)")
            let id = first.lines[0]
            let original = try #require(FileManager.default.contents(atPath: "\(daemon.spoolPath)/done/\(id).json"))
            let originalRecord = try #require(FileManager.default.contents(atPath: "\(daemon.spoolPath)/done/\(id).record.json"))
            // Replay the very same request file.
            try daemon.drop(name: "\(id).json", contents: original)
            let record = try await daemon.expectRejected("\(id).duplicate", code: "duplicate-id", reason: "duplicate id: release \(id) already exists",
                                                         incomingName: "\(id).json")
            #expect(record["app"] as? String == "shop")
            #expect(try String(contentsOfFile: work.file("runs"), encoding: .utf8) == "run\n", "the task ran once only")
            #expect(FileManager.default.contents(atPath: "\(daemon.spoolPath)/done/\(id).record.json") == originalRecord)
            #expect(FileManager.default.contents(atPath: "\(daemon.spoolPath)/done/\(id).json") == original)
            // The id still means the first release.
            let wait = try await daemon.waitCommand(id)
            #expect(wait.status == 0, "\(wait)")
            // A duplicate of a rejected release is a duplicate too.
            let missing = ReleaseID.generate().rawValue
            let bad = rawRequest(id: missing, directory: "/nonexistent-releasectl/x")
            try daemon.drop(name: "\(missing).json", contents: bad)
            try await daemon.expectRejected(missing, code: "directory", reason: "does not exist")
            try daemon.drop(name: "\(missing).json", contents: bad)
            try await daemon.expectRejected("\(missing).duplicate", code: "duplicate-id", reason: "already exists", incomingName: "\(missing).json")
            try await daemon.expectStillServing()
        }
    }

    @Test("a bad request is rejected at once, even while a release of its app runs")
    func rejectedWhileAppRuns() async throws {
        let work = TempDir()
        let app = try AppFixture(commands: [
            "migrate": Barrier.raise(work.file("started")) + "; " + Barrier.waitFor(work.file("go"), else: "never released by the test"),
        ])
        defer { app.remove(); work.remove() }
        try await withRunningDaemon { daemon in
            let running = try await daemon.submit(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
            try await eventually("the first release's task to start") { FileManager.default.fileExists(atPath: work.file("started")) }
            let bad = try await daemon.submitWait(app: "shop", release: "v2", dir: "/nonexistent-releasectl/shop/v2")
            #expect(bad.status == 2, "\(bad)")
            #expect(bad.stdout.contains("/nonexistent-releasectl/shop/v2 does not exist"), "\(bad)")
            #expect(try daemon.record(running) == nil, "the first release is still running")
            try createFileOrThrow(work.file("go"), nil)
            #expect(try await daemon.waitForRecord(running).state == .succeeded)
        }
    }

    // MARK: Rejections the CLI can submit (the daemon judges them)

    @Test("submit --wait prints the daemon's reason and exits 2: missing directory, a file as directory, malformed release.toml")
    func submitWaitRejected() async throws {
        let scratch = TempDir()
        let badToml = try AppFixture(extraFiles: ["release.toml": "[tasks.deploy]\ncommand = \"cap deploy\"\n"])
        let badTimeout = try AppFixture(extraFiles: ["release.toml": "[tasks.migrate]\ncommand = \"x\"\ntimeout = \"soon\"\n"])
        let nul = try AppFixture(extraFiles: ["release.toml": "[tasks.migrate]\ncommand = [\"rake\", \"db:migrate\\u0000; rm -rf /\"]\n"])
        defer { scratch.remove(); badToml.remove(); badTimeout.remove(); nul.remove() }
        try createFileOrThrow(scratch.file("file"), nil)
        let cases: [(dir: String, code: String, reason: String)] = [
            (scratch.file("nope"), "directory", "the directory \(scratch.file("nope")) does not exist"),
            (scratch.file("file"), "directory", "\(scratch.file("file")) is not a directory"),
            (badToml.path, "release-toml", #"\#(badToml.path)/release.toml: unknown task "deploy""#),
            (badTimeout.path, "release-toml", #"\#(badTimeout.path)/release.toml: [tasks.migrate] timeout: "soon" is not a duration"#),
            (nul.path, "release-toml", "NUL character"),
        ]
        try await withRunningDaemon { daemon in
            for c in cases {
                let r = try await daemon.submitWait(app: "shop", dir: c.dir, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
                #expect(r.status == 2, "\(c.dir): \(r)")
                let id = r.lines[0]
                #expect(ReleaseID(id) != nil, "the id comes first even when rejected: \(r)")
                #expect(r.stdout.contains("==> shop v1: rejected: "), "\(r)")
                #expect(r.stdout.contains(c.reason), "\(c.reason) in \(r)")
                try await daemon.expectRejected(id, code: c.code, reason: c.reason)
                // --json --wait: the record alone on stdout.
                let j = try await daemon.submitWait(app: "shop", dir: c.dir, extra: ["--json"])
                #expect(j.status == 2)
                let record = try ReleaseRecord.decode(Array(j.stdout.utf8))
                #expect(record.state == .rejected && record.reasonCode == c.code && record.reason?.contains(c.reason) == true, "\(j)")
            }
            try await daemon.expectStillServing()
        }
    }

    // MARK: The CLI refuses bad syntax before spooling

    struct UsageCase: Sendable, CustomTestStringConvertible {
        var testDescription: String
        /// Options replacing (same name) or added to the valid base command.
        var options: [String]
        var stderr: String
        init(_ description: String, _ options: [String], _ stderr: String) {
            testDescription = description
            self.options = options
            self.stderr = stderr
        }
    }

    static let usageCases: [UsageCase] = [
        UsageCase("an upper-case app", ["--app", "Shop"], #"--app "Shop" is not a valid app name ([a-z0-9][a-z0-9-]{0,62})"#),
        UsageCase("an app starting with '-'", ["--app=-shop"], #"--app "-shop" is not a valid app name"#),
        UsageCase("an app with '_'", ["--app", "shop_1"], #"--app "shop_1" is not a valid app name"#),
        UsageCase("an app with a path", ["--app", "../etc"], #"--app "../etc" is not a valid app name"#),
        UsageCase("an empty app", ["--app", ""], #"--app "" is not a valid app name"#),
        UsageCase("an empty release", ["--release", ""], "--release must be 1 to 128 printable characters"),
        UsageCase("a release with a newline", ["--release", "v1\nv2"], "--release must be 1 to 128 printable characters"),
        UsageCase("an empty dir", ["--dir", ""], "--dir must not be empty"),
        UsageCase("an unknown task", ["--task", "deploy"], #"unknown task "deploy" (known: app-json-predeploy, procfile, migrate, seed, cache-clear, notify, post-migrate, app-json-postdeploy, app-json-first-deploy, warm-up, notify-deployed)"#),
        UsageCase("a task in the wrong case", ["--task", "migrate", "--task", "Seed"], #"unknown task "Seed""#),
        UsageCase("--env without '='", ["--env", "NOEQUALS"], #"--env "NOEQUALS" is not of the form KEY=VALUE"#),
        UsageCase("--env with an empty name", ["--env", "=value"], "--env has an empty variable name"),
        UsageCase("--env with a digit first", ["--env", "1A=b"], #"--env has an invalid variable name "1A""#),
        UsageCase("--env with a blank in the name", ["--env", "A B=c"], #"--env has an invalid variable name "A B""#),
        UsageCase("--env with a dash in the name", ["--env", "MY-VAR=c"], #"--env has an invalid variable name "MY-VAR""#),
        UsageCase("--timeout without --wait", ["--timeout", "30m"], "--timeout needs --wait"),
        UsageCase("a malformed --timeout", ["--wait", "--timeout", "soon"], #"--timeout: "soon" is not a duration"#),
        UsageCase("a missing --env-file", ["--env-file", "/nonexistent-releasectl/shop.env"], "cannot read --env-file /nonexistent-releasectl/shop.env"),
        UsageCase("a missing --app", ["--app"], "--app"),
        UsageCase("an unknown option", ["--frobnicate"], "--frobnicate"),
    ]

    /// The valid base command with `options` applied: an option given there replaces the base's.
    static func submitArguments(dir: String, _ options: [String]) -> [String] {
        var base: [(String, String)] = [("--app", "shop"), ("--release", "v1"), ("--dir", dir)]
        base.removeAll { pair in options.contains { $0 == pair.0 || $0.hasPrefix(pair.0 + "=") } }
        return ["submit"] + base.flatMap { [$0.0, $0.1] } + options
    }

    @Test("the CLI rejects bad syntax itself: exit 2, the problem on stderr, nothing spooled", arguments: usageCases)
    func usageErrors(_ c: UsageCase) async throws {
        let spool = try BareSpool()
        let app = try AppFixture()
        defer { spool.remove(); app.remove() }
        let r = try await spool.ctl(Self.submitArguments(dir: app.path, c.options))
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.contains(c.stderr), "\(r)")
        #expect(r.stdout.isEmpty, "no id is printed: \(r)")
        #expect(spool.allEntries.isEmpty, "nothing may be spooled: \(spool.allEntries)")
    }

    @Test("the valid base command does spool (so the usage cases fail for their own reason)")
    func baseCommandSpools() async throws {
        let spool = try BareSpool()
        let app = try AppFixture()
        defer { spool.remove(); app.remove() }
        let r = try await spool.ctl(Self.submitArguments(dir: app.path, ["--env", "A=1", "--task", "migrate"]))
        #expect(r.status == 0, "\(r)")
        let id = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(spool.allEntries == ["incoming/\(id).json"])
    }

    @Test("the CLI makes --dir absolute, so a relative or '..' path is never spooled as such")
    func cliMakesDirAbsolute() async throws {
        let spool = try BareSpool()
        let app = try AppFixture()
        defer { spool.remove(); app.remove() }
        let name = (app.path as NSString).lastPathComponent
        let r = try await spool.ctl(Self.submitArguments(dir: "../\(name)/./", []), workingDirectory: app.path)
        #expect(r.status == 0, "\(r)")
        let id = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let data = try #require(FileManager.default.contents(atPath: "\(spool.root)/incoming/\(id).json"))
        let request = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect(request["directory"] as? String == app.path)
    }

    @Test("--env-file errors exit 2 naming file:line, spooling nothing", arguments: [
        ("A=1\n# fine\nbroken line\n", 3, "expected '=' after broken"),
        ("A=1\nB=\"unterminated\nC=3\n", 2, "unterminated double-quoted value for B"),
        ("export A='x' trailing\n", 1, "unexpected text after the quoted value of A"),
        ("\n\n\n\n=nokey\n", 5, "expected KEY=VALUE"),
    ])
    func envFileSyntaxErrors(_ text: String, _ line: Int, _ problem: String) async throws {
        let spool = try BareSpool()
        let app = try AppFixture()
        let files = TempDir()
        defer { spool.remove(); app.remove(); files.remove() }
        let good = files.file("good.env")
        let bad = files.file("shop.env")
        try "GOOD=1\n".write(toFile: good, atomically: true, encoding: .utf8)
        try text.write(toFile: bad, atomically: true, encoding: .utf8)
        let r = try await spool.ctl(Self.submitArguments(dir: app.path, ["--env-file", good, "--env-file", bad]))
        #expect(r.status == 2, "\(r)")
        #expect(r.stderr.contains("\(bad):\(line): \(problem)"), "\(r)")
        #expect(spool.allEntries.isEmpty, "\(spool.allEntries)")
    }

    @Test("an unreadable --env-file (a directory, not UTF-8, no permission) exits 2, spooling nothing")
    func envFileUnreadable() async throws {
        let spool = try BareSpool()
        let app = try AppFixture()
        let files = TempDir()
        defer { spool.remove(); app.remove(); files.remove() }
        let notUTF8 = files.file("latin1.env")
        try createFileOrThrow(notUTF8, Data([0x41, 0x3D, 0xE9, 0x0A]))   // A=é in Latin-1
        let noAccess = files.file("secret.env")
        try createFileOrThrow(noAccess, Data("A=1\n".utf8))
        chmod(noAccess, 0o000)
        var cases: [(String, String)] = [
            (files.path, "cannot read --env-file \(files.path)"),
            (notUTF8, "--env-file \(notUTF8) is not valid UTF-8"),
        ]
        if geteuid() != 0 { cases.append((noAccess, "cannot read --env-file \(noAccess)")) }   // root reads anything
        for (file, message) in cases {
            let r = try await spool.ctl(Self.submitArguments(dir: app.path, ["--env-file", file]))
            #expect(r.status == 2, "\(file): \(r)")
            #expect(r.stderr.contains(message), "\(r)")
        }
        #expect(spool.allEntries.isEmpty, "\(spool.allEntries)")
    }
}
