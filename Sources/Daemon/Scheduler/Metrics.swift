import FoundationEssentials
import Glibc
import Logging
import ReleaseKit
import Synchronization
import SystemPackage

/// Prometheus metrics in the text exposition format, for node_exporter's textfile collector
/// (no network listener): the whole file is rewritten atomically — written beside the target
/// as `<path>.tmp`, which the collector's `*.prom` glob ignores, then renamed over it — by the
/// metrics service, at most once a second while anything changes (a release ends, the queue
/// depth moves) and within a second of the change. A reader sees the old file or the new one,
/// never half of one. The file is mode 0644 whatever the daemon's umask: the collector runs as
/// another user, and nothing in it is secret.
///
/// Counters start from zero when the daemon starts (Prometheus treats that as a counter
/// reset); the last-success gauge is restored from the records in `done/`, so an alert on
/// "no successful release for N days" survives a restart. The figures are kept under a lock:
/// the scheduler changes them, the metrics service renders them.
final class Metrics: Sendable {
    /// Task duration buckets, in seconds: from a quick cache clear to Heroku's one-hour limit.
    static let buckets: [Double] = [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600]

    struct Histogram {
        var counts = [Int](repeating: 0, count: Metrics.buckets.count)
        var sum = 0.0
        var total = 0

        mutating func observe(_ seconds: Double) {
            for (i, le) in Metrics.buckets.enumerated() where seconds <= le { counts[i] += 1 }
            sum += seconds
            total += 1
        }
    }

    private struct Figures: Sendable {
        var releases: [String: [String: Int]] = [:]   // app → "phase=…,state=…" labels → count
        var durations: [String: [String: Histogram]] = [:]  // app → task → histogram
        var peakMemory: [String: [String: Int64]] = [:]  // app → task → the last run's peak
        var cpuSeconds: [String: [String: Double]] = [:]  // app → task → total
        var lockTimeouts: [String: [String: Int]] = [:]  // app → task → attempts ended by a lock timeout
        var lastSuccess: [String: Double] = [:]
        /// Requests waiting in `incoming/`.
        var queueDepth = 0
        /// Changed since the file was last written.
        var dirty = true
        /// The last write error reported, so a broken path is logged once, not every time.
        var lastWriteError: String?
    }

    let path: String
    private let logger: Logger
    private let figures = Mutex(Figures())
    /// Told after every change (the metrics service then writes, at most once a second).
    private let onChange: @Sendable () -> Void

    init(path: String, logger: Logger = Logger(label: "released.metrics"), onChange: @escaping @Sendable () -> Void = {}) {
        self.path = path
        self.logger = logger
        self.onChange = onChange
    }

    private func change(_ body: (inout Figures) -> Void) {
        figures.withLock { f in
            body(&f)
            f.dirty = true
        }
        onChange()
    }

    /// Takes the last success of each app from finished records (at start).
    func restoreLastSuccess(from records: [ReleaseRecord]) {
        change { f in
            for record in records where record.state == .succeeded {
                guard let app = record.app, let finished = record.finishedAt else { continue }
                f.lastSuccess[app] = max(f.lastSuccess[app] ?? 0, finished.timeIntervalSince1970)
            }
        }
    }

    /// The number of requests waiting.
    func setQueueDepth(_ depth: Int) {
        guard figures.withLock({ $0.queueDepth != depth }) else { return }
        change { $0.queueDepth = depth }
    }

    /// Counts a finished release (from its record).
    func finished(_ record: ReleaseRecord) {
        change { f in
            let app = record.app ?? "unknown"
            // Keyed by the labels after app's: phase and state.
            f.releases[app, default: [:]]["phase=\"\(record.phase.rawValue)\",state=\"\(record.state.rawValue)\"", default: 0] += 1
            for task in record.tasks {
                guard let ms = task.durationMs else { continue }
                f.durations[app, default: [:]][task.name, default: Histogram()].observe(Double(ms) / 1000)
                if let peak = task.peakMemoryBytes { f.peakMemory[app, default: [:]][task.name] = peak }
                if let cpu = task.cpuMs { f.cpuSeconds[app, default: [:]][task.name, default: 0] += Double(cpu) / 1000 }
                let timeouts = task.attempts?.filter { $0.outcome == "lock-timeout" }.count ?? 0
                if timeouts > 0 { f.lockTimeouts[app, default: [:]][task.name, default: 0] += timeouts }
            }
            if record.state == .succeeded {
                f.lastSuccess[app] = (record.finishedAt ?? Date()).timeIntervalSince1970
            }
        }
    }

    /// The exposition text.
    func render() -> String {
        let f = figures.withLock { $0 }
        let releases = f.releases, durations = f.durations, lastSuccess = f.lastSuccess, queueDepth = f.queueDepth
        var out = ""
        out += "# HELP releasectl_releases_total Finished releases by app, phase and final state.\n"
        out += "# TYPE releasectl_releases_total counter\n"
        for app in releases.keys.sorted() {
            for (labels, count) in releases[app]!.sorted(by: { $0.key < $1.key }) {
                out += "releasectl_releases_total{app=\"\(Self.escape(app))\",\(labels)} \(count)\n"
            }
        }
        out += "# HELP releasectl_task_duration_seconds How long release tasks ran.\n"
        out += "# TYPE releasectl_task_duration_seconds histogram\n"
        for app in durations.keys.sorted() {
            for (task, h) in durations[app]!.sorted(by: { $0.key < $1.key }) {
                let labels = "app=\"\(Self.escape(app))\",task=\"\(Self.escape(task))\""
                for (i, le) in Self.buckets.enumerated() {
                    out += "releasectl_task_duration_seconds_bucket{\(labels),le=\"\(Self.number(le))\"} \(h.counts[i])\n"
                }
                out += "releasectl_task_duration_seconds_bucket{\(labels),le=\"+Inf\"} \(h.total)\n"
                out += "releasectl_task_duration_seconds_sum{\(labels)} \(Self.number(h.sum))\n"
                out += "releasectl_task_duration_seconds_count{\(labels)} \(h.total)\n"
            }
        }
        out += "# HELP releasectl_task_peak_memory_bytes The memory peak of the task's last run.\n"
        out += "# TYPE releasectl_task_peak_memory_bytes gauge\n"
        for app in f.peakMemory.keys.sorted() {
            for (task, bytes) in f.peakMemory[app]!.sorted(by: { $0.key < $1.key }) {
                out += "releasectl_task_peak_memory_bytes{app=\"\(Self.escape(app))\",task=\"\(Self.escape(task))\"} \(bytes)\n"
            }
        }
        out += "# HELP releasectl_task_cpu_seconds_total CPU time (user and system) release tasks used.\n"
        out += "# TYPE releasectl_task_cpu_seconds_total counter\n"
        for app in f.cpuSeconds.keys.sorted() {
            for (task, seconds) in f.cpuSeconds[app]!.sorted(by: { $0.key < $1.key }) {
                out += "releasectl_task_cpu_seconds_total{app=\"\(Self.escape(app))\",task=\"\(Self.escape(task))\"} \(Self.number(seconds))\n"
            }
        }
        out += "# HELP releasectl_task_lock_timeouts_total Migration attempts that ended on a lock timeout (and were tried again, or failed).\n"
        out += "# TYPE releasectl_task_lock_timeouts_total counter\n"
        for app in f.lockTimeouts.keys.sorted() {
            for (task, n) in f.lockTimeouts[app]!.sorted(by: { $0.key < $1.key }) {
                out += "releasectl_task_lock_timeouts_total{app=\"\(Self.escape(app))\",task=\"\(Self.escape(task))\"} \(n)\n"
            }
        }
        out += "# HELP releasectl_queue_depth Release requests waiting in incoming/.\n"
        out += "# TYPE releasectl_queue_depth gauge\n"
        out += "releasectl_queue_depth \(queueDepth)\n"
        out += "# HELP releasectl_last_success_timestamp_seconds When the app's last successful release finished (Unix time).\n"
        out += "# TYPE releasectl_last_success_timestamp_seconds gauge\n"
        for (app, time) in lastSuccess.sorted(by: { $0.key < $1.key }) {
            out += "releasectl_last_success_timestamp_seconds{app=\"\(Self.escape(app))\"} \(Self.number(time))\n"
        }
        return out
    }

    /// Writes the file if anything changed since the last write (see `write`).
    func writeIfChanged() {
        guard figures.withLock({ f -> Bool in defer { f.dirty = false }; return f.dirty }) else { return }
        write()
    }

    /// Writes the file atomically: `<path>.tmp`, then rename. A failure is logged (once until
    /// a write succeeds again) and never affects releases.
    func write() {
        let target = FilePath(path)
        let temporary = FilePath(path + ".tmp")
        do {
            let fd = try FileDescriptor.open(temporary, .writeOnly, options: [.create, .truncate, .closeOnExec],
                                             permissions: [.ownerReadWrite, .groupRead, .otherRead])
            try fd.closeAfter {
                _ = fchmod(fd.rawValue, 0o644)   // the umask (0007 under the unit) must not hide it from the collector
                _ = try fd.writeAll(render().utf8)
            }
            if rename(temporary.string, target.string) != 0 { throw Errno(rawValue: errno) }
            if figures.withLock({ f -> Bool in defer { f.lastWriteError = nil }; return f.lastWriteError != nil }) {
                logger.notice("metrics file \(path) written again")
            }
        } catch {
            _ = unlink(temporary.string)
            let message = "\(error)"
            if figures.withLock({ f -> Bool in defer { f.lastWriteError = message }; return f.lastWriteError != message }) {
                logger.warning("cannot write the metrics file \(path): \(message)")
            }
        }
    }

    /// A label value escaped for the exposition format: backslash, double quote, newline.
    static func escape(_ s: String) -> String {
        s.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"").replacing("\n", with: "\\n")
    }

    static func number(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    }
}

/// The metrics of the moment (nil without `--metrics-file`; replaced when a reload changes the
/// path), shared by the scheduler, which changes the figures, and the metrics service, which
/// writes them: `changed` yields after any change, coalesced while one is pending.
final class MetricsSlot: Sendable {
    private let current = Mutex<Metrics?>(nil)
    private let changes: AsyncStream<Void>.Continuation
    let changed: AsyncStream<Void>

    init() {
        (changed, changes) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    var metrics: Metrics? { current.withLock { $0 } }

    /// Uses a metrics file at `path` (nil: none) from now on.
    func use(path: String?) {
        let changes = changes
        let metrics = path.map { Metrics(path: $0, onChange: { changes.yield() }) }
        current.withLock { $0 = metrics }
        changes.yield()
    }

    /// Ends `changed` (at shutdown, after a last write).
    func finish() { changes.finish() }
}
