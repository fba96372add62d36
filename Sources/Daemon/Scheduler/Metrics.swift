import FoundationEssentials
import Glibc
import ReleaseKit

/// Prometheus metrics in the text exposition format, for node_exporter's textfile collector:
/// rewritten atomically (temporary file + rename) after each release ends.
final class Metrics {
    static let buckets: [Double] = [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600]

    struct Histogram {
        var counts = [Int](repeating: 0, count: Metrics.buckets.count)
        var sum = 0.0
        var total = 0
    }

    let path: String
    private var releases: [String: [String: Int]] = [:]   // app → state → count
    private var durations: [String: [String: Histogram]] = [:]  // app → task → histogram
    private var lastSuccess: [String: Double] = [:]
    var queueDepth = 0 { didSet { if queueDepth != oldValue { write() } } }

    init(path: String) {
        self.path = path
    }

    /// Counts a finished release (from its record) and rewrites the file.
    func finished(_ record: ReleaseRecord) {
        let app = record.app ?? "unknown"
        releases[app, default: [:]][record.state.rawValue, default: 0] += 1
        for task in record.tasks {
            guard let ms = task.durationMs else { continue }
            let seconds = Double(ms) / 1000
            var h = durations[app, default: [:]][task.name] ?? Histogram()
            for (i, le) in Self.buckets.enumerated() where seconds <= le { h.counts[i] += 1 }
            h.sum += seconds
            h.total += 1
            durations[app, default: [:]][task.name] = h
        }
        if record.state == .succeeded {
            lastSuccess[app] = (record.finishedAt ?? Date()).timeIntervalSince1970
        }
        write()
    }

    func render() -> String {
        var out = ""
        out += "# HELP releasectl_releases_total Finished releases by app and final state.\n"
        out += "# TYPE releasectl_releases_total counter\n"
        for app in releases.keys.sorted() {
            for state in releases[app]!.keys.sorted() {
                out += "releasectl_releases_total{app=\"\(Self.escape(app))\",state=\"\(state)\"} \(releases[app]![state]!)\n"
            }
        }
        out += "# HELP releasectl_task_duration_seconds How long tasks ran.\n"
        out += "# TYPE releasectl_task_duration_seconds histogram\n"
        for app in durations.keys.sorted() {
            for task in durations[app]!.keys.sorted() {
                let h = durations[app]![task]!
                let labels = "app=\"\(Self.escape(app))\",task=\"\(task)\""
                for (i, le) in Self.buckets.enumerated() {
                    out += "releasectl_task_duration_seconds_bucket{\(labels),le=\"\(Self.number(le))\"} \(h.counts[i])\n"
                }
                out += "releasectl_task_duration_seconds_bucket{\(labels),le=\"+Inf\"} \(h.total)\n"
                out += "releasectl_task_duration_seconds_sum{\(labels)} \(Self.number(h.sum))\n"
                out += "releasectl_task_duration_seconds_count{\(labels)} \(h.total)\n"
            }
        }
        out += "# HELP releasectl_queue_depth Requests waiting in incoming/.\n"
        out += "# TYPE releasectl_queue_depth gauge\n"
        out += "releasectl_queue_depth \(queueDepth)\n"
        out += "# HELP releasectl_last_success_timestamp_seconds When the app's last release succeeded.\n"
        out += "# TYPE releasectl_last_success_timestamp_seconds gauge\n"
        for app in lastSuccess.keys.sorted() {
            out += "releasectl_last_success_timestamp_seconds{app=\"\(Self.escape(app))\"} \(Self.number(lastSuccess[app]!))\n"
        }
        return out
    }

    /// Writes the file atomically: a temporary file beside it, then rename.
    func write() {
        let temporary = path + ".tmp"
        let data = Data(render().utf8)
        guard FileManager.default.createFile(atPath: temporary, contents: data) else { return }
        _ = rename(temporary, path)
    }

    static func escape(_ s: String) -> String {
        s.replacing("\\", with: "\\\\").replacing("\"", with: "\\\"")
    }

    static func number(_ d: Double) -> String {
        d == d.rounded() && abs(d) < 1e15 ? String(Int64(d)) : String(d)
    }
}
