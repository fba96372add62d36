import Glibc
import Logging
import ReleaseKit
import Synchronization

/// The output of one release, in order: `logs/<id>.log` and the daemon's log (the journal
/// under systemd), every line masked.
///
/// The release log is what `releasectl submit --wait` and `logs` show. Lines from the daemon
/// start with `-----> `; task output lines are indented by seven spaces, Heroku-style. Each
/// chunk of task output is written with a single write(2), so readers see it at once. Every
/// line of task output also becomes one log entry with the release's metadata and
/// `release.task`.
public final class ReleaseLog: Sendable {
    public static let marker = "-----> "
    public static let indent = "       "
    /// Longer lines are split, so memory stays bounded whatever a task prints.
    public static let maximumLineLength = 64 * 1024

    private struct State {
        var fd: Int32
        /// Bytes of an unfinished line per task.
        var partial: [UInt8] = []
    }

    private let state: Mutex<State>
    private let masking: Masking
    public let logger: Logger

    /// Opens (appending, 0640) the release's log file.
    public init(spool: Spool, id: String, masking: Masking, logger: Logger) {
        let fd = spool.logPath(id).withPlatformString { open($0, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, Spool.fileMode) }
        if fd >= 0 { _ = fchmod(fd, Spool.fileMode) }
        state = Mutex(State(fd: fd))
        self.masking = masking
        self.logger = logger
    }

    deinit {
        state.withLock { s in if s.fd >= 0 { Glibc.close(s.fd) } }
    }

    /// A line of the daemon's own about the release (`-----> migrate succeeded in 1.2s`), also
    /// logged at `level` with `metadata`.
    public func note(_ text: String, level: Logger.Level = .info, metadata: Logger.Metadata = [:]) {
        let masked = masking.apply(text)
        append(Array((Self.marker + masked + "\n").utf8))
        logger.log(level: level, "\(masked)", metadata: metadata)
    }

    /// A line a task says itself (notify's "POST … → 200"), shown like task output.
    public func say(_ text: String, task: String) {
        var bytes = Array(text.utf8)
        bytes.append(UInt8(ascii: "\n"))
        output(bytes, task: task)
    }

    /// A chunk of a task's raw output: split into lines, masked, indented, written.
    ///
    /// The whole chunk (a pipe's worth, 64 KiB) goes to the release log in one write(2) and to
    /// the daemon's log as one batch (`BatchLogHandler`): still one entry per line, but a task
    /// that prints hundreds of megabytes must not cost a syscall and a formatted entry per line.
    public func output(_ chunk: some Collection<UInt8>, task: String) {
        let done: Void? = chunk.withContiguousStorageIfAvailable { output(UnsafeRawBufferPointer($0), task: task) }
        if done == nil {
            Array(chunk).withUnsafeBytes { output($0, task: task) }
        }
    }

    private func output(_ chunk: UnsafeRawBufferPointer, task: String) {
        var data: [UInt8] = []
        var lines: [Range<Int>] = []
        state.withLock { s in
            data = s.partial
            s.partial = []
            data.append(contentsOf: chunk)
            var start = 0
            data.withUnsafeBytes { p in
                guard let base = p.baseAddress else { return }
                while start < p.count {
                    let span = min(p.count - start, Self.maximumLineLength)
                    if let newline = memchr(base + start, Int32(UInt8(ascii: "\n")), span) {
                        let end = UnsafeRawPointer(newline) - base
                        lines.append(start..<end)
                        start = end + 1
                    } else if span == Self.maximumLineLength {
                        lines.append(start..<(start + span))
                        start += span
                    } else {
                        break
                    }
                }
            }
            if start < data.count { s.partial = Array(data[start...]) }
        }
        emit(data, lines, task: task)
    }

    /// Writes out an unfinished last line (a task that ended without a newline).
    public func flush(task: String) {
        let rest = state.withLock { s -> [UInt8] in defer { s.partial = [] }; return s.partial }
        if !rest.isEmpty { emit(rest, [0..<rest.count], task: task) }
    }

    /// Writes the lines (ranges of `data`) to the release log and the daemon's log.
    private func emit(_ data: [UInt8], _ lines: [Range<Int>], task: String) {
        guard !lines.isEmpty else { return }
        let indent = Array(Self.indent.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(data.count + lines.count * (indent.count + 1))
        // Where each line's text sits in `out`, for the daemon's log.
        var texts: [Range<Int>] = []
        texts.reserveCapacity(lines.count)
        for var range in lines {
            if range.upperBound > range.lowerBound, data[range.upperBound - 1] == UInt8(ascii: "\r") {
                range = range.lowerBound..<(range.upperBound - 1)
            }
            out.append(contentsOf: indent)
            let start = out.count
            if masking.isEmpty {
                out.append(contentsOf: data[range])
            } else {
                var line = Array(data[range])
                masking.apply(to: &line)
                out.append(contentsOf: line)
            }
            texts.append(start..<out.count)
            out.append(UInt8(ascii: "\n"))
        }
        append(out)
        let batch = LogLines(bytes: out, ranges: texts)
        let metadata: Logger.Metadata = ["release.task": "\(task)"]
        if logger.logLevel <= .info, let handler = logger.handler as? any BatchLogHandler {
            handler.log(lines: batch, level: .info, metadata: metadata, source: "released", file: #fileID, function: #function, line: #line)
        } else {
            for i in batch.ranges.indices {
                logger.info("\(batch.string(i))", metadata: metadata)
            }
        }
    }

    private func append(_ bytes: [UInt8]) {
        state.withLock { s in
            guard s.fd >= 0 else { return }
            bytes.withUnsafeBytes { p in
                var offset = 0
                while offset < p.count {
                    let n = write(s.fd, p.baseAddress! + offset, p.count - offset)
                    if n < 0 { if errno == EINTR { continue }; return }
                    offset += n
                }
            }
        }
    }

    /// Closes the log. It is not fsynced on its own: the record's fsync, which follows, commits
    /// the journal and with it the log's data (ext4's ordered mode); the record is what must
    /// be durable.
    public func close() {
        state.withLock { s in
            if s.fd >= 0 {
                Glibc.close(s.fd)
                s.fd = -1
            }
        }
    }
}
