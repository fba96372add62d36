import Foundation
import Glibc
import ReleaseKit
import Testing

/// When releases run: requests spooled while no daemon runs wait for it; one app's releases run
/// one at a time in submission order; different apps run side by side up to `--max-parallel`.
/// Overlap and order are proven with barriers (flag files the tasks wait for), not timing.
@Suite("scheduling", .serialized)
struct SchedulingTests {
    /// Checks the record's own times: submitted ≤ started ≤ finished, the duration agrees with
    /// them, and every task that ran lies within the release.
    static func expectConsistentTimes(_ r: ReleaseRecord, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let submitted = try #require(r.submittedAt, "submittedAt of \(r.id)", sourceLocation: sourceLocation)
        let started = try #require(r.startedAt, "startedAt of \(r.id)", sourceLocation: sourceLocation)
        let finished = try #require(r.finishedAt, "finishedAt of \(r.id)", sourceLocation: sourceLocation)
        let duration = try #require(r.durationMs, "durationMs of \(r.id)", sourceLocation: sourceLocation)
        #expect(submitted <= started, "\(r.id) started before it was submitted", sourceLocation: sourceLocation)
        #expect(started <= finished, "\(r.id) finished before it started", sourceLocation: sourceLocation)
        let wall = finished.timeIntervalSince(started) * 1000
        #expect(abs(wall - Double(duration)) < 250, "durationMs \(duration) vs finishedAt − startedAt \(wall)", sourceLocation: sourceLocation)
        for task in r.tasks where task.state != .skipped && task.state != .notRun {
            let taskStart = try #require(task.startedAt, "\(task.name) ran but has no startedAt", sourceLocation: sourceLocation)
            #expect(started <= taskStart && taskStart <= finished, "\(task.name) started outside its release", sourceLocation: sourceLocation)
            #expect((task.durationMs ?? .max) <= duration, sourceLocation: sourceLocation)
        }
    }

    /// A: started before B ended, and B started before A ended.
    static func overlap(_ a: ReleaseRecord, _ b: ReleaseRecord) -> Bool {
        guard let aStart = a.startedAt, let aEnd = a.finishedAt, let bStart = b.startedAt, let bEnd = b.finishedAt else { return false }
        return aStart < bEnd && bStart < aEnd
    }

    // MARK: No daemon yet

    @Test("requests spooled while no daemon runs are run, in submission order, once it starts; wait then exits 0")
    func submittedBeforeDaemon() async throws {
        let spoolDir = TempDir("releasectl-spool")
        let work = TempDir()
        let trace = work.file("trace")
        let app = try AppFixture(commands: ["migrate": "echo \"$RELEASE_NAME\" >> \(trace); echo migrated $RELEASE_NAME"])
        defer { app.remove(); work.remove() }
        let spool = spoolDir.path + "/spool"
        func ctl(_ args: [String]) async throws -> CommandResult {
            try await runProgram(Binaries.releasectl, args + ["--spool", spool], environment: ["PATH": "/usr/bin:/bin"], inheritEnvironment: false)
        }
        // Three releases of one app, submitted without --wait and with no daemon: they queue.
        var ids: [String] = []
        for release in ["v1", "v2", "v3"] {
            let r = try await ctl(["submit", "--app", "shop", "--release", release, "--dir", app.path, "--env", "RUN_MIGRATIONS_DURING_RELEASE=on"])
            #expect(r.status == 0, "\(r)")
            ids.append(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        #expect(ids == ids.sorted(), "ids are in submission order")
        let queued = try FileManager.default.contentsOfDirectory(atPath: spool + "/incoming").sorted()
        #expect(queued == ids.map { "\($0).json" })
        let status = try await ctl(["status", ids[0], "--json"])
        #expect(status.status == 0 && status.stdout.contains("\"queued\""), "\(status)")
        #expect(!FileManager.default.fileExists(atPath: trace), "nothing runs without a daemon")

        // `wait` on the last one, started before the daemon: it says no daemon runs, then follows.
        let waitLog = work.file("wait.stderr")
        try createFileOrThrow(waitLog, nil)
        let waiter = Process()
        waiter.executableURL = URL(fileURLWithPath: Binaries.releasectl)
        waiter.arguments = ["wait", ids[2], "--timeout", "60s", "--spool", spool]
        waiter.environment = ["PATH": "/usr/bin:/bin"]
        let waitOut = Pipe()
        waiter.standardOutput = waitOut
        waiter.standardError = FileHandle(forWritingAtPath: waitLog)
        try waiter.run()
        defer { if waiter.isRunning { kill(waiter.processIdentifier, SIGKILL) } }
        try await eventually("wait to say that no daemon runs") {
            ((try? String(contentsOfFile: waitLog, encoding: .utf8)) ?? "").contains("no released is running on \(spool)")
        }
        #expect(waiter.isRunning, "wait does not give up while the request is queued")

        let daemonStart = Date()
        try await withRunningDaemon(arguments: ["--max-parallel", "2"], spool: spoolDir) { daemon in
            try await eventually("wait to exit") { !waiter.isRunning }
            let output = String(decoding: waitOut.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            #expect(waiter.terminationStatus == 0, "wait: \(output)")
            #expect(output.contains("       migrated v3"), "wait streams the task's output: \(output)")
            #expect(output.contains("==> shop v3: succeeded"), "\(output)")
            var records: [ReleaseRecord] = []
            for id in ids {
                let r = try await ctl(["wait", id])
                #expect(r.status == 0, "\(r)")
                let record = try await daemon.waitForRecord(id)
                #expect(record.state == .succeeded)
                try Self.expectConsistentTimes(record)
                #expect(try #require(record.startedAt) >= daemonStart.addingTimeInterval(-0.001), "it ran only once the daemon started")
                records.append(record)
            }
            #expect(try String(contentsOfFile: trace, encoding: .utf8) == "v1\nv2\nv3\n", "one app's releases run in submission order")
            for (earlier, later) in zip(records, records.dropFirst()) {
                #expect(try #require(later.startedAt) >= #require(earlier.finishedAt), "\(later.release ?? "") started before \(earlier.release ?? "") ended")
            }
            #expect(daemon.files(in: "incoming").isEmpty)
        }
    }

    // MARK: Parallel apps, serial releases

    @Test("two apps run in parallel; one app's releases run one at a time, in submission order")
    func parallelAppsSerialReleases() async throws {
        let flags = TempDir()
        func flag(_ name: String) -> String { flags.file(name) }
        // A1 waits for B1 to have started: it can only succeed if the two overlap. B1 waits for A1
        // likewise. A1 marks its very end; A2 fails unless that mark exists when it starts.
        let a1 = try AppFixture(commands: ["migrate": [
            Barrier.raise(flag("a1-started")),
            Barrier.forbid(flag("a2-started"), else: "A2 started while A1 ran"),
            Barrier.waitFor(flag("b1-started"), else: "B1 never ran while A1 ran: the apps did not run in parallel"),
            Barrier.forbid(flag("a2-started"), else: "A2 started while A1 ran"),
            Barrier.raise(flag("a1-finished")),
        ].joined(separator: "; ")])
        let a2 = try AppFixture(commands: ["migrate": [
            Barrier.raise(flag("a2-started")),
            Barrier.require(flag("a1-finished"), else: "A2 started before A1 finished"),
        ].joined(separator: "; ")])
        let b1 = try AppFixture(commands: ["migrate": [
            Barrier.raise(flag("b1-started")),
            Barrier.waitFor(flag("a1-started"), else: "A1 never ran while B1 ran: the apps did not run in parallel"),
        ].joined(separator: "; ")])
        defer { flags.remove(); a1.remove(); a2.remove(); b1.remove() }
        let gate = ["RUN_MIGRATIONS_DURING_RELEASE": "true"]
        try await withRunningDaemon { daemon in
            // Submission order: A1, A2, B1. A2 must wait for A1 although B1, submitted later, runs at once.
            let idA1 = try await daemon.submit(app: "app-a", release: "a1", dir: a1.path, env: gate)
            let idA2 = try await daemon.submit(app: "app-a", release: "a2", dir: a2.path, env: gate)
            let idB1 = try await daemon.submit(app: "app-b", release: "b1", dir: b1.path, env: gate)
            for id in [idA1, idA2, idB1] {
                let r = try await daemon.waitCommand(id, extra: ["--timeout", "60s"])
                #expect(r.status == 0, "\(r)")
            }
            let rA1 = try await daemon.waitForRecord(idA1)
            let rA2 = try await daemon.waitForRecord(idA2)
            let rB1 = try await daemon.waitForRecord(idB1)
            for r in [rA1, rA2, rB1] {
                #expect(r.state == .succeeded, "\(r.release ?? ""): \(r.reason ?? "")")
                try Self.expectConsistentTimes(r)
            }
            #expect(Self.overlap(rA1, rB1), "A1 and B1 ran at the same time")
            #expect(!Self.overlap(rA1, rA2), "A1 and A2 did not")
            #expect(try #require(rA2.startedAt) >= #require(rA1.finishedAt))
            #expect(try #require(rA2.startedAt) >= #require(rB1.startedAt), "A2 waited for A1 while B1 started")
        }
    }

    @Test("with --max-parallel 1 two apps do not overlap: the second waits, queued, until the first ends")
    func maxParallelOne() async throws {
        let flags = TempDir()
        func flag(_ name: String) -> String { flags.file(name) }
        // A holds until the test lets it go; the test does so only once the daemon reports B queued.
        let a = try AppFixture(commands: ["migrate": [
            Barrier.raise(flag("a-started")),
            Barrier.waitFor(flag("go-a"), else: "the test never let A go"),
            Barrier.forbid(flag("b-started"), else: "B started while A ran"),
            Barrier.raise(flag("a-finished")),
        ].joined(separator: "; ")])
        let b = try AppFixture(commands: ["migrate": [
            Barrier.raise(flag("b-started")),
            Barrier.require(flag("a-finished"), else: "B started before A finished"),
        ].joined(separator: "; ")])
        defer { flags.remove(); a.remove(); b.remove() }
        let gate = ["RUN_MIGRATIONS_DURING_RELEASE": "1"]
        try await withRunningDaemon(arguments: ["--max-parallel", "1"]) { daemon in
            let idA = try await daemon.submit(app: "app-a", release: "a1", dir: a.path, env: gate)
            try await eventually("A's task to start") { FileManager.default.fileExists(atPath: flag("a-started")) }
            let before = daemon.notify.all.count
            let idB = try await daemon.submit(app: "app-b", release: "b1", dir: b.path, env: gate)
            // The daemon has taken B in and keeps it queued while A runs (STATUS says so).
            try await daemon.notify.wait(for: "STATUS with B queued while A runs", after: before) { m in
                guard let status = m.fields["STATUS"] else { return false }
                return status.contains("app-a a1") && status.contains("1 queued")
            }
            #expect(!FileManager.default.fileExists(atPath: flag("b-started")), "B must not start while A runs")
            #expect(FileManager.default.fileExists(atPath: "\(daemon.spoolPath)/incoming/\(idB).json"), "B stays in incoming/ until it starts")
            try createFileOrThrow(flag("go-a"), nil)
            for id in [idA, idB] {
                let r = try await daemon.waitCommand(id, extra: ["--timeout", "60s"])
                #expect(r.status == 0, "\(r)")
            }
            let rA = try await daemon.waitForRecord(idA)
            let rB = try await daemon.waitForRecord(idB)
            #expect(rA.state == .succeeded && rB.state == .succeeded, "\(rA.reason ?? "") \(rB.reason ?? "")")
            try Self.expectConsistentTimes(rA)
            try Self.expectConsistentTimes(rB)
            #expect(!Self.overlap(rA, rB))
            #expect(try #require(rB.startedAt) >= #require(rA.finishedAt))
        }
    }
}
