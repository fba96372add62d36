import FoundationEssentials
import Glibc
import Logging
import ReleaseKit
import ReleaseSupport

/// A swift-log handler writing one readable line per entry to stderr:
/// `13:00:01.234 info  shop v42 migrate | Migrating to CreateProducts`.
public struct ConsoleLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String

    public init(label: String) { self.label = label }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        var line = Self.clock() + " " + Self.level(event.level) + " "
        line += ReleaseContext.prefixed("\(event.message)", metadata: merged)
        let rest = merged.filter { !Self.journalOnly($0.key) }
        if !rest.isEmpty {
            line += " " + rest.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        }
        line += "\n"
        Self.write(Array(line.utf8))
    }

    static func write(_ bytes: [UInt8]) {
        FileOutput.write(STDERR_FILENO, bytes)
    }

    static func level(_ level: Logger.Level) -> String {
        switch level {
        case .trace: "trace"
        case .debug: "debug"
        case .info: "info "
        case .notice: "note "
        case .warning: "warn "
        case .error: "error"
        case .critical: "crit "
        }
    }

    static func clock() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = ts.tv_sec
        var parts = tm()
        localtime_r(&t, &parts)
        func two(_ n: Int32) -> String { n < 10 ? "0\(n)" : "\(n)" }
        let ms = Int(ts.tv_nsec / 1_000_000)
        let msText = ms < 10 ? "00\(ms)" : ms < 100 ? "0\(ms)" : "\(ms)"
        return "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(msText)"
    }
}

extension ConsoleLogHandler {
    /// Metadata the console leaves out: the release's fields (the context words say them) and
    /// the journal's own (`MESSAGE_ID`, `DURATION_USEC`: the line says the duration).
    static func journalOnly(_ key: String) -> Bool {
        key.hasPrefix("release.") || key == "message.id" || key == "duration.usec"
    }
}

extension ConsoleLogHandler: BatchLogHandler {
    /// The lines as `log(event:)` writes them, one line each, in one write(2): the time, the
    /// level, the release context and the other metadata are formatted once for the batch.
    func log(lines: LogLines, level: Logger.Level, metadata extra: Logger.Metadata, source: String, file: String,
             function: String, line: UInt) {
        guard level >= logLevel, !lines.ranges.isEmpty,
              let merged = taskBatchMetadata(lines, level: level, extra: extra, source: source, file: file, function: function, line: line)
        else { return }
        // The context words come before every task line (see ReleaseContext.prefixed).
        let head = Array((Self.clock() + " " + Self.level(level) + " " + ReleaseContext.prefixed("", metadata: merged)).utf8)
        let rest = merged.filter { !Self.journalOnly($0.key) }
        let tail = Array(((rest.isEmpty ? "" : " " + rest.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
                          + "\n").utf8)
        var out: [UInt8] = []
        out.reserveCapacity(lines.bytes.count + lines.ranges.count * (head.count + tail.count))
        lines.bytes.withUnsafeBufferPointer { bytes in
            for (i, range) in lines.ranges.enumerated() {
                out.append(contentsOf: head)
                let text = UnsafeBufferPointer(rebasing: bytes[range])
                if text.allSatisfy({ $0 < 0x80 }) {
                    out.append(contentsOf: text)
                } else {
                    out.append(contentsOf: lines.string(i).utf8)  // invalid UTF-8 replaced, as log(event:) does
                }
                out.append(contentsOf: tail)
            }
        }
        Self.write(out)
    }
}
