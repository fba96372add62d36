import Glibc
import Logging
import ReleaseKit
import ReleaseSupport
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
        /// The task output stream: masked, then cut into lines, with what may still be the
        /// start of a secret held back (one stream: tasks run one after another).
        var lines: MaskedLineSplitter
        /// Output kept apart instead of written, by task (see `capture`).
        var captured: [String: [UInt8]] = [:]
        /// Lines looked at as they are written, by task (see `watch`).
        var watches: [String: LineWatch] = [:]
    }

    /// The most output kept of a captured command.
    public static let maximumCapture = 1 << 20

    private let state: Mutex<State>
    private let masking: Masking
    public let logger: Logger
    /// Told every chunk written (whole lines, masked): a cluster's followers get them.
    private let tap: (@Sendable ([UInt8]) -> Void)?

    /// Opens (appending, 0640) the release's log file.
    public init(spool: Spool, id: String, masking: Masking, logger: Logger, tap: (@Sendable ([UInt8]) -> Void)? = nil) {
        self.tap = tap
        let fd = spool.logPath(id).withPlatformString { open($0, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, Spool.fileMode) }
        if fd >= 0 { _ = fchmod(fd, Spool.fileMode) }
        state = Mutex(State(fd: fd, lines: MaskedLineSplitter(masking: masking, maximumLineLength: Self.maximumLineLength,
                                                              linePrefix: Array(Self.indent.utf8))))
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

    /// A chunk of a task's raw output: masked, cut into lines, indented, written.
    ///
    /// The whole chunk (a pipe's worth, 64 KiB) goes to the release log in one write(2) and to
    /// the daemon's log as one batch (`BatchLogHandler`): still one entry per line, but a task
    /// that prints hundreds of megabytes must not cost a syscall and a formatted entry per line.
    /// Masking comes before any cut (see `MaskedLineSplitter`), so no secret is ever split
    /// between two lines, two writes or two journal entries.
    public func output(_ chunk: some Collection<UInt8>, task: String) {
        let lines = state.withLock { s -> LogLines? in
            if s.captured[task] != nil {
                // One byte past the limit is kept: it says the output was cut.
                s.captured[task]!.append(contentsOf: chunk.prefix(max(0, Self.maximumCapture + 1 - s.captured[task]!.count)))
                return nil
            }
            return s.lines.feed(chunk)
        }
        if let lines { emit(lines, task: task) }
    }

    /// Keeps the output of `task` apart from the log until `endCapture` (a framework's status
    /// command, read rather than shown), at most `maximumCapture` bytes.
    public func beginCapture(task: String) { state.withLock { $0.captured[task] = [] } }

    /// What `task` printed since `beginCapture`, masked; nil when it printed more than
    /// `maximumCapture` (a cut list would be read as a whole one).
    public func endCapture(task: String) -> String? {
        let bytes = state.withLock { $0.captured.removeValue(forKey: task) } ?? []
        guard bytes.count <= Self.maximumCapture else { return nil }
        return masking.apply(String(decoding: bytes, as: UTF8.self))
    }

    /// Looks at every line `task` writes (masked) for any of `markers` until `endWatch`.
    public func watch(task: String, markers: [String]) -> LineWatch {
        let watch = LineWatch(markers: markers)
        state.withLock { $0.watches[task] = watch }
        return watch
    }

    public func endWatch(task: String) { state.withLock { $0.watches[task] = nil } }

    /// Writes out an unfinished last line (a task that ended without a newline).
    public func flush(task: String) {
        let lines = state.withLock { $0.lines.finish() }
        emit(lines, task: task)
    }

    /// Writes the lines to the release log and the daemon's log.
    private func emit(_ lines: LogLines, task: String) {
        guard !lines.isEmpty else { return }
        if let watch = state.withLock({ $0.watches[task] }) {
            for i in lines.ranges.indices { watch.look(at: lines.string(i)) }
        }
        append(lines.bytes)
        let metadata: Logger.Metadata = ["release.task": "\(task)"]
        if logger.logLevel <= .info, let handler = logger.handler as? any BatchLogHandler {
            handler.log(lines: lines, level: .info, metadata: metadata, source: "released", file: #fileID, function: #function, line: #line)
        } else {
            for i in lines.ranges.indices {
                logger.info("\(lines.string(i))", metadata: metadata)
            }
        }
    }

    /// Lines of the same release as another node wrote them (whole lines, masked there):
    /// masked again with this request's secrets, and written as they are.
    public func relay(_ bytes: [UInt8]) {
        append(Array(masking.apply(String(decoding: bytes, as: UTF8.self)).utf8))
    }

    private func append(_ bytes: [UInt8]) {
        state.withLock { s in
            if s.fd >= 0 { FileOutput.write(s.fd, bytes) }
        }
        tap?(bytes)
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

/// Whether any line a task wrote held one of some markers (a lock timeout's SQLSTATE).
public final class LineWatch: Sendable {
    let markers: [String]
    private let found = Mutex<String?>(nil)

    init(markers: [String]) { self.markers = markers }

    func look(at line: String) {
        guard found.withLock({ $0 == nil }), let marker = markers.first(where: { line.contains($0) }) else { return }
        found.withLock { $0 = marker }
    }

    /// The first marker seen, or nil.
    public var seen: String? { found.withLock { $0 } }
}
