import Foundation
import Glibc
import ReleaseKit
import Testing

/// `released --metrics-file`: the Prometheus text file node_exporter's textfile collector reads,
/// parsed back after real releases.
@Suite("metrics file")
struct MetricsTests {
    @Test("releases by app and state, task duration histograms, queue depth, last success; rewritten atomically; restored after a restart")
    func metricsFile() async throws {
        let out = TempDir()
        let metricsPath = out.file("releasectl.prom")
        let daemon = try await DaemonProcess(arguments: ["--metrics-file", metricsPath, "--max-parallel", "1"])
        let gate = out.file("go")
        let app = try AppFixture(commands: [
            "migrate": "echo started; while [ ! -e \(gate) ]; do sleep 0.02; done",
            "seed": "echo seed failing; exit 1",
        ])
        defer { app.remove(); out.remove() }
        func metrics() throws -> MetricsFile {
            try MetricsFile(text: String(contentsOfFile: metricsPath, encoding: .utf8))
        }
        let testStart = Date()

        // At start: the file exists, with an empty queue.
        try await eventually("the metrics file at start") { FileManager.default.fileExists(atPath: metricsPath) }
        #expect(try metrics().value("releasectl_queue_depth") == 0)
        #expect(try metrics().samples(named: "releasectl_releases_total").isEmpty)

        // One shop release holds the only slot; three more wait behind it.
        let migrate = ["RUN_MIGRATIONS_DURING_RELEASE": "true"]
        let first = try await daemon.submit(app: "shop", dir: app.path, env: migrate)
        try await daemon.waitForTaskOutput(first, "started")
        var queued = [try await daemon.submit(app: "shop", release: "v2", dir: app.path, env: migrate)]
        queued.append(try await daemon.submit(app: "shop", release: "v3", dir: app.path, env: migrate))
        queued.append(try await daemon.submit(app: "blog", dir: app.path, env: migrate))
        try await eventually("queue depth 3 in the file") { (try? metrics().value("releasectl_queue_depth")) == 3 }
        FileManager.default.createFile(atPath: gate, contents: nil)
        for id in [first] + queued { #expect(try await daemon.waitForRecord(id).state == .succeeded) }

        // A failure and a rejection count too.
        let failed = try await daemon.submitWait(app: "shop", release: "v4", dir: app.path, env: ["SEED_DB_DURING_RELEASE": "true"])
        #expect(failed.status == 1, "\(failed)")
        let rejected = try await daemon.submitWait(app: "shop", release: "v5", dir: app.path, env: ["SEED_DB_DURING_RELEASE": "ture"])
        #expect(rejected.status == 2, "\(rejected)")

        try await eventually("the rejection counted") {
            (try? metrics().value("releasectl_releases_total", ["app": "shop", "phase": "predeploy", "state": "rejected"])) == 1
        }
        let m = try metrics()
        #expect(m.types["releasectl_releases_total"] == "counter")
        #expect(m.types["releasectl_task_duration_seconds"] == "histogram")
        #expect(m.types["releasectl_queue_depth"] == "gauge")
        #expect(m.types["releasectl_last_success_timestamp_seconds"] == "gauge")
        #expect(m.value("releasectl_releases_total", ["app": "shop", "phase": "predeploy", "state": "succeeded"]) == 3)
        #expect(m.value("releasectl_releases_total", ["app": "shop", "phase": "predeploy", "state": "failed"]) == 1)
        #expect(m.value("releasectl_releases_total", ["app": "blog", "phase": "predeploy", "state": "succeeded"]) == 1)
        #expect(m.samples(named: "releasectl_releases_total").count == 4, "\(m.samples(named: "releasectl_releases_total"))")
        #expect(m.value("releasectl_queue_depth") == 0)

        // Histograms: cumulative buckets, +Inf = count, per app and task that ran.
        for (app, task, count) in [("shop", "migrate", 3.0), ("shop", "seed", 1.0), ("blog", "migrate", 1.0)] {
            let buckets = m.samples(named: "releasectl_task_duration_seconds_bucket").filter { $0.labels["app"] == app && $0.labels["task"] == task }
            #expect(buckets.count == 12, "11 bounds and +Inf for \(app)/\(task)")
            #expect(buckets.map(\.value) == buckets.map(\.value).sorted(), "cumulative: \(buckets)")
            #expect(buckets.last?.labels["le"] == "+Inf")
            #expect(buckets.last?.value == count)
            #expect(m.value("releasectl_task_duration_seconds_count", ["app": app, "task": task]) == count)
            #expect((m.value("releasectl_task_duration_seconds_sum", ["app": app, "task": task]) ?? -1) >= 0)
        }
        #expect(m.samples(named: "releasectl_task_duration_seconds_count").count == 3, "skipped tasks have no duration")

        // Last success: when shop's last successful release finished.
        let lastShop = try #require(try daemon.record(queued[1])?.finishedAt)
        let last = try #require(m.value("releasectl_last_success_timestamp_seconds", ["app": "shop"]))
        #expect(abs(last - lastShop.timeIntervalSince1970) < 0.01, "\(last) vs \(lastShop.timeIntervalSince1970)")
        #expect(last >= testStart.timeIntervalSince1970 - 1 && last <= Date().timeIntervalSince1970)

        // Written atomically, readable by another user (node_exporter), nothing left beside it.
        var st = stat()
        #expect(stat(metricsPath, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o644)
        #expect(try FileManager.default.contentsOfDirectory(atPath: out.path).sorted() == ["go", "releasectl.prom"])

        // After a restart: counters start again, the last success is kept.
        try await daemon.stop()
        let restarted = try await DaemonProcess(arguments: ["--metrics-file", metricsPath], spool: daemon.spool)
        // Rewritten by the new daemon soon after it starts.
        try await eventually("the restarted daemon to rewrite the metrics file", timeout: .seconds(10)) {
            (try? metrics().samples(named: "releasectl_releases_total").isEmpty) == true
        }
        let after = try metrics()
        #expect(after.samples(named: "releasectl_releases_total").isEmpty)
        #expect(after.value("releasectl_last_success_timestamp_seconds", ["app": "shop"]).map { abs($0 - last) < 0.01 } == true)
        #expect(after.value("releasectl_last_success_timestamp_seconds", ["app": "blog"]) != nil)
        await restarted.cleanUp()
        await daemon.cleanUp()
    }

    @Test("a metrics file that cannot be written is a warning in the log; releases still run")
    func unwritable() async throws {
        let daemon = try await DaemonProcess(arguments: ["--metrics-file", "/nonexistent-dir/releasectl.prom"])
        let app = try AppFixture(commands: ["migrate": "echo ok"])
        defer { app.remove() }
        let r = try await daemon.submitWait(app: "shop", dir: app.path, env: ["RUN_MIGRATIONS_DURING_RELEASE": "true"])
        #expect(r.status == 0, "\(r)")
        let log = daemon.log
        #expect(log.contains("cannot write the metrics file /nonexistent-dir/releasectl.prom"), "\(log)")
        #expect(log.components(separatedBy: "cannot write the metrics file").count == 2, "said once, not after every write")
        await daemon.cleanUp()
    }
}
