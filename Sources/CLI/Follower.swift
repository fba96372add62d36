import FoundationEssentials
import Glibc
import ReleaseKit
import ReleaseWatcher
import SystemPackage

/// Follows a release to its end: streams `logs/<id>.log` as it grows and returns the final
/// record when one appears in `done/` or `rejected/`. Woken by inotify, with a one-second
/// safety net. While no daemon holds the spool's lock it says so on stderr every 10 s.
struct Follower {
    let spool: Spool
    let id: String
    /// Where streamed output goes (stdout, or stderr with `--json`).
    let outputFD: Int32
    /// Whether to stream the log at all.
    let streamLog: Bool

    /// Copies the log as it is now to the output; false when there is no log.
    func copyLog() -> Bool {
        let fd = spool.logPath(id).withPlatformString { open($0, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK) }
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, st.st_mode & S_IFMT == S_IFREG else { return false }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return true }
            var chunk = Array(buffer[0..<n])
            Output.write(outputFD, bytes: &chunk)
        }
    }

    /// The final record, or nil when `timeout` passed first.
    func follow(timeout: Duration?) -> ReleaseRecord? {
        let watcher = try? DirectoryWatcher(
            folders: [spool.path(.logs), spool.path(.done), spool.path(.rejected), spool.path(.running)],
            mask: UInt32(IN_MOVED_TO | IN_CLOSE_WRITE | IN_MODIFY | IN_CREATE))
        let clock = ContinuousClock()
        let start = clock.now
        var lastDaemonWarning = start - .seconds(10)
        var logFD: Int32 = -1
        defer { if logFD >= 0 { close(logFD) } }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)

        func pump() {
            guard streamLog else { return }
            if logFD < 0 {
                logFD = spool.logPath(id).withPlatformString { open($0, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK) }
                if logFD < 0 { return }
                var st = stat()
                if fstat(logFD, &st) != 0 || st.st_mode & S_IFMT != S_IFREG {
                    close(logFD)
                    logFD = -1
                    return
                }
            }
            while true {
                let n = buffer.withUnsafeMutableBytes { read(logFD, $0.baseAddress, $0.count) }
                if n <= 0 { return }
                var chunk = Array(buffer[0..<n])
                Output.write(outputFD, bytes: &chunk)
            }
        }

        while true {
            pump()
            if let record = spool.record(in: .done, id: id) ?? spool.record(in: .rejected, id: id) {
                pump()
                return record
            }
            let now = clock.now
            if let timeout, now - start >= timeout { return nil }
            if now - lastDaemonWarning >= .seconds(10), !SpoolLock.isHeld(spool) {
                Output.error("no released is running on \(spool.root); the request stays queued until one starts")
                lastDaemonWarning = now
            }
            var wait: Duration = .seconds(1)
            if let timeout { wait = min(wait, timeout - (now - start)) }
            if let watcher {
                _ = watcher.next(timeout: wait)
            } else {
                _ = poll(nil, 0, Int32(wait.milliseconds))
            }
        }
    }
}

/// Renderings of records for people.
enum RecordText {
    /// The last line of `submit --wait`: the outcome and each task that ran.
    static func summary(_ r: ReleaseRecord) -> String {
        let name = "\(r.app ?? "?") \(r.release ?? "?")" + (r.phase == .default ? "" : " \(r.phase.rawValue)")
        var line = "==> \(name): \(r.state.rawValue)"
        if let reason = r.reason, r.state != .succeeded { line += ": \(reason)" }
        if let ms = r.durationMs { line += " (\(Summary.duration(ms)))" }
        let ran = r.tasks.filter { $0.state != .skipped && $0.state != .notRun && $0.state != .pending }
        if !ran.isEmpty {
            line += " — " + ran.map { t in
                "\(t.name) \(t.state == .succeeded ? "ok" : t.state.rawValue)" + (t.durationMs.map { " \(Summary.duration($0))" } ?? "")
                    + ((t.attempts?.count ?? 0) > 1 ? " (\(t.attempts!.count) attempts)" : "")
            }.joined(separator: ", ")
        }
        return line
    }

    /// `status ID`: everything about one release.
    static func detail(_ r: ReleaseRecord) -> String {
        var out = "\(r.id)  \(r.app ?? "?") \(r.release ?? "?")  \(r.state.rawValue)\n"
        if let reason = r.reason { out += "  reason:    \(reason)\n" }
        out += "  phase:     \(r.phase.rawValue)\n"
        for w in r.warnings { out += "  warning:   \(w)\n" }
        if let d = r.directory { out += "  directory: \(d)\n" }
        if let image = r.image { out += "  image:     \(image)" + (r.imageID.map { " (id \($0.prefix(12)))" } ?? "") + "\n" }
        if let t = r.submittedAt { out += "  submitted: \(Timestamp.format(t))\n" }
        if let t = r.startedAt { out += "  started:   \(Timestamp.format(t))\n" }
        if let t = r.finishedAt { out += "  finished:  \(Timestamp.format(t))" + (r.durationMs.map { " (\(Summary.duration($0)))" } ?? "") + "\n" }
        if let retry = r.retryOf { out += "  retry of:  \(retry)\n" }
        if !r.tasks.isEmpty {
            // Name, duration, result (long reasons last, so they align nothing), and the
            // command on a line of its own below.
            out += "  tasks:\n"
            let nameWidth = r.tasks.map(\.name.count).max() ?? 0
            let durations = r.tasks.map { $0.durationMs.map(Summary.duration) ?? "" }
            let durationWidth = durations.map(\.count).max() ?? 0
            for (t, duration) in zip(r.tasks, durations) {
                let name = t.name + String(repeating: " ", count: nameWidth - t.name.count)
                let time = String(repeating: " ", count: durationWidth - duration.count) + duration
                out += "    \(name)  \(time)\(durationWidth > 0 ? "  " : "")\(Summary.taskResult(t))\(Summary.usage(t))\n"
                let pad = "    " + String(repeating: " ", count: nameWidth + 2)
                if let command = t.command {
                    out += pad + "$ " + Command.argv(command).description + "\n"
                }
                if let attempts = t.attempts {
                    out += pad + "attempts: " + attempts.map { a in
                        a.outcome + (a.durationMs.map { " \(Summary.duration($0))" } ?? "")
                    }.joined(separator: ", ") + "\n"
                }
                if let m = t.migrations {
                    out += pad + "migrations (\(m.tool)): version \(m.versionBefore ?? "none") → \(m.versionAfter ?? "?"); "
                        + (m.applied.isEmpty ? "none applied" : "applied \(m.applied.joined(separator: ", "))")
                        + (m.pending.isEmpty ? "" : "; still pending \(m.pending.joined(separator: ", "))") + "\n"
                }
            }
        }
        return out
    }

    /// One row of `list`.
    static func row(_ r: ReleaseRecord) -> [String] {
        let when = r.finishedAt ?? r.startedAt ?? r.submittedAt
        return [r.id, r.app ?? "-", r.release ?? "-", r.phase.rawValue, r.state.rawValue,
                when.map(Timestamp.format) ?? "-", r.durationMs.map(Summary.duration) ?? "-"]
    }
}
