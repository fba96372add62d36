import Foundation
import Glibc
import ReleaseKit
import Testing

/// What the daemon writes to a real systemd journal (`--log-target journal`), read back with
/// `journalctl RELEASE_ID=… -o json`. Needs a running journald: `script/journald-start`.
@Suite("journal", .serialized)
struct JournalTests {
    static let secret = "s3cr3t"
    static let databaseURL = "postgres://u:\(secret)@db/x"

    @Test("a release in the journal: every task output line, the release's fields, priorities, MESSAGE_IDs, no secret")
    func succeededRelease() async throws {
        try Journal.requireJournald()
        let app = try AppFixture(commands: [
            "migrate": "echo migrating $DATABASE_URL; echo 'warning: to stderr' >&2; echo; printf 'last line without newline'",
        ])
        defer { app.remove() }
        let daemon = try await DaemonProcess(arguments: ["--log-target", "journal"])
        let r = try await daemon.submitWait(app: "shop", release: "v42", dir: app.path,
                                            env: ["RUN_MIGRATIONS_DURING_RELEASE": "true", "DATABASE_URL": Self.databaseURL])
        #expect(r.status == 0, "\(r)")
        let id = r.lines[0]
        let entries = try await Journal.wait(for: "release \(id) to succeed", ["RELEASE_ID=\(id)"]) {
            $0.contains { $0["MESSAGE_ID"] == MessageIDs.succeeded }
        }

        for e in entries {
            #expect(e["RELEASE_APP"] == "shop" && e["RELEASE_NAME"] == "v42", "\(e)")
            #expect(e["RELEASE_PHASE"] == "predeploy", "\(e)")
            #expect(e["RELEASE_STATE"] != nil, "no RELEASE_STATE: \(e)")
            #expect(e["SYSLOG_IDENTIFIER"] == "released", "\(e)")
            #expect(e["_PID"] == "\(daemon.pid)", "\(e)")
            #expect(e["CODE_FILE"]?.hasSuffix(".swift") == true && e["CODE_LINE"].flatMap(Int.init) != nil && e["CODE_FUNC"] != nil, "\(e)")
            #expect(!e.json.contains(Self.secret), "the secret is in the journal: \(e)")
        }
        // Its postdeploy: every entry says so.
        let post = try await daemon.submitWait(app: "shop", release: "v42", dir: app.path, env: ["DATABASE_URL": Self.databaseURL],
                                               extra: ["--phase", "postdeploy"])
        #expect(post.status == 0, "\(post)")
        let postEntries = try await Journal.wait(for: "the postdeploy \(post.lines[0]) to succeed", ["RELEASE_ID=\(post.lines[0])"]) {
            $0.contains { $0["MESSAGE_ID"] == MessageIDs.succeeded }
        }
        #expect(!postEntries.isEmpty && postEntries.allSatisfy { $0["RELEASE_PHASE"] == "postdeploy" }, "\(postEntries)")
        let byPhase = try await Journal.entries(["RELEASE_PHASE=postdeploy", "_PID=\(daemon.pid)"])
        #expect(Set(byPhase.compactMap { $0["RELEASE_ID"] }) == [post.lines[0]], "journalctl RELEASE_PHASE=postdeploy finds it")
        // Task output: one entry per line, in order, masked, with RELEASE_TASK, at info.
        let output = entries.filter { $0["RELEASE_TASK"] == "migrate" && $0["CODE_FUNC"]?.hasPrefix("emit") == true }
        #expect(output.map { $0["MESSAGE"] ?? "" } == [
            "shop v42 migrate | migrating ***",
            "shop v42 migrate | warning: to stderr",
            "shop v42 migrate | ",
            "shop v42 migrate | last line without newline",
        ])
        #expect(output.allSatisfy { $0["PRIORITY"] == "6" && $0["RELEASE_STATE"] == "running" })

        // Milestones: started, then the output, then succeeded.
        let started = try #require(entries.firstIndex { $0["MESSAGE_ID"] == MessageIDs.started })
        let succeeded = try #require(entries.firstIndex { $0["MESSAGE_ID"] == MessageIDs.succeeded })
        #expect(entries.filter { $0["MESSAGE_ID"] != nil }.count == 2)
        #expect(entries[started]["MESSAGE"] == "shop v42: running migrate")
        #expect(entries[started]["PRIORITY"] == "6" && entries[started]["RELEASE_STATE"] == "running")
        #expect(entries[succeeded]["PRIORITY"] == "5" && entries[succeeded]["RELEASE_STATE"] == "succeeded")
        #expect(entries[succeeded]["DURATION_USEC"].flatMap(Int.init) != nil)
        let firstOutput = try #require(entries.firstIndex { $0["MESSAGE"] == "shop v42 migrate | migrating ***" })
        #expect(started < firstOutput && firstOutput < succeeded)

        // journalctl RELEASE_APP= finds it too, and nothing of the daemon's carries the secret.
        let byApp = try await Journal.entries(["RELEASE_APP=shop", "_PID=\(daemon.pid)"])
        #expect(byApp.count >= entries.count)
        let all = try await Journal.entries(["_PID=\(daemon.pid)"])
        #expect(!all.contains { $0.json.contains(Self.secret) })
        // Journal only: nothing went to stderr as well.
        try await daemon.stop()
        #expect(daemon.log.isEmpty, "released also wrote to stderr:\n\(daemon.log)")
        await daemon.cleanUp()
    }

    @Test("failed, rejected, cancelled and interrupted releases carry their MESSAGE_IDs, described in the catalog")
    func milestones() async throws {
        try Journal.requireJournald()
        let gates = TempDir("releasectl-gates")
        let app = try AppFixture(commands: [
            "migrate": "echo migrating",
            "seed": "echo 'seed broke' >&2; exit 3",
            "cache-clear": "echo clearing; until [ -e \(gates.file("never")) ]; do sleep 0.05; done",
        ])
        defer { app.remove(); gates.remove() }
        // A release that was running when the last daemon died: interrupted at start.
        let spool = TempDir("releasectl-spool")
        let crashed = try await submitOffline(spool: spool.path + "/spool", app: "shop", release: "v40", dir: app.path)
        guard rename(spool.path + "/spool/incoming/\(crashed).json", spool.path + "/spool/running/\(crashed).json") == 0 else {
            throw HarnessError("rename: \(errno)")
        }
        let daemon = try await DaemonProcess(arguments: ["--log-target", "journal"], spool: spool)

        let failed = try await daemon.submitWait(app: "shop", release: "v41", dir: app.path, env: [
            "RUN_MIGRATIONS_DURING_RELEASE": "true", "SEED_DB_DURING_RELEASE": "true", "DATABASE_URL": Self.databaseURL,
        ])
        #expect(failed.status == 1, "\(failed)")
        let rejected = try await daemon.submitWait(app: "shop", release: "v43", dir: app.path, env: ["SEED_DB_DURING_RELEASE": "ture"])
        #expect(rejected.status == 2, "\(rejected)")
        let cancelled = try await daemon.submit(app: "shop", release: "v44", dir: app.path, env: ["CLEAR_CACHE_DURING_RELEASE": "true"])
        try await daemon.notify.wait(for: "cache-clear to run") { $0.fields["STATUS"] == "shop v44: cache-clear (1/1)" }
        let cancel = try await daemon.ctl(["cancel", cancelled])
        #expect(cancel.status == 0, "\(cancel)")

        let expected: [(id: String, messageID: String, priority: String, state: String)] = [
            (crashed, MessageIDs.interrupted, "4", "interrupted"),
            (failed.lines[0], MessageIDs.failed, "3", "failed"),
            (rejected.lines[0], MessageIDs.rejected, "3", "rejected"),
            (cancelled, MessageIDs.cancelled, "4", "cancelled"),
        ]
        let catalog = try Catalog.subjects()
        for e in expected {
            let entries = try await Journal.wait(for: "the \(e.state) milestone of \(e.id)", ["RELEASE_ID=\(e.id)"]) {
                $0.contains { $0["MESSAGE_ID"] == e.messageID }
            }
            let milestone = try #require(entries.first { $0["MESSAGE_ID"] == e.messageID })
            #expect(milestone["PRIORITY"] == e.priority, "\(e.state): \(milestone)")
            #expect(milestone["RELEASE_STATE"] == e.state, "\(milestone)")
            #expect(milestone["RELEASE_APP"] == "shop", "\(milestone)")
            #expect(catalog[e.messageID] != nil, "\(e.state)'s MESSAGE_ID \(e.messageID) is not in \(Catalog.path)")
            #expect(!entries.contains { $0.json.contains(Self.secret) })
        }
        // The failed release: the task's stderr line, then the failure at err priority.
        let failedEntries = try await Journal.entries(["RELEASE_ID=\(failed.lines[0])"])
        #expect(failedEntries.contains { $0["MESSAGE"] == "shop v41 seed | seed broke" && $0["RELEASE_TASK"] == "seed" })
        #expect(failedEntries.contains { $0["RELEASE_TASK"] == "seed" && $0["RELEASE_STATE"] == "failed" && $0["PRIORITY"] == "3" })
        // journalctl -p err shows the failure and the rejection of this daemon, not the successes.
        let errors = try await Journal.entries(["_PID=\(daemon.pid)", "-p", "err"])
        #expect(errors.contains { $0["MESSAGE_ID"] == MessageIDs.failed })
        #expect(errors.contains { $0["MESSAGE_ID"] == MessageIDs.rejected })
        #expect(!errors.contains { $0["PRIORITY"].flatMap(Int.init).map { $0 > 3 } ?? true })
        #expect(Set(catalog.keys) == Set(MessageIDs.all), "the catalog's ids differ from the daemon's")
        await daemon.cleanUp()
    }

    @Test("--log-target auto: the journal when stderr is not a terminal, readable stderr on a terminal, never both")
    func autoTarget() async throws {
        try Journal.requireJournald()
        // stderr is a file: the journal, and nothing on stderr.
        let piped = try await DaemonProcess(arguments: ["--log-target", "auto"])
        let ready = "ready: watching \(piped.spoolPath)"
        _ = try await Journal.wait(for: "the ready line", ["_PID=\(piped.pid)"]) { $0.contains { $0["MESSAGE"] == ready } }
        try await piped.stop()
        #expect(piped.log.isEmpty, "released also wrote to stderr:\n\(piped.log)")
        await piped.cleanUp()

        // stderr is a terminal: stderr, readable, and nothing in the journal.
        let terminal = try PseudoTerminal()
        defer { terminal.close() }
        let beforeTTY = try await Journal.cursor()
        let onTTY = try await DaemonProcess(arguments: ["--log-target", "auto"], wrapper: Launch.withStderr(on: terminal))
        try await onTTY.stop()
        #expect(terminal.text.contains(" note  ready: watching \(onTTY.spoolPath)"), "on the terminal: \(terminal.text)")
        #expect(terminal.text.contains(" note  stopped"), "on the terminal: \(terminal.text)")
        #expect(try await Journal.entries(["_PID=\(onTTY.pid)"], after: beforeTTY).isEmpty, "it logged to the journal too")
        await onTTY.cleanUp()
    }
}

/// The journal falls away: the daemon keeps every line, on stderr.
@Suite("journal fallback", .serialized)
struct JournalFallbackTests {
    @Test("with --log-target journal but no journal socket, or a stale one, every line goes to stderr with its context",
          .enabled(if: getuid() == 0, "a private mount namespace needs root"), arguments: ["missing", "stale"])
    func fallback(socket: String) async throws {
        let dir = TempDir("releasectl-journal")
        defer { dir.remove() }
        var stale: String?
        if socket == "stale" {
            stale = dir.file("socket")
            try makeStaleSocket(at: stale!)
        }
        let app = try AppFixture(commands: ["migrate": "echo hello from migrate"])
        defer { app.remove() }
        let before = access(Journal.socket, F_OK) == 0 ? try await Journal.cursor() : nil
        let daemon = try await DaemonProcess(arguments: ["--log-target", "journal"], wrapper: Launch.withoutJournal(staleSocket: stale))
        let id = try await daemon.submit(app: "shop", release: "v7", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(try await daemon.waitForRecord(id).state == .succeeded)
        try await daemon.stop()
        let log = daemon.log
        #expect(log.contains("ready: watching"), "\(log)")
        #expect(log.contains("shop v7 migrate | hello from migrate"), "\(log)")
        #expect(log.contains("shop v7 | release succeeded in "), "\(log)")
        #expect(log.contains(" note  stopped"), "\(log)")
        // In the journal (if one runs outside the namespace) this daemon left nothing.
        if let before {
            #expect(try await Journal.entries(["_PID=\(daemon.pid)"], after: before).isEmpty)
        }
        await daemon.cleanUp()
    }
}
