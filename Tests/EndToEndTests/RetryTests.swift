import Foundation
import ReleaseKit
import Testing

/// `releasectl retry ID`: a finished release's request, submitted again as a new release that
/// names the first in its record.
@Suite("releasectl retry", .serialized)
struct RetryTests {
    static func request(_ daemon: DaemonProcess, _ id: String) throws -> ReleaseRequest {
        let data = try #require(FileManager.default.contents(atPath: "\(daemon.spoolPath)/done/\(id).json"), "done/\(id).json")
        var partial = ReleaseRequest.Partial()
        return try ReleaseRequest.decode(Array(data), partial: &partial)
    }

    @Test("a failed release, fixed, retried: same app, release, directory, env and tasks; a new id; retryOf links them")
    func failedThenRetried() async throws {
        let daemon = try await DaemonProcess()
        let app = try AppFixture(commands: [
            "migrate": "test -e fixed || { echo 'database is locked'; exit 1; }; echo \"migrated with $APP_SETTING\"",
            "seed": "echo seeded",
        ])
        defer { app.remove() }
        let env = ["RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true", "APP_SETTING": "blue",
                   "SECRET_KEY_BASE": "s3cr3t"]
        let first = try await daemon.submitWait(app: "shop", release: "v42", dir: app.path, env: env, tasks: ["migrate"])
        #expect(first.status == 1, "\(first)")
        let oldID = first.lines[0]

        FileManager.default.createFile(atPath: app.dir.file("fixed"), contents: nil)
        let retry = try await daemon.ctl(["retry", oldID, "--wait"])
        #expect(retry.status == 0, "\(retry)")
        let newID = retry.lines[0]
        #expect(ReleaseID(newID) != nil && newID != oldID, "a new id first: \(retry)")
        #expect(retry.stdout.contains("       migrated with blue"))
        #expect(!retry.stdout.contains("seeded"), "the tasks list is kept (only migrate)")
        #expect(retry.lines.last { !$0.isEmpty }?.hasPrefix("==> shop v42: succeeded") == true)

        let record = try #require(try daemon.record(newID))
        #expect(record.retryOf == oldID)
        #expect(record.release == "v42")
        #expect(record.state == .succeeded)
        #expect(try daemon.record(oldID)?.retryOf == nil, "the first release's record is unchanged")

        let old = try Self.request(daemon, oldID)
        let new = try Self.request(daemon, newID)
        #expect(new.app == old.app && new.release == old.release && new.directory == old.directory)
        #expect(new.env == old.env)
        #expect(new.tasks == ["migrate"])
        #expect(new.retryOf?.rawValue == oldID)
        #expect(new.id > old.id, "later in the queue order")

        let status = try await daemon.ctl(["status", newID])
        #expect(status.stdout.contains("  retry of:  \(oldID)\n"), "\(status)")
        let json = try await daemon.ctl(["status", newID, "--json"])
        #expect(try jsonObject(json.stdout)["retryOf"] as? String == oldID)
        // Without --wait: the new id alone; with --json alone: {"id": …}.
        let quiet = try await daemon.ctl(["retry", newID])
        #expect(quiet.status == 0)
        #expect(ReleaseID(quiet.stdout.trimmingCharacters(in: .newlines)) != nil && quiet.lines.count == 2, "\(quiet)")
        let quietJSON = try await daemon.ctl(["retry", newID, "--json"])
        #expect(try ReleaseID(#require(jsonObject(quietJSON.stdout)["id"] as? String)) != nil)
        for id in [quiet.stdout, try jsonObject(quietJSON.stdout)["id"] as! String] {
            let r = try await daemon.waitForRecord(id.trimmingCharacters(in: .newlines))
            #expect(r.retryOf == newID)
        }
        await daemon.cleanUp()
    }

    @Test("an interrupted release (the daemon was killed) is never re-run by itself; retry runs it again")
    func interruptedThenRetried() async throws {
        let daemon = try await DaemonProcess()
        let app = try AppFixture(commands: ["migrate": "if [ -e once ]; then echo second run; else touch once; echo started; sleep 30; fi"])
        defer { app.remove() }
        let id = try await daemon.submit(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        try await daemon.waitForTaskOutput(id, "started")
        try await daemon.kill9()

        let restarted = try await DaemonProcess(spool: daemon.spool)
        let interrupted = try await restarted.waitForRecord(id)
        #expect(interrupted.state == .interrupted)
        #expect(interrupted.reason?.contains("releasectl retry \(id)") == true)
        let retry = try await restarted.ctl(["retry", id, "--wait"])
        #expect(retry.status == 0, "\(retry)")
        #expect(retry.stdout.contains("       second run"))
        #expect(try restarted.record(retry.lines[0])?.retryOf == id)
        await restarted.cleanUp()
        await daemon.cleanUp()
    }

    @Test("only a finished release can be retried: unknown ids and queued releases exit 2")
    func notFinished() async throws {
        let spool = TempDir()
        let app = try AppFixture()
        defer { spool.remove(); app.remove() }
        let unknown = try await releasectl(["retry", "01JDQ8K3ZP6V4TQX2M9B7C5N1R", "--spool", spool.path])
        #expect(unknown.status == 2, "\(unknown)")
        #expect(unknown.stderr.contains("no release \"01JDQ8K3ZP6V4TQX2M9B7C5N1R\" in \(spool.path)"), "\(unknown)")
        // No daemon: the request stays queued.
        let submitted = try await releasectl(["submit", "--app", "shop", "--release", "v1", "--dir", app.path, "--spool", spool.path])
        #expect(submitted.status == 0, "\(submitted)")
        let id = submitted.stdout.trimmingCharacters(in: .newlines)
        let queued = try await releasectl(["retry", id, "--spool", spool.path])
        #expect(queued.status == 2, "\(queued)")
        #expect(queued.stderr.contains("has not finished yet"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: spool.path + "/incoming") == ["\(id).json"], "nothing more spooled")
    }
}
