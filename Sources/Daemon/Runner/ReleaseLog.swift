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
    public func output(_ chunk: some Collection<UInt8>, task: String) {
        var lines: [[UInt8]] = []
        state.withLock { s in
            var current = s.partial
            s.partial = []
            for byte in chunk {
                if byte == UInt8(ascii: "\n") {
                    lines.append(current)
                    current.removeAll(keepingCapacity: true)
                } else {
                    current.append(byte)
                    if current.count >= Self.maximumLineLength {
                        lines.append(current)
                        current.removeAll(keepingCapacity: true)
                    }
                }
            }
            s.partial = current
        }
        emit(lines, task: task)
    }

    /// Writes out an unfinished last line (a task that ended without a newline).
    public func flush(task: String) {
        let rest = state.withLock { s -> [UInt8] in defer { s.partial = [] }; return s.partial }
        if !rest.isEmpty { emit([rest], task: task) }
    }

    private func emit(_ lines: [[UInt8]], task: String) {
        guard !lines.isEmpty else { return }
        var out: [UInt8] = []
        out.reserveCapacity(lines.reduce(0) { $0 + $1.count + 8 })
        let indent = Array(Self.indent.utf8)
        var texts: [String] = []
        texts.reserveCapacity(lines.count)
        for var line in lines {
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            masking.apply(to: &line)
            out.append(contentsOf: indent)
            out.append(contentsOf: line)
            out.append(UInt8(ascii: "\n"))
            texts.append(String(decoding: line, as: UTF8.self))
        }
        append(out)
        for text in texts {
            logger.info("\(text)", metadata: ["release.task": "\(task)"])
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
