import Foundation
import Glibc
import ReleaseKit
import Testing

/// Strict inputs and honest output, end to end: release.toml as TOML 1.0.0 says, plan's exit
/// codes, JSON that is the same bytes every time, and messages that state each fact once.
@Suite("strict inputs and honest output", .serialized)
struct StrictnessTests {
    @Test("release.toml: a leading BOM and CRLF are fine; a table defined twice rejects, naming the line")
    func toml() async throws {
        let daemon = try await DaemonProcess()
        let bom = try AppFixture()
        defer { bom.remove() }
        try Data([0xEF, 0xBB, 0xBF] + Array("[tasks.migrate]\r\ncommand = \"echo with a BOM\"\r\n".utf8))
            .write(to: URL(fileURLWithPath: bom.file("release.toml")))
        let ok = try await daemon.submitWait(app: "shop", dir: bom.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        #expect(ok.status == 0, "\(ok)")
        #expect(ok.stdout.contains("with a BOM"))
        let twice = try AppFixture(extraFiles: ["release.toml": "[tasks.migrate]\ncommand = \"a\"\n[tasks.migrate]\ncommand = \"b\"\n"])
        defer { twice.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: twice.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        #expect(r.status == 2, "\(r)")
        #expect(r.stdout.contains("release.toml: line 3:"), "\(r)")
        #expect(r.stdout.contains("defined twice") || r.stdout.contains("already"), "\(r)")
        await daemon.cleanUp()
    }

    @Test("plan exits 0 when all is well, 1 when a task is known to fail (FAIL, willFail), 2 when the release would be rejected")
    func planExitCodes() async throws {
        let app = try AppFixture(commands: ["migrate": "true"])
        defer { app.remove() }
        func plan(_ env: [String: String], json: Bool = false) async throws -> CommandResult {
            try await runProgram(Binaries.releasectl, ["plan", "--app", "shop", "--dir", app.path] + env.sorted { $0.key < $1.key }
                .flatMap { ["--env", "\($0.key)=\($0.value)"] } + (json ? ["--json"] : []), environment: ["PATH": "/usr/bin:/bin"],
                inheritEnvironment: false)
        }
        #expect(try await plan(["RUN_MIGRATIONS_DURING_RELEASE": "1"]).status == 0)
        let notify = try await plan(["RUN_MIGRATIONS_DURING_RELEASE": "1", "NOTIFY_DURING_RELEASE": "1"])
        #expect(notify.status == 1, "notify without a URL: \(notify)")
        #expect(notify.stdout.contains("FAIL  notify"), "\(notify)")
        #expect(!notify.stdout.contains("run   notify"), "\(notify)")
        let json = try await plan(["RUN_MIGRATIONS_DURING_RELEASE": "1", "NOTIFY_DURING_RELEASE": "1", "SEED_DB_DURING_RELEASE": "1"], json: true)
        #expect(json.status == 1, "\(json)")
        let tasks = try #require((try jsonObject(json.stdout))["tasks"] as? [[String: Any]])
        let byName = Dictionary(uniqueKeysWithValues: tasks.map { ($0["name"] as! String, $0) })
        #expect(byName["notify"]?["willFail"] as? Bool == true)
        #expect(byName["notify"]?["problem"] as? String == "RELEASE_NOTIFY_URL is not set")
        #expect(byName["seed"]?["willFail"] as? Bool == true, "seed has no command")
        #expect(byName["migrate"]?["willFail"] as? Bool == false)
        #expect(byName["cache-clear"]?["willFail"] as? Bool == false && byName["cache-clear"]?["willRun"] as? Bool == false)
        #expect(try await plan(["RUN_MIGRATIONS_DURING_RELEASE": "ture"]).status == 2)
        #expect(try await plan(["RUN_MIGRATION_DURING_RELEASE": "yes"]).status == 2)
    }

    @Test("status --json, list --json and wait --json are the same bytes on two runs")
    func deterministicJSON() async throws {
        let daemon = try await DaemonProcess()
        let app = try AppFixture(commands: ["migrate": "echo m", "seed": "exit 3"])
        defer { app.remove() }
        let a = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1", "SEED_DB_DURING_RELEASE": "1"])
        let b = try await daemon.submitWait(app: "blog", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "1"])
        #expect(a.status == 1 && b.status == 0)
        for args in [["status", a.lines[0], "--json"], ["list", "--json"], ["wait", a.lines[0], "--json"], ["status", "--json"]] {
            let first = try await daemon.ctl(args)
            var same = true
            for _ in 0..<4 { same = try await daemon.ctl(args).stdout == first.stdout && same }
            #expect(same, "\(args) gave different bytes")
            #expect(!first.stdout.isEmpty)
        }
        // The record file and status --json are the same text.
        let file = try String(contentsOfFile: "\(daemon.spoolPath)/done/\(a.lines[0]).record.json", encoding: .utf8)
        #expect(try await daemon.ctl(["status", a.lines[0], "--json"]).stdout == file)
        await daemon.cleanUp()
    }

    @Test("messages state each fact once: time-outs, skips, usage errors, the console log, tables")
    func wording() async throws {
        let daemon = try await DaemonProcess()
        let app = try AppFixture(commands: ["seed": "sleep 5"], timeouts: ["seed": "1s"])
        defer { app.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["SEED_DB_DURING_RELEASE": "1"])
        #expect(r.status == 1)
        #expect(r.stdout.contains("-----> seed timed out after its timeout of 1s · peak "), "\(r)")
        #expect(!r.stdout.contains("timed out (timed out"), "\(r)")
        let status = try await daemon.ctl(["status", r.lines[0]])
        #expect(status.stdout.contains("skipped: RUN_PROCFILE_RELEASE is off (unset)"), "\(status)")
        #expect(!status.stdout.contains("(unset))"), "\(status)")
        for table in [status.stdout, try await daemon.ctl(["list"]).stdout, try await daemon.ctl(["plugins"]).stdout] {
            for line in table.split(separator: "\n", omittingEmptySubsequences: false) {
                #expect(!line.hasSuffix(" "), "a line ends in blanks: \(line.debugDescription)")
            }
        }
        try await daemon.stop()
        #expect(!daemon.log.contains("duration.usec"), "the console log shows journal fields:\n\(daemon.log)")
        let usage = try await daemon.ctl(["submit", "--app", "Shop!", "--release", "v1", "--dir", app.path])
        #expect(usage.status == 2)
        #expect(usage.stderr.hasPrefix("releasectl: --app \"Shop!\" is not a valid app name"), "\(usage)")
        #expect(!usage.stderr.contains("Error:") && !usage.stderr.contains("USAGE"), "\(usage)")
        let unknown = try await daemon.ctl(["status", "nope"])
        #expect(unknown.stderr.hasPrefix("releasectl: no release \"nope\""), "\(unknown)")
        await daemon.cleanUp()
    }
}
